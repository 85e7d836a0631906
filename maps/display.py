"""Light GeoJSON for drawing: simplified shapes, ~1 m coordinates, only the fields a map shows.

Downloads and the API keep full detail; a map at city scale does not need it.
Grids tile their districts, so they are simplified together as a coverage
(``shapely.coverage_simplify``): shared edges stay shared and no slivers open.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import shapely
from shapely.errors import GEOSException

from geodata import geojson

GRID_SIZE = 1e-5  # degrees: about 1 m, finer than any screen pixel at the zooms these layers are drawn


def simplify(geoms, tolerance: float) -> np.ndarray:
    """Simplify polygons as one coverage when they form one, each on its own otherwise."""
    geoms = np.asarray(geoms, dtype=object)
    if tolerance > 0 and len(geoms) and shapely.get_dimensions(geoms).max() == 2:
        try:
            geoms = shapely.coverage_simplify(geoms, tolerance)
        except GEOSException:  # overlapping uploads are not a valid coverage
            geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
    return shapely.set_precision(geoms, GRID_SIZE)


def geojson_bytes(gdf: gpd.GeoDataFrame, fields: list[str], tolerance: float = 0.0) -> bytes:
    """A FeatureCollection of ``fields`` and simplified geometry, for a map to fetch."""
    light = gpd.GeoDataFrame(gdf[[f for f in fields if f in gdf.columns]],
                             geometry=simplify(gdf.geometry.values, tolerance), crs=gdf.crs)
    return geojson.to_bytes(light)


def feature_collection(gdf: gpd.GeoDataFrame, fields: list[str], tolerance: float = 0.0) -> dict:
    """The same, as a dict to embed in a page."""
    return json.loads(geojson_bytes(gdf, fields, tolerance))
