"""Mapbox Vector Tiles of any collection, on the WebMercatorQuad tile matrix set (OGC API – Tiles).

A ``TileSource`` is made once per collection version (its features projected to Web Mercator, a
spatial index); each tile then takes the features its box meets, clips them a little beyond the
box (so strokes join across tiles), snaps them to the tile's 4096 × 4096 grid — polygon layers that
tile the land simplified as a coverage, so neighbours keep their shared edges — and encodes them
with mapbox-vector-tile.  Only the properties the map shows go into tiles (``TILE_FIELDS``), and
only from the zoom level each layer is drawn at (``MIN_ZOOM``).
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass, field

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import shapely

from .errors import NotFound

TMS = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS = "http://www.opengis.net/def/crs/EPSG/0/3857"
EXTENT = 4096  # tile units a side
BUFFER = 64  # tile units clipped beyond each side
MAX_ZOOM = 22
ORIGIN = 20037508.342789244  # half the width of the Web Mercator square, in metres
MVT = "application/vnd.mapbox-vector-tile"

# the zoom from which each layer is drawn: below it a tile would hold thousands of features a pixel wide
MIN_ZOOM = {"districts": 0, "streets": 10, "communities": 12, "grids": 11, "coverage": 11, "gaps": 11,
            "centers": 9, "roads": 12, "catchments": 10}
# what the map shows of each layer (popups ask for the whole feature by key)
TILE_FIELDS = {
    "grids": ("grid_id", "name", "grid_type", "city", "district", "street", "community"),
    # what tooltips show (a popup asks for the whole grid): the population figures would cost a third of a tile
    "coverage": ("grid_id", "name", "city", "district", "street", "community", "coverage_ratio", "coverage_status"),
    "gaps": ("gap_id", "kind", "level", "city", "district", "street", "community", "grid_id", "area_m2", "detail"),
    "districts": ("adcode", "name", "name_en", "city"),
    "streets": ("unit_id", "city", "district", "street", "grids", "population", "covered_share"),
    "communities": ("unit_id", "city", "district", "street", "community", "grids", "population", "covered_share"),
    "centers": ("center_id", "name", "level", "city", "district", "street", "community"),
    "roads": ("road_id", "name", "highway"),
    "catchments": ("catchment_id", "kind", "level", "distance_m"),
}
COVERAGES = {"grids", "coverage", "districts", "streets", "communities"}  # polygons that tile without overlaps
# layers still drawn below their MIN_ZOOM, as their features dissolved by these properties (the last one is
# what the map colours them by): a province's coverage at a glance, a few hundred shapes instead of 85,000
OVERVIEWS = {"coverage": ("city", "district", "coverage_status")}


def first_zoom(name: str) -> int:
    """The first zoom level a layer's tiles hold anything at (its overview's, when it has one)."""
    return 0 if name in OVERVIEWS else MIN_ZOOM.get(name, 0)


def shown_fields(name: str, visible) -> list[str]:
    """The properties tiles of ``name`` carry: what the map shows, of the fields this reader may see."""
    return [f for f in TILE_FIELDS.get(name, ()) if f in visible]


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The tile's box in Web Mercator metres (x to the east, y up; tile row 0 at the top)."""
    size = 2 * ORIGIN / 2**z
    return -ORIGIN + x * size, ORIGIN - (y + 1) * size, -ORIGIN + (x + 1) * size, ORIGIN - y * size


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise NotFound(f"no tile matrix {z} in {TMS} here: 0 to {MAX_ZOOM}")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFound(f"no tile {z}/{y}/{x}: row and column run from 0 to {2**z - 1} at tile matrix {z}")


@dataclass
class TileSource:
    """A collection version ready to cut into tiles."""

    name: str
    geometries: np.ndarray  # Web Mercator
    table: pd.DataFrame  # the properties tiles carry, a row a feature
    tree: shapely.STRtree
    coverage: bool
    min_zoom: int = 0
    # what is drawn below min_zoom: made when first asked for (a province's coverage takes a second or two)
    overview: "functools.partial[TileSource] | TileSource | None" = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, name: str, gdf: gpd.GeoDataFrame, visible: list[str]) -> "TileSource":
        fields = [f for f in shown_fields(name, visible) if f in gdf.columns]
        geometries = gdf.geometry.to_crs(3857).values.to_numpy() if len(gdf) else np.array([], dtype=object)
        table = pd.DataFrame(gdf[fields]).reset_index(drop=True)
        source = cls(name, geometries, table, shapely.STRtree(geometries), name in COVERAGES,
                     MIN_ZOOM.get(name, 0))
        if name in OVERVIEWS:
            source.overview = functools.partial(cls._dissolved, name, geometries, gdf,
                                                [f for f in OVERVIEWS[name] if f in fields])
        return source

    @classmethod
    def _dissolved(cls, name: str, geometries: np.ndarray, gdf: gpd.GeoDataFrame, keys: list[str]) -> "TileSource":
        """The features merged by ``keys``: the parts of one coverage merge by their shared edges (fast)."""
        if not keys or not len(geometries):
            return cls(name, np.array([], dtype=object), pd.DataFrame(), shapely.STRtree([]), True, 0)
        groups = pd.DataFrame(gdf[keys]).reset_index(drop=True).astype(object)
        groups = groups.where(groups.notna(), "")  # a missing city still groups
        merged, rows = [], []
        for values, index in groups.groupby(keys, sort=False).indices.items():
            parts = geometries[index]
            union = shapely.coverage_union_all(parts) if name in COVERAGES else shapely.union_all(parts)
            if not shapely.is_valid(union):  # overlapping uploads are no coverage: a true union then
                union = shapely.union_all(shapely.make_valid(parts))
            merged.append(union)
            rows.append(dict(zip(keys, values if isinstance(values, tuple) else (values,))))
        merged = np.array(merged, dtype=object)
        table = pd.DataFrame(rows, columns=keys).replace("", None)
        return cls(name, merged, table, shapely.STRtree(merged), True, 0)

    def __post_init__(self):
        # each column as MVT values, once: a tile then only picks its rows (pandas per tile was a fifth of its time)
        self.columns = {k: [_value(v) for v in self.table[k].astype(object)] for k in self.table.columns}

    def _properties(self, rows: np.ndarray) -> list[dict]:
        return [{k: column[i] for k, column in self.columns.items() if column[i] is not None} for i in rows.tolist()]

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile's MVT bytes; None when it holds nothing (or the layer is not drawn at ``z``)."""
        check_tile(z, x, y)
        if z < self.min_zoom:
            if self.overview is None:
                return None
            with self.lock:
                if isinstance(self.overview, functools.partial):
                    self.overview = self.overview()
            return self.overview.tile(z, x, y)
        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        unit = (maxx - minx) / EXTENT
        margin = BUFFER * unit
        hits = np.sort(self.tree.query(shapely.box(minx - margin, miny - margin, maxx + margin, maxy + margin)))
        if not len(hits):
            return None
        clipped = shapely.clip_by_rect(self.geometries[hits], minx - margin, miny - margin, maxx + margin,
                                       maxy + margin)
        # to tile units, y down, as MVT counts them
        local = shapely.transform(clipped, lambda xy: np.column_stack(
            [(xy[:, 0] - minx) / unit, (maxy - xy[:, 1]) / unit]))
        if self.coverage:  # lines or points a clip left of a polygon are dropped: nothing to draw
            polygonal = np.isin(shapely.get_type_id(local), (3, 6)) & ~shapely.is_empty(local)
            local, hits = local[polygonal], hits[polygonal]
            local = shapely.coverage_simplify(local, 1.0, simplify_boundary=True) if len(local) else local
        # onto the integer grid MVT keeps: a vertex two neighbours share lands on the same point in both;
        # exteriors counter-clockwise in these y-down numbers (clockwise on screen), as MVT wants them, so the
        # encoder need not check each polygon in Python
        local = shapely.orient_polygons(shapely.transform(local, np.round), exterior_cw=False)
        keep = ~shapely.is_empty(local) & (shapely.area(local) > 0 if self.coverage else True)
        features = [{"geometry": geom, "properties": properties}
                    for geom, properties in zip(local[keep], self._properties(hits[keep]))]
        if not features:
            return None
        return mapbox_vector_tile.encode([{"name": self.name, "features": features}],
                                         default_options={"y_coord_down": True, "extents": EXTENT,
                                                          "check_winding_order": False})


# --- place names: a point inside each unit, for the map to label (it places them without collisions) -----

LABELS = {"district": ("districts", "name"), "street": ("streets", "street"), "community": ("communities", "community")}


def label_points(gdf: gpd.GeoDataFrame, name_field: str) -> pd.DataFrame:
    """lon, lat (a point inside the unit: a ring's centroid may fall outside it) and name of each unit,
    largest first (the map keeps the larger of two names that would collide)."""
    if not len(gdf) or name_field not in gdf.columns:
        return pd.DataFrame({"lon": [], "lat": [], "name": []})
    points = shapely.point_on_surface(gdf.geometry.values)
    order = np.argsort(-shapely.area(gdf.geometry.values), kind="stable")
    frame = pd.DataFrame({"lon": shapely.get_x(points).round(5), "lat": shapely.get_y(points).round(5),
                          "name": gdf[name_field].astype(object).values})
    return frame.iloc[order].dropna().reset_index(drop=True)


def labels_within(frame: pd.DataFrame, bbox: list[float], limit: int) -> list[list]:
    """[lon, lat, name] of the ``limit`` largest units whose point lies in ``bbox`` (lon/lat)."""
    minx, miny, maxx, maxy = bbox
    inside = frame[(frame.lon >= minx) & (frame.lon <= maxx) & (frame.lat >= miny) & (frame.lat <= maxy)]
    return [[float(x), float(y), str(n)] for x, y, n in inside.head(limit).itertuples(index=False)]


def _value(value):
    """A property as MVT holds it: text, a number or a boolean (None: left out, as NaN, NA and NaT are)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return str(value)


# --- the tile matrix set document ----------------------------------------------------------------

def tile_matrix_set() -> dict:
    """WebMercatorQuad as OGC API – Tiles describes it (OGC 17-083r4, JSON encoding)."""
    return {
        "id": TMS, "title": "Google Maps Compatible for the World", "uri": TMS_URI,
        "crs": CRS, "orderedAxes": ["E", "N"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": [{
            "id": str(z), "scaleDenominator": 559082264.0287178 / 2**z,
            "cellSize": 2 * ORIGIN / 256 / 2**z, "cornerOfOrigin": "topLeft",
            "pointOfOrigin": [-ORIGIN, ORIGIN], "tileWidth": 256, "tileHeight": 256,
            "matrixWidth": 2**z, "matrixHeight": 2**z,
        } for z in range(MAX_ZOOM + 1)],
    }


def matrix_limits(name: str, bbox: list[float] | None) -> list[dict]:
    """The tiles of each zoom the layer has anything in (``bbox``: its extent in lon/lat)."""
    if not bbox:
        return []
    limits = []
    for z in range(first_zoom(name), MAX_ZOOM + 1):
        (min_col, min_row), (max_col, max_row) = tile_of(bbox[0], bbox[3], z), tile_of(bbox[2], bbox[1], z)
        limits.append({"tileMatrix": str(z), "minTileRow": min_row, "maxTileRow": max_row,
                       "minTileCol": min_col, "maxTileCol": max_col})
    return limits


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The (column, row) of the WebMercatorQuad tile of zoom ``z`` that holds the point."""
    n = 2**z
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    col = int((lon + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(col, 0), n - 1), min(max(row, 0), n - 1)
