"""Mapbox Vector Tiles of any collection, on the WebMercatorQuad tile matrix set (OGC API – Tiles).

A ``TileSource`` is made once per collection version (its features projected to Web Mercator, a
spatial index); each tile then takes the features its box meets, clips them a little beyond the
box (so strokes join across tiles), snaps them to the tile's 4096 × 4096 grid — polygon layers that
tile the land simplified as a coverage, so neighbours keep their shared edges — and encodes them
(``geodata.mvt``).  Only the properties the map shows go into tiles (``TILE_FIELDS``), and only from
the zoom level each layer is drawn at (``MIN_ZOOM``).  Below the grids' zoom those polygon layers are cut
from their shapes generalised once a zoom (``TileSource.level``: simplified by a pixel as a coverage, the
coverage overview's specks merged into their neighbours), not simplified tile by tile.  An edit re-cuts only
the tiles it touches (``TileSource.updated``, ``TileVersions``; below the grids' zoom, every tile of a
layer it changed: a generalisation is not local).
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import mvt
from .errors import NotFound
from .i18n import says
from .schema import DERIVED, LAYERS

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
SIMPLIFY_BELOW = 2  # times the tolerance: features with vertices closer than this are simplified in a tile
PIXEL = 8  # tile units a pixel: the map draws a tile 512 px wide
# below the grids' zoom, polygon layers that tile the land are cut from their shapes generalised once a zoom
# (``TileSource.level``), not simplified tile by tile: a province's tile of z6 took 0.8 s and 150 KB of
# outlines a pixel wide.  Simplified by a pixel, as a coverage (neighbours keep their shared edges)
GENERALIZED_BELOW = MIN_ZOOM["grids"]
LEVEL_TOLERANCE = 1.0 * PIXEL
# an overview's parts smaller than SPECK_PX × SPECK_PX pixels join the neighbour they share most edge with
# (of their own unit first): at z6 a grid is a pixel, and a province's statuses were 5,000 specks
SPECK_PX = 4
COVERAGES = {"grids", "coverage", "districts", "streets", "communities"}  # polygons that tile without overlaps
# layers still drawn below their MIN_ZOOM, as their features dissolved by these properties (the last one is
# what the map colours them by): a province's coverage at a glance, a few hundred shapes instead of 85,000
OVERVIEWS = {"coverage": ("city", "district", "coverage_status")}


def local_from(name: str) -> int:
    """The zoom from which an edit changes only the tiles its boxes meet: below it a coverage's tiles come
    from its shapes generalised as a whole (an edge simplified or a speck merged may move a tile away)."""
    return GENERALIZED_BELOW if name in COVERAGES else 0


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
        raise NotFound(says("tiles.no_matrix", z=z, tms=TMS, most=MAX_ZOOM))
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFound(says("tiles.no_tile", z=z, y=y, x=x, most=2**z - 1))


@dataclass
class TileSource:
    """A collection version ready to cut into tiles: its features in key order (so a tile's features come in
    the same order however the source was made), projected, with a spatial index."""

    name: str
    geometries: np.ndarray  # Web Mercator
    table: pd.DataFrame  # the properties tiles carry, a row a feature
    tree: shapely.STRtree
    coverage: bool
    min_zoom: int = 0
    # what is drawn below min_zoom: made when first asked for (a province's coverage takes a second or two)
    overview: "functools.partial[TileSource] | TileSource | None" = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: np.ndarray | None = None  # each feature's key (None: an overview's shapes, which have none)
    lonlat: np.ndarray | None = None  # the geometries as given: what the next version is compared with
    # made by ``updated``: boxes (Web Mercator, a row each) outside which its tiles are the previous source's
    touched: np.ndarray | None = None
    # its shapes generalised for a zoom below GENERALIZED_BELOW (made when first asked for): zoom -> source
    levels: dict = field(default_factory=dict)
    simplified: bool = False  # a level: its shapes are simplified for the one zoom it is cut at
    specks: bool = False  # an overview: its levels merge parts too small to see into a neighbour

    @classmethod
    def of(cls, name: str, gdf: gpd.GeoDataFrame, visible: list[str]) -> "TileSource":
        fields = [f for f in shown_fields(name, visible) if f in gdf.columns]
        key = _key(name)
        keys = None
        if key in gdf.columns:
            keys = gdf[key].to_numpy(dtype=object)
            if not pd.Index(keys).is_monotonic_increasing:  # a store reads in key order; an analysis may not
                order = np.argsort(keys, kind="stable")
                gdf, keys = gdf.iloc[order], keys[order]
        lonlat = gdf.geometry.values.to_numpy() if len(gdf) else np.array([], dtype=object)
        geometries = to_mercator(lonlat)
        return cls._made(name, geometries, pd.DataFrame(gdf[fields]).reset_index(drop=True), keys, lonlat)

    @classmethod
    def _made(cls, name, geometries, table, keys, lonlat, touched=None, reuse=None) -> "TileSource":
        source = cls(name, geometries, table, shapely.STRtree(geometries), name in COVERAGES, MIN_ZOOM.get(name, 0),
                     keys=keys, lonlat=lonlat, touched=touched)
        if name in OVERVIEWS:
            source.overview = functools.partial(cls._dissolved, name, geometries, table,
                                                [f for f in OVERVIEWS[name] if f in table.columns], reuse)
        return source

    def updated(self, gdf: gpd.GeoDataFrame) -> "TileSource | None":
        """The source of ``gdf``, the next version of this one's collection (as the same reader sees it), made
        from this one: only the features whose shape or shown properties changed are projected again, and
        ``touched`` holds their old and new boxes.  None when the two cannot be matched feature by feature."""
        key = _key(self.name)
        fields = list(self.table.columns)
        if self.keys is None or key not in gdf.columns or not set(fields) <= set(gdf.columns):
            return None
        keys = gdf[key].to_numpy(dtype=object)
        if not pd.Index(self.keys).is_unique or not pd.Index(keys).is_unique:
            return None
        at = pd.Index(self.keys).get_indexer(keys)  # each new feature's place in this source; -1: a new key
        kept = np.flatnonzero(at >= 0)
        alike = shapely.equals_identical(self.lonlat[at[kept]], gdf.geometry.values[kept].to_numpy())
        for column in fields:
            alike &= _same(self.table[column].to_numpy(dtype=object)[at[kept]],
                           gdf[column].to_numpy(dtype=object)[kept])
        fresh = np.setdiff1d(np.arange(len(keys)), kept[alike])  # added or changed
        gone = np.setdiff1d(self.keys, keys[kept[alike]])  # removed or changed
        return self.replaced(gdf.iloc[fresh], gone)

    def replaced(self, rows: gpd.GeoDataFrame, gone) -> "TileSource | None":
        """This source with the features of the keys ``gone`` taken out and ``rows`` (features added or
        changed, the whole rows) put in; ``touched`` holds the old boxes of those gone and the new ones of
        those put in.  None when ``rows`` lack the key or a property tiles carry."""
        key = _key(self.name)
        fields = list(self.table.columns)
        if self.keys is None or key not in rows.columns or not set(fields) <= set(rows.columns):
            return None
        new_keys = rows[key].to_numpy(dtype=object)
        if not pd.Index(new_keys).is_unique:
            return None
        out = pd.Index(self.keys).isin(list(gone)) | pd.Index(self.keys).isin(new_keys)
        lonlat = rows.geometry.values.to_numpy()
        projected = to_mercator(lonlat)
        touched = np.concatenate([shapely.bounds(self.geometries[out]), shapely.bounds(projected)]).reshape(-1, 4)
        keys = np.concatenate([self.keys[~out], new_keys])
        order = np.argsort(keys, kind="stable")
        table = pd.concat([self.table[~out], pd.DataFrame(rows[fields])], ignore_index=True)
        return self._made(self.name, np.concatenate([self.geometries[~out], projected])[order],
                          table.iloc[order].reset_index(drop=True), keys[order],
                          np.concatenate([self.lonlat[~out], lonlat])[order],
                          touched[~np.isnan(touched).any(axis=1)],  # empty geometries touch nothing
                          self._overview_kept(pd.concat([self.table[out], pd.DataFrame(rows[fields])])))

    def _overview_kept(self, changed: pd.DataFrame) -> dict | None:
        """The shapes of this source's overview (when made) that the features ``changed`` (old and new rows)
        have no part in: the next version's overview keeps them as they are."""
        if not isinstance(self.overview, TileSource) or self.name not in OVERVIEWS:
            return None
        keys = [f for f in OVERVIEWS[self.name] if f in self.table.columns]
        if list(self.overview.table.columns) != keys:
            return None
        touched = set(_groups(changed, keys))
        return {group: geometry for group, geometry in zip(_groups(self.overview.table, keys), self.overview.geometries)
                if group not in touched}

    @classmethod
    def _dissolved(cls, name: str, geometries: np.ndarray, table: pd.DataFrame, keys: list[str],
                   kept: dict | None = None) -> "TileSource":
        """The features merged by ``keys``: the parts of one coverage merge by their shared edges (fast);
        ``kept``: shapes of groups already merged (of the version before, where nothing changed)."""
        if not keys or not len(geometries):
            return cls(name, np.array([], dtype=object), pd.DataFrame(), shapely.STRtree([]), True, 0)
        groups = pd.DataFrame(_groups(table, keys), columns=keys)
        merged, rows = [], []
        for values, index in groups.groupby(keys, sort=True).indices.items():  # sorted: the same order each time
            values = values if isinstance(values, tuple) else (values,)
            union = (kept or {}).get(values)
            if union is None:
                parts = geometries[index]
                union = shapely.coverage_union_all(parts) if name in COVERAGES else shapely.union_all(parts)
                if not shapely.is_valid(union):  # overlapping uploads are no coverage: a true union then
                    union = shapely.union_all(shapely.make_valid(parts))
            merged.append(union)
            rows.append(dict(zip(keys, values)))
        merged = np.array(merged, dtype=object)
        table = pd.DataFrame(rows, columns=keys).replace("", None)
        return cls(name, merged, table, shapely.STRtree(merged), True, 0, specks=True)

    def level(self, z: int) -> "TileSource":
        """This coverage generalised for zoom ``z`` (below GENERALIZED_BELOW): simplified by LEVEL_TOLERANCE as
        a coverage (shared edges stay shared), an overview's specks merged into their neighbours first.  Made
        once a zoom, each from the zoom above (fewer vertices each time: a province's eleven take seconds)."""
        with self.lock:
            for k in range(GENERALIZED_BELOW - 1, z - 1, -1):
                if k not in self.levels:
                    self.levels[k] = self.levels.get(k + 1, self)._generalised(k, self.specks)
            return self.levels[z]

    def _generalised(self, z: int, specks: bool) -> "TileSource":
        unit = 2 * ORIGIN / 2**z / EXTENT
        geometries, table = self.geometries, self.table
        if specks and len(geometries):
            geometries, table = _merge_specks(geometries, table, (SPECK_PX * PIXEL * unit) ** 2)
        if len(geometries):
            geometries = shapely.coverage_simplify(geometries, LEVEL_TOLERANCE * unit, simplify_boundary=True)
        return TileSource(self.name, geometries, table, shapely.STRtree(geometries), True, 0, simplified=True)

    def __post_init__(self):
        self.spacing = _spacing(self.geometries)
        # each column as MVT values, once: a tile then only picks its rows (pandas per tile was a fifth of its time)
        self.columns = mvt.Columns({k: [_value(v) for v in self.table[k].astype(object)] for k in self.table.columns})

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
        if self.coverage and not self.simplified and z < GENERALIZED_BELOW:
            return self.level(z).tile(z, x, y)
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
            # simplified as a coverage (neighbours keep their shared edges) where vertices stand closer than
            # SIMPLIFY_BELOW tolerances: elsewhere the grid below takes out nearly all simplifying would (and
            # coverage_simplify took half a cold tile); the dense features alone keep their outline then (by a
            # tile unit).  A level's shapes are simplified already
            dense = np.zeros(len(hits), dtype=bool) if self.simplified else \
                self.spacing[hits] < SIMPLIFY_BELOW * unit
            if dense.all() and len(local):
                local = shapely.coverage_simplify(local, 1.0, simplify_boundary=True)
            elif dense.any():
                local[dense] = shapely.coverage_simplify(local[dense], 1.0, simplify_boundary=False)
        # onto the integer grid MVT keeps: a vertex two neighbours share lands on the same point in both;
        # exteriors counter-clockwise in these y-down numbers (clockwise on screen), as MVT wants them, so the
        # encoder need not check each polygon in Python
        local = shapely.orient_polygons(shapely.transform(local, np.round), exterior_cw=False)
        keep = ~shapely.is_empty(local) & (shapely.area(local) > 0 if self.coverage else True)
        if not keep.any():
            return None
        return mvt.encode(self.name, EXTENT, local[keep], self.columns, hits[keep]) or None


# --- tiles carried from version to version ----------------------------------------------------------

class TileVersions:
    """Tile bytes per collection version, carried across versions: a tile whose box (with the margin it is
    clipped to) meets nothing that changed between two versions is the earlier version's bytes, not cut again.

    Per lineage (a collection as one audience sees it) it keeps the versions seen, newest last, each with the
    boxes where it may differ from the one before (``since``'s answer; None: anywhere).  Bytes live in
    ``cache`` (bounded), keyed by the version they were cut for."""

    DEPTH = 16  # versions kept a lineage: a tile untouched by the last 16 edits is still found

    def __init__(self, cache):
        self.cache = cache
        self._lineages: dict = {}
        self._mutex = threading.Lock()
        self._locks: dict = {}

    def tile(self, lineage, tag: str, state, z: int, x: int, y: int, cut, since, local_from: int = 0):
        """The tile at version ``tag`` (what ``cut()`` makes of it): kept, carried from an earlier version, or
        cut.

        ``since(previous_tag, previous_state)``: the boxes (Web Mercator, a row each) where ``tag``'s features
        may differ from the previous version's, or None; asked once, when ``tag`` is first seen here.
        ``local_from``: the zoom from which a change reaches only the tiles its boxes meet; a tile below it is
        carried only across versions that changed nothing."""
        key = ("tile", tag, z, x, y)
        data = self.cache.peek(key)
        if data is not None:
            return data
        steps = self._steps(lineage, tag, state, since)
        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        margin = BUFFER * (maxx - minx) / EXTENT
        box = shapely.box(minx - margin, miny - margin, maxx + margin, maxy + margin)
        for (earlier, _, _), (_, _, changed) in zip(steps[-2::-1], steps[::-1]):
            if changed is None or len(changed.query(box)) or (z < local_from and len(changed.geometries)):
                break  # touched since: cut anew
            data = self.cache.peek(("tile", earlier, z, x, y))
            if data is not None:
                return data
        return self.cache.get(key, cut)

    def _steps(self, lineage, tag: str, state, since) -> list[tuple]:
        """The versions of ``lineage`` up to ``tag`` (noted as the newest when first seen)."""
        with self._mutex:
            lock = self._locks.setdefault(lineage, threading.Lock())
        with lock:  # one request works out what a new version changed; the others wait for it
            steps = self._lineages.setdefault(lineage, [])
            for i, (seen, _, _) in enumerate(steps):
                if seen == tag:
                    return steps[:i + 1]
            boxes = since(*steps[-1][:2]) if steps else None
            tree = None if boxes is None else shapely.STRtree(shapely.box(*np.asarray(boxes, dtype=float).T))
            steps.append((tag, state, tree))
            del steps[:-self.DEPTH]
            return list(steps)


def mercator_boxes(bounds: np.ndarray) -> np.ndarray:
    """lon/lat boxes (a row each: minx, miny, maxx, maxy) as Web Mercator boxes (the projection keeps
    east-west and north-south lines: the corners' images bound the image)."""
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
    lat = np.clip(bounds[:, [1, 3]], -85.0511287798, 85.0511287798)
    x = bounds[:, [0, 2]] * ORIGIN / 180
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * ORIGIN / np.pi
    return np.column_stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]])


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


def _groups(table: pd.DataFrame, keys: list[str]) -> list[tuple]:
    """Each row's values of ``keys``, a missing one as "" (so a missing city still groups)."""
    values = table[keys].astype(object)
    return list(values.where(values.notna(), "").itertuples(index=False, name=None))


def _merge_specks(geometries: np.ndarray, table: pd.DataFrame, min_area: float) -> tuple[np.ndarray, pd.DataFrame]:
    """A coverage's features (a row of ``table`` each; the last column is what the map colours them by) with
    each part smaller than ``min_area`` merged into the larger neighbour it shares most edge with, of its own
    unit (the other columns) first — a generalisation's "eliminate": the parts are the same, only whose they
    are changes, so the result is a coverage again (a speck inside a neighbour fills its hole).  A part with
    no larger neighbour (an island) stays; a feature left with no part goes."""
    parts, owner = shapely.get_parts(geometries, return_index=True)
    area = shapely.area(parts)
    small = np.flatnonzero(area < min_area)
    if not len(small):
        return geometries, table
    speck, other, shared = _shared_edges(parts, small)
    # only into a larger part (ties: the later one): the merges form trees, never a cycle
    larger = (area[other] > area[speck]) | ((area[other] == area[speck]) & (other > speck))
    speck, other, shared = speck[larger], other[larger], shared[larger]
    units = pd.factorize(pd.Series(_groups(table, list(table.columns[:-1])), dtype=object))[0]
    same_unit = units[owner[speck]] == units[owner[other]]
    best = np.lexsort((-shared, ~same_unit, speck))  # each speck's best neighbour first
    speck, other = speck[best], other[best]
    first = np.r_[True, speck[1:] != speck[:-1]] if len(speck) else np.zeros(0, dtype=bool)
    into = np.arange(len(parts))
    into[speck[first]] = other[first]
    while not np.array_equal(into[into], into):  # to the root of each tree: the part nothing merged it into
        into = into[into]
    new_owner = owner[into]
    moved = new_owner != owner
    if not moved.any():
        return geometries, table
    out = geometries.copy()
    gained = set(new_owner[moved].tolist())
    for feature in np.unique(np.r_[owner[moved], new_owner[moved]]).tolist():
        mine = parts[new_owner == feature]
        if not len(mine):
            out[feature] = None
        elif feature not in gained:  # it only lost parts: the others as they were
            out[feature] = shapely.multipolygons(mine)
        else:
            try:
                out[feature] = shapely.coverage_union_all(mine)
            except shapely.errors.GEOSException:  # parts a simplification left not quite noded alike
                out[feature] = shapely.union_all(mine)
    keep = ~shapely.is_missing(out)
    return out[keep], table[keep].reset_index(drop=True)


def _shared_edges(parts: np.ndarray, of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pair (a part of ``of``, a neighbour) of a coverage's polygons that share edges, and the length they
    share: a coverage's neighbours share their vertices, so a shared edge is the same segment in both (found
    by sorting every ring's segments, not by overlaying shapes: a district's part has thousands of vertices)."""
    rings, part_of_ring = shapely.get_rings(parts, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    inside = ring[1:] == ring[:-1]
    a, b, part = xy[:-1][inside], xy[1:][inside], part_of_ring[ring[:-1][inside]]
    flip = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))  # each segment one way round
    a[flip], b[flip] = b[flip], a[flip].copy()
    order = np.lexsort((part, b[:, 1], b[:, 0], a[:, 1], a[:, 0]))
    seg = np.column_stack([a, b])[order]
    part = part[order]
    same = (seg[1:] == seg[:-1]).all(axis=1) & (part[1:] != part[:-1])  # a segment and the next: one edge
    first, second = part[:-1][same], part[1:][same]
    length = np.hypot(*(seg[:-1][same][:, 2:] - seg[:-1][same][:, :2]).T)
    wanted = np.isin(np.arange(len(parts)), of)
    pairs = pd.DataFrame({"part": np.r_[first, second], "other": np.r_[second, first], "length": np.r_[length, length]})
    pairs = pairs[wanted[pairs["part"].to_numpy()]].groupby(["part", "other"], sort=True)["length"].sum()
    return (pairs.index.get_level_values(0).to_numpy(), pairs.index.get_level_values(1).to_numpy(),
            pairs.to_numpy())


def _spacing(geometries: np.ndarray) -> np.ndarray:
    """Each geometry's shortest distance between consecutive vertices (metres; inf for a point)."""
    spacing = np.full(len(geometries), np.inf)
    if len(geometries):
        xy, of = shapely.get_coordinates(geometries, return_index=True)
        same = of[1:] == of[:-1]  # (a ring's last vertex to the next ring's first counts too: shorter is safe)
        np.minimum.at(spacing, of[1:][same], np.hypot(*np.diff(xy, axis=0)[same].T))
    return spacing


def _key(name: str) -> str | None:
    layer = LAYERS.get(name) or DERIVED.get(name)
    return layer.key if layer else None


def to_mercator(lonlat: np.ndarray) -> np.ndarray:
    """Geometries in lon/lat (EPSG:4326) in Web Mercator metres."""
    if not len(lonlat):
        return np.array([], dtype=object)
    return gpd.GeoSeries(lonlat, crs=4326).to_crs(3857).values.to_numpy()


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element by element: equal values, or both missing (None, NaN, NA)."""
    missing_a, missing_b = pd.isna(a), pd.isna(b)
    out = missing_a & missing_b
    both = np.flatnonzero(~missing_a & ~missing_b)
    out[both] = [bool(x == y) for x, y in zip(a[both].tolist(), b[both].tolist())]
    return out


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
