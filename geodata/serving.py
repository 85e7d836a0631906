"""Which centres serve a grid, and which grids a centre serves: straight-line distances in metres.

A centre serves a grid when the grid comes within the centre's catchment radius (its level's radius,
``Params.radius``), as the analysis draws catchments; the distance is from the centre to the grid's
nearest edge (0 inside it), measured in the local UTM zone.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .coverage import MAX_RADIUS_M, Params
from .crs import metric_crs

NEAREST = 5  # centres listed for a grid that none serves, nearest first
SEARCH_DEG = MAX_RADIUS_M / 90_000  # a box this wide around a place holds every centre that can reach it


def centres_for(grid: object, centres: gpd.GeoDataFrame, params: Params) -> pd.DataFrame:
    """The centres serving ``grid`` (a polygon in lon/lat), nearest first, with ``distance_m``,
    ``radius_m`` and ``serves``; when none serves it, the NEAREST nearest, ``serves`` false."""
    near = _near(centres, grid)
    if near.empty:
        return _table(near, np.array([]), np.array([]))
    crs = metric_crs(gpd.GeoDataFrame(geometry=[grid], crs="EPSG:4326"))
    distance = shapely.distance(near.geometry.to_crs(crs).values,
                                gpd.GeoSeries([grid], crs="EPSG:4326").to_crs(crs).values[0])
    radius = near["level"].map(lambda level: params.radius(level) if level in ("district", "street", "community")
                               else 0.0).to_numpy(float)
    table = _table(near, distance, radius)
    serving = table[table["serves"]]
    return serving if not serving.empty else table.head(NEAREST)


def grids_for(centre: object, level: str, grids: gpd.GeoDataFrame, params: Params) -> pd.DataFrame:
    """The grids a centre at ``centre`` (a point) of ``level`` reaches: ``grid_id``, ``name``, ``population``,
    ``distance_m``, nearest first."""
    radius = params.radius(level) if level in ("district", "street", "community") else 0.0
    near = _near(grids, centre)
    if near.empty or radius <= 0:
        return pd.DataFrame(columns=["grid_id", "name", "population", "distance_m"])
    crs = metric_crs(gpd.GeoDataFrame(geometry=[centre], crs="EPSG:4326"))
    point = gpd.GeoSeries([centre], crs="EPSG:4326").to_crs(crs).values[0]
    distance = shapely.distance(near.geometry.to_crs(crs).values, point)
    table = pd.DataFrame({"grid_id": near["grid_id"].to_numpy(), "name": near["name"].to_numpy(),
                          "population": [None if pd.isna(p) else int(p) for p in near["population"]]
                          if "population" in near else None,
                          "distance_m": np.round(distance, 0)})
    return table[distance < radius].sort_values(["distance_m", "grid_id"]).reset_index(drop=True)


def _near(frame: gpd.GeoDataFrame, geom: object) -> gpd.GeoDataFrame:
    """The rows of ``frame`` whose boxes come within SEARCH_DEG of ``geom``'s (an index query)."""
    if frame.empty or geom is None or shapely.is_empty(geom):
        return frame.iloc[:0]
    box = shapely.box(*shapely.bounds(geom)).buffer(SEARCH_DEG, join_style="mitre")
    return frame.iloc[np.sort(frame.sindex.query(box))]


def _table(near: gpd.GeoDataFrame, distance: np.ndarray, radius: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame({"center_id": near["center_id"].to_numpy() if len(near) else [],
                          "name": near["name"].to_numpy() if len(near) else [],
                          "level": near["level"].to_numpy() if len(near) else [],
                          "distance_m": np.round(distance, 0), "radius_m": radius,
                          "serves": distance < radius})
    return table.sort_values(["distance_m", "center_id"]).reset_index(drop=True)
