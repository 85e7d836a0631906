"""Service coverage and the four kinds of gaps (SPEC §2), with summaries.

Everything is measured in the data's UTM zone (``crs.metric_crs``).  The hot
paths are shapely 2 array operations and STRtree bulk queries; Python loops
run only over the few units or districts that have a problem.

Per-grid coverage avoids the naive ``grid ∩ union(all catchments)``, which
makes every grid pay for the city-wide union: one envelope query and the
discs' inner and outer circles sort grids into those inside one catchment
(ratio 1), outside all (ratio 0) and the rest, and only the rest lose, one
after another, the few discs that still touch them.

Nothing is global but the edge check of the tiling, which runs in bands:
the work grows with the data, not faster.  GEOS lets go of the GIL, so the
large array operations run in THREADS threads (only large ones: on a busy
machine every hand-over of the GIL between threads waits for a core), and
the tiling checks (edge check, districts, overlaps) run beside the coverage
in a thread of their own; the answers are the same, bit for bit, in one thread.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import gapdetail, network
from .crs import STORAGE_CRS, metric_crs
from .errors import BadRequest
from .i18n import says
from .order import adcodes, orderer
from .unitkeys import (CITY, LEVELS, NO_CITY, district_shape, district_shapes, has_cities, key_table, shown_city,
                       unit_columns)
from .unitkeys import UNIT_COLUMNS  # noqa: F401  (still imported from here: the keys without cities)

SUMMARY_LEVELS = ("total", CITY, *LEVELS)  # total: the whole dataset; city: one row a city (one in all without)
GAP_KINDS = ("service_gap", "missing_center", "tiling_gap", "overlap", "staffing_gap", "walk_gap")
STATUSES = ("covered", "partial", "uncovered")
MAX_RADIUS_M = 50_000.0  # what-if radii beyond this would make one request compute for minutes
MAX_LIFE_CIRCLES = 5  # each is one more walk and buffer of the whole network
SMALL_PART_VERTICES = 10_000  # gaps and overlaps below this size are measured with a negative buffer
QUAD_SEGS = 16  # a 64-gon: its area is within 0.17 % of πr² (the 32-gon default is 0.64 % short)
LEVEL_NAMES = gapdetail.LEVEL_NAMES  # missing centres name their level in Chinese
CATCHMENTS = ("disc", "network")


@dataclass(frozen=True)
class Params:
    """What an analysis depends on besides the data: radii, thresholds, tolerances."""

    radius_community_m: float = 1000.0
    radius_street_m: float = 2500.0
    radius_district_m: float = 5000.0
    covered_ratio: float = 0.9
    partial_ratio: float = 0.1
    sliver_m2: float = 100.0  # tiling gaps and overlaps smaller than this are noise
    sliver_width_m: float = 1.0  # ... and so are hairlines thinner than this, however long
    walk_access_m: float = 100.0  # network catchments: the land this close to the roads reached
    catchment: str = "disc"  # "disc", or "network": along the walkable roads (geodata.network), when there are any
    # network catchments: the walking distances whose reach the summaries count people within (GB 50180-2018's
    # 5-, 10- and 15-minute life circles)
    life_circles_m: tuple[float, ...] = (300.0, 500.0, 1000.0)

    def __post_init__(self):
        if self.catchment not in CATCHMENTS:
            raise BadRequest(says("params.one_of", name="catchment", choices=", ".join(CATCHMENTS),
                                  value=repr(self.catchment)))
        circles = self.life_circles_m
        if (not isinstance(circles, tuple) or len(circles) > MAX_LIFE_CIRCLES
                or not all(isinstance(d, (int, float)) and math.isfinite(d) and 0 < d <= MAX_RADIUS_M for d in circles)
                or len(set(circles)) != len(circles)):
            raise BadRequest(says("params.life_circles", most=MAX_LIFE_CIRCLES, radius=f"{MAX_RADIUS_M:g}",
                                  value=repr(circles)))
        for f in fields(self):
            if f.name in ("catchment", "life_circles_m"):
                continue
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise BadRequest(says("params.non_negative", name=f.name, value=repr(value)))
        for level in LEVELS:
            if self.radius(level) > MAX_RADIUS_M:
                raise BadRequest(says("params.radius", name=f"radius_{level}_m", most=f"{MAX_RADIUS_M:g}",
                                      value=f"{self.radius(level):g}"))
        if not 0 <= self.partial_ratio <= self.covered_ratio <= 1:
            raise BadRequest(says("params.thresholds"))

    def radius(self, level: str) -> float:
        return getattr(self, f"radius_{level}_m")

    def with_request(self, params: dict[str, str]) -> "Params":
        """A copy with radii or thresholds from request parameters (what-if runs)."""
        changes = {}
        for f in fields(self):
            if f.name == "catchment" and f.name in params:
                changes[f.name] = str(params[f.name]).strip()
            elif f.name == "life_circles_m" and f.name in params:
                changes[f.name] = life_circles(params[f.name])
            elif f.name in params:
                try:
                    changes[f.name] = float(params[f.name])
                except ValueError:
                    raise BadRequest(says("params.number", name=f.name, value=repr(params[f.name]))) from None
        return replace(self, **changes) if changes else self


PARAM_NAMES = frozenset(f.name for f in fields(Params))


def life_circles(value) -> tuple[float, ...]:
    """Walking distances from a comma-separated text (``300,500,1000``) or a list, in increasing order."""
    parts = str(value).split(",") if isinstance(value, str) else list(value)
    try:
        distances = [float(p) for p in parts if str(p).strip()]
    except ValueError:
        raise BadRequest(says("params.life_circles_text", value=repr(value))) from None
    return tuple(sorted(set(distances)))


def ring_column(distance: float) -> str:
    """The summary column of the people within ``distance`` on foot: ``ring_300_population``."""
    return f"ring_{distance:g}_population"


@dataclass(frozen=True, eq=False)
class Analysis:
    """The result of one analysis: read-only frames in WGS84, measured in ``metric_crs``."""

    params: Params
    metric_crs: str
    coverage: gpd.GeoDataFrame  # the grids with coverage_ratio, covered_population, coverage_status
    gaps: gpd.GeoDataFrame  # gap_id, kind, level, district, street, community, grid_id, area_m2, detail
    summaries: dict[str, pd.DataFrame]  # "city", "district", "street", "community"
    # each grid's edge check (``_invalid_edges``), in the grids' order, when known: an update reuses the
    # checks of the grids a change does not reach (geodata.incremental)
    invalid_edges: np.ndarray | None = field(default=None, compare=False, repr=False)
    # a walking analysis' land (``Walk``), kept in this process for updating it (geodata.incremental): not pickled
    walk: "Walk | None" = field(default=None, repr=False)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "walk"}


@dataclass(frozen=True, eq=False)
class Walk:
    """A walking analysis' land: the network walked and, for the walk (key None) and each life circle (its
    distance), the polygons whose union is the land within reach (``network.covered_land``'s tiles)."""

    net: network.Network
    land: dict


def walk_of(centers_m: gpd.GeoDataFrame, net: network.Network, params: Params, measure=None) -> Walk:
    """The walk of ``centers_m`` (metric) along ``net`` and its life circles, from one walk a level;
    ``measure(limit, tiles, walk_tiles)``, if given, called with each land as soon as it is buffered (the
    walk's, limit None, in this thread; the life circles' in the threads that buffer them:
    ``network.frame_walks``)."""
    limits = (None, *params.life_circles_m)
    if centers_m.empty:
        land = {limit: np.array([], dtype=object) for limit in limits}
        for limit in limits if measure is not None else ():
            measure(limit, land[limit], land[None])
        return Walk(net, land)
    radii = _radii(centers_m, params)
    keep = radii > 0
    tiles = network.frame_walks(centers_m[keep], radii[keep], net, params.walk_access_m, limits,
                                None if measure is None else lambda i, land, first: measure(limits[i], land, first))
    return Walk(net, dict(zip(limits, tiles)))


def measured_walk(grid_geoms: np.ndarray, centers_m: gpd.GeoDataFrame, net: network.Network, params: Params,
                  then=None) -> tuple[Walk, np.ndarray, np.ndarray, list[np.ndarray]]:
    """The walk of ``centers_m`` along ``net`` and its life circles (``walk_of``), each grid's share of land
    within the walk and its land outside it (``grid_coverage``), and each life circle's shares (in
    ``params.life_circles_m``' order, as ``life_circle_shares``).  Each land is measured as soon as it is
    buffered: the walk's while the life circles' are buffered, each life circle's in the thread that buffered
    it, on copies of its tiles (it shares tiles with the walk and the other life circles).  ``then(ratio,
    uncovered)``, if given, is called with the walk's figures as soon as they are known, in this thread, while
    the life circles are still measured."""
    measured = {}

    def measure(limit, tiles, walk_tiles):
        if limit is None:
            measured[None] = grid_coverage(grid_geoms, tiles)
            if then is not None:
                then(*measured[None])
        else:
            measured[limit] = _life_circle_measured(grid_geoms, walk_tiles, tiles, copies=True)

    walk = walk_of(centers_m, net, params, measure)
    ratio, uncovered = measured[None]
    return walk, ratio, uncovered, [_with_walk(ratio, *measured[d]) for d in params.life_circles_m]


def life_circle_shares(grid_geoms: np.ndarray, walk: Walk, limit: float, walk_ratio: np.ndarray) -> np.ndarray:
    """Each grid's share of land within life circle ``limit`` on foot.  A grid that only tiles of the walk's
    own land come near (``network.covered_land`` keeps a tile of the same pieces: ``is``) is as much within the
    life circle as within the walk: its share is the walk's (``walk_ratio``); the others are measured against
    the life circle's tiles near them.  Each grid's share depends on it, the tiles near it and its walk share
    only: a cold analysis and an update (geodata.incremental, which measures again the grids near tiles that
    changed) agree."""
    return _with_walk(walk_ratio, *_life_circle_measured(grid_geoms, walk.land[None], walk.land[limit]))


def _life_circle_measured(grid_geoms: np.ndarray, walk_tiles: np.ndarray, tiles: np.ndarray,
                          copies: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The grids whose share of a life circle (its ``tiles``) is not the walk's (``life_circle_shares``), and
    theirs.  ``copies``: measured on copies of the tiles (for a thread of its own: ``near_coverage``)."""
    walk_ids, ids = {id(t) for t in walk_tiles}, {id(t) for t in tiles}
    differ = [t for t in tiles if id(t) not in walk_ids] + [t for t in walk_tiles if id(t) not in ids]
    at = np.zeros(0, dtype=np.intp)
    if differ:
        at = np.unique(shapely.STRtree(grid_geoms).query(np.array(differ, dtype=object))[1])
    return at, near_coverage(grid_geoms[at], tiles, copies=copies)[0]


def _with_walk(walk_ratio: np.ndarray, at: np.ndarray, shares: np.ndarray) -> np.ndarray:
    ratio = np.array(walk_ratio, dtype=float)
    ratio[at] = shares
    return ratio


def analyse(grids: gpd.GeoDataFrame, centers: gpd.GeoDataFrame,
            districts: gpd.GeoDataFrame | None = None, params: Params = Params(),
            roads: gpd.GeoDataFrame | None = None) -> Analysis:
    """Coverage of every grid, the four kinds of gaps, and summaries at every level.

    Parameters
    ----------
    grids, centers, districts : layers as stored (WGS84); ``districts`` may be None or empty.
    params : radii and thresholds.
    roads : the walking network (WGS84), used when ``params.catchment`` is ``network``.

    Examples
    --------
    >>> result = analyse(grids, centers, districts)
    >>> result.summaries["city"].loc[0, "covered_share"]  # doctest: +SKIP
    0.87
    """
    if grids.empty:
        return _empty_analysis(grids, params)
    crs = metric_crs(grids)
    grid_geoms = grids.geometry.to_crs(crs).values
    center_m = centers.to_crs(crs) if not centers.empty else centers

    shapes = district_shapes(districts, crs, has_cities(grids))  # projected once for both checks

    def tiling() -> tuple[np.ndarray, list[_Gaps], _Gaps, _Gaps, object]:
        invalid_edges = _invalid_edges(grid_geoms)
        gaps = _tiling_and_overlaps(grids, grid_geoms, districts, crs, params, shapes=shapes,
                                    invalid_edges=invalid_edges)
        missing = _missing_centers(grids, grid_geoms, center_m, districts, crs, shapes=shapes)
        # and the units' order for the summaries: it depends only on the grids' keys
        return invalid_edges, gaps, missing, _staffing_gaps(grids, grid_geoms), orderer(grids, adcodes(districts))

    # the tiling checks, missing centres and staffing need nothing of the coverage: beside it, in a thread of
    # their own (each is mostly GEOS, which lets go of the GIL), when there is more than one thread
    with ThreadPoolExecutor(1) as side:
        tiled = side.submit(tiling) if THREADS > 1 else None

        def settled(ratio: np.ndarray, uncovered: np.ndarray, discs: np.ndarray | None = None,
                    disc_coverage=None) -> tuple:
            """The coverage frame and the gaps from the coverage; for a walk, with the ``discs`` (and their
            coverage's future, when measured beside) to tell the walk gaps, while its life circles are measured."""
            coverage = _coverage_frame(grids, ratio, params)
            walk_gaps = []
            if discs is not None:  # the disc against the walk
                columns, gaps = walking_columns(grids, grid_geoms, discs, ratio, uncovered, params,
                                                disc_coverage=None if disc_coverage is None else disc_coverage.result())
                coverage = coverage.assign(**columns)
                walk_gaps.append(gaps)
            invalid_edges, tiling_gaps, missing, staffing, in_order = tiled.result() if tiled is not None else tiling()
            parts = [_service_gaps(grids, uncovered, params), missing, *tiling_gaps, staffing, *walk_gaps]
            return coverage, _gaps_frame(parts, crs), invalid_edges, in_order

        if walks(params, roads):
            discs = catchments(center_m, replace(params, catchment="disc"))
            # the discs' coverage (against which the walk gaps are told) after the tiling checks
            disc_coverage = side.submit(grid_coverage, grid_geoms, discs) if THREADS > 1 else None
            done = []
            walk, _, _, rings = measured_walk(
                grid_geoms, center_m, network.network_of(roads.to_crs(crs)), params,
                then=lambda ratio, uncovered: done.append(settled(ratio, uncovered, discs, disc_coverage)))
            coverage, gaps, invalid_edges, in_order = done[0]
            coverage = coverage.assign(**ring_columns(grids, rings, params))
        else:
            walk = None
            coverage, gaps, invalid_edges, in_order = settled(*grid_coverage(grid_geoms, catchments(center_m, params)))
    return Analysis(params, crs.to_string(), coverage, gaps, summarise(coverage, gaps, districts, in_order),
                    invalid_edges=invalid_edges, walk=walk)


def tiling_problems(grids: gpd.GeoDataFrame, districts: gpd.GeoDataFrame | None = None,
                    params: Params = Params()) -> gpd.GeoDataFrame:
    """Only the tiling gaps and overlaps of ``grids`` (for checking an upload before it is stored)."""
    if grids.empty:
        return _empty_gaps()
    crs = metric_crs(grids)
    return _gaps_frame(_tiling_and_overlaps(grids, grids.geometry.to_crs(crs).values, districts, crs, params), crs)


# --- catchments and per-grid coverage ------------------------------------------------------

def catchments(centers_m: gpd.GeoDataFrame, params: Params, roads_m: gpd.GeoDataFrame | None = None) -> np.ndarray:
    """One disc per centre, of its level's radius, in the centres' (metric) CRS; with ``params.catchment``
    ``network`` and roads (same CRS), the land near the roads it reaches within that radius (geodata.network)."""
    if centers_m.empty:
        return np.array([], dtype=object)
    radii = _radii(centers_m, params)
    if walks(params, roads_m):
        keep = radii > 0
        return network.frame_catchments(centers_m[keep], radii[keep], roads_m, params.walk_access_m)
    points = centers_m.geometry.values[radii > 0]
    radii = radii[radii > 0]
    if len(points) and (shapely.get_type_id(points) == 0).all() and not shapely.is_empty(points).any():
        return _discs(shapely.get_coordinates(points), radii)
    return shapely.buffer(points, radii, quad_segs=QUAD_SEGS)


def walks(params: Params, roads: gpd.GeoDataFrame | None) -> bool:
    """Whether an analysis with ``params`` walks along ``roads`` (else its catchments are discs)."""
    return params.catchment == "network" and network.has_roads(roads)


def walking_columns(grids: gpd.GeoDataFrame, grid_geoms: np.ndarray, discs: np.ndarray, ratio: np.ndarray,
                    uncovered: np.ndarray, params: Params, disc_coverage: tuple | None = None) -> tuple[dict, "_Gaps"]:
    """What a walking analysis adds to the grids beside the life circles (``ring_columns``), and its
    ``walk_gap`` gaps.

    ``discs``: the centres' discs (at least those near these grids, in the centres' order); ``ratio`` and
    ``uncovered``: each grid's share of land within the walk, and its land outside it; ``disc_coverage``: the
    discs' ``grid_coverage``, when measured already.  The columns: ``disc_covered_population`` (the people the
    discs would count as covered) and ``walk_gap_population`` (the people on land inside a disc but beyond the
    walk: its share of the grid's area times the population).  Each grid's figures depend on it and the discs
    near it only, so an update computes those of a few grids alike (geodata.incremental).
    """
    disc_ratio, disc_uncovered = disc_coverage if disc_coverage is not None else grid_coverage(grid_geoms, discs)
    # inside a disc, beyond the walk: the land the walk leaves that the discs do not
    gap = np.array([shapely.Polygon()] * len(grid_geoms), dtype=object)
    candidates = np.flatnonzero((disc_ratio > 0) & ~shapely.is_empty(uncovered))
    if len(candidates):
        gap[candidates] = _parallel(shapely.difference, uncovered[candidates], disc_uncovered[candidates])
    area = shapely.area(grid_geoms)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap_share = np.where(area > 0, shapely.area(gap) / area, 0.0)
    columns = {"disc_covered_population": covered_population(grids, disc_ratio),
               "walk_gap_population": covered_population(grids, np.clip(gap_share, 0, 1))}
    gap_area = shapely.area(gap)
    positions = np.flatnonzero(gap_area >= max(params.sliver_m2, 1e-6))
    names = grids["name"].to_numpy()
    said = gapdetail.template("walk_gap")
    details = [said.format(name=names[i], area=f"{gap_area[i]:,.0f}") for i in positions]
    return columns, _Gaps("walk_gap", _grid_rows(grids, positions, details), gap[positions])


def ring_columns(grids: gpd.GeoDataFrame, rings: list[np.ndarray], params: Params) -> dict:
    """For each life circle d, ``ring_{d}_population``: the people within d on foot of any centre (its level's
    distance at most), each grid's counted by its share of land within that reach (``rings``, in
    ``params.life_circles_m``' order: ``life_circle_shares``), as ``covered_population``."""
    return {ring_column(d): covered_population(grids, ring) for d, ring in zip(params.life_circles_m, rings)}


def near_coverage(grid_geoms: np.ndarray, catchments: np.ndarray, *, copies: bool = False,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``grid_coverage`` of the ``catchments`` whose envelopes meet these grids' (in their order): each grid's
    figures as among all the grids (``grid_coverage`` looks at those only).  ``copies``: against copies of
    them, vertex for vertex (the same figures), for a thread that may meet catchments another thread is
    measuring: ``grid_coverage`` prepares them, and a prepared polygon builds its indexes on first use."""
    if not len(catchments) or not len(grid_geoms):
        return grid_coverage(grid_geoms, catchments)
    near = catchments[np.unique(shapely.STRtree(grid_geoms).query(catchments)[0])]
    return grid_coverage(grid_geoms, shapely.from_wkb(shapely.to_wkb(near)) if copies else near)


CATCHMENT_KINDS = ("disc", "walk", "ring")


def catchment_frame(grids: gpd.GeoDataFrame, centers: gpd.GeoDataFrame, roads: gpd.GeoDataFrame | None,
                    params: Params) -> gpd.GeoDataFrame:
    """The catchments as a map draws them (the ``catchments`` collection), WGS84.

    Walking (``params.catchment`` network, with roads): the land within reach of any centre (``kind`` walk) and,
    for each life circle d, within d on foot (``ring``, ``distance_m`` d; a centre's own distance at most),
    largest first: each as the polygons whose union is every centre's (``network.covered_land``, the very
    ones the analysis measured: kept in this process, so no buffer is made again).  They overlap where their
    500 m tiles meet: the map draws them opaque under one layer-wide opacity, so nothing shows twice (a
    union of a city's catchments would cost minutes).  Discs: one a centre (``disc``, its level and radius).
    """
    columns = ["catchment_id", "kind", "level", "center_id", "distance_m"]
    if grids.empty or centers.empty:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=STORAGE_CRS)
    crs = metric_crs(grids)
    centers_m = centers.to_crs(crs)
    radii = _radii(centers_m, params)
    keep = radii > 0
    rows, geoms = [], []
    if walks(params, roads):
        walk = walk_of(centers_m, network.network_of(roads.to_crs(crs)), params)
        for kind, distance in (("walk", None), *(("ring", d) for d in sorted(params.life_circles_m, reverse=True))):
            parts = walk.land[distance]
            name = kind if distance is None else f"ring.{distance:g}"
            rows += [{"catchment_id": f"{name}.{i}", "kind": kind, "level": None, "center_id": None,
                      "distance_m": distance} for i in range(1, len(parts) + 1)]
            geoms.append(parts)
    else:
        ids = centers_m[LAYER_KEY_CENTERS].to_numpy(dtype=object)[keep]
        levels = centers_m["level"].to_numpy(dtype=object)[keep]
        geoms.append(catchments(centers_m[keep], replace(params, catchment="disc")))
        rows += [{"catchment_id": f"disc.{c}", "kind": "disc", "level": lv, "center_id": c, "distance_m": r}
                 for c, lv, r in zip(ids, levels, radii[keep])]
    metric = np.concatenate(geoms) if geoms else np.array([], dtype=object)
    table = pd.DataFrame(rows, columns=columns).astype(object)
    return gpd.GeoDataFrame(table.where(table.notna(), None),
                            geometry=gpd.GeoSeries(metric, crs=crs).to_crs(STORAGE_CRS).values, crs=STORAGE_CRS)


LAYER_KEY_CENTERS = "center_id"


def _radii(centers_m: gpd.GeoDataFrame, params: Params) -> np.ndarray:
    """Each centre's catchment radius, by its level (0 for a centre of no known level)."""
    return centers_m["level"].map({level: params.radius(level) for level in LEVELS}).fillna(0).to_numpy(float)


def _discs(xy: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """``shapely.buffer(points, radii, quad_segs=QUAD_SEGS)``, vertex for vertex, built in one array (25× faster)."""
    steps = 4 * QUAD_SEGS
    angle = -2 * np.pi / steps * np.append(np.arange(steps), 0)  # GEOS: from east, clockwise, closed
    ring = np.empty((len(xy), steps + 1, 2))
    ring[:, :, 0] = xy[:, :1] + radii[:, None] * np.cos(angle)
    ring[:, :, 1] = xy[:, 1:] + radii[:, None] * np.sin(angle)
    return shapely.polygons(ring)


def grid_coverage(grid_geoms: np.ndarray, discs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of each grid's area inside any disc, and each grid's uncovered part.

    Equal to ``area(grid ∩ union(discs)) / area(grid)`` (tests check it against
    that idiom), without ever building a union of discs: a grid inside one disc
    is covered, and the rest lose, one after another, the discs that still touch
    what is left of them (a union of a grid's discs first costs twice as much).
    """
    grid_geoms = np.asarray(grid_geoms, dtype=object)
    n = len(grid_geoms)
    uncovered = grid_geoms.copy()
    if len(discs) == 0 or n == 0:
        return np.zeros(n), uncovered
    discs = np.asarray(discs, dtype=object)
    discs = discs[~(shapely.is_missing(discs) | shapely.is_empty(discs))]  # they cover nothing, and have no centre
    disc_idx, grid_idx = shapely.STRtree(grid_geoms).query(discs)  # envelopes only: the rest is done below
    # each disc's centre, the radius of the circle inside it and of the one around it
    xy, inner, outer = _circles(discs)
    # a grid's envelope inside a disc's inner circle: covered; beyond its outer circle: untouched
    box = shapely.bounds(grid_geoms)[grid_idx]
    dx = np.maximum(np.abs(box[:, 0] - xy[disc_idx, 0]), np.abs(box[:, 2] - xy[disc_idx, 0]))
    dy = np.maximum(np.abs(box[:, 1] - xy[disc_idx, 1]), np.abs(box[:, 3] - xy[disc_idx, 1]))
    far2 = dx * dx + dy * dy
    dx = np.maximum.reduce([box[:, 0] - xy[disc_idx, 0], xy[disc_idx, 0] - box[:, 2], np.zeros(len(box))])
    dy = np.maximum.reduce([box[:, 1] - xy[disc_idx, 1], xy[disc_idx, 1] - box[:, 3], np.zeros(len(box))])
    near2 = dx * dx + dy * dy
    inside_one = np.zeros(n, dtype=bool)
    inside_one[grid_idx[far2 <= inner[disc_idx] ** 2 * (1 - 1e-9)]] = True  # a margin for rounding
    uncovered[inside_one] = shapely.Polygon()

    keep = ~inside_one[grid_idx] & (near2 <= outer[disc_idx] ** 2 * (1 + 1e-9))
    disc_idx, grid_idx = disc_idx[keep], grid_idx[keep]
    # per grid, the discs reaching deepest into it first: what they leave often misses the others
    reach = np.sqrt(near2[keep]) - outer[disc_idx]
    order = np.lexsort((reach, grid_idx))
    disc_idx, grid_idx = disc_idx[order], grid_idx[order]
    shapely.prepare(discs)
    rows, starts, counts = np.unique(grid_idx, return_index=True, return_counts=True)
    for k in range(counts.max(initial=0)):
        at = counts > k
        rows_k, discs_k = rows[at], discs[disc_idx[starts[at] + k]]
        left = uncovered[rows_k]
        touch = shapely.intersects(discs_k, left)
        rows_k, discs_k, left = rows_k[touch], discs_k[touch], left[touch]
        gone = shapely.covers(discs_k, left)
        uncovered[rows_k[gone]] = shapely.Polygon()
        rows_k, discs_k, left = rows_k[~gone], discs_k[~gone], left[~gone]
        if len(rows_k):
            uncovered[rows_k] = _parallel(shapely.difference, left, discs_k)

    area = shapely.area(grid_geoms)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(area > 0, 1.0 - shapely.area(uncovered) / area, 0.0)
    return np.clip(ratio, 0.0, 1.0), uncovered


def _circles(discs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each disc's centre, and the radii of a circle inside it and of one around it.

    Most catchments are regular 64-gons as ``_discs`` and GEOS build them: their circles follow
    from two opposite vertices (the centroid and the distance to the boundary of 25k discs cost
    10× as much); other shapes (walking land) are measured around the middle of their envelopes.
    """
    steps = 4 * QUAD_SEGS
    n = len(discs)
    xy, inner, outer = np.zeros((n, 2)), np.zeros(n), np.zeros(n)
    regular = ((shapely.get_num_coordinates(discs) == steps + 1) & (shapely.get_type_id(discs) == 3)
               & (shapely.get_num_interior_rings(discs) == 0))
    if regular.any():
        ring = shapely.get_coordinates(discs[regular]).reshape(-1, steps + 1, 2)
        centre = (ring[:, 0] + ring[:, steps // 2]) / 2
        radius = np.hypot(*(ring[:, 0] - centre).T)
        angle = -2 * np.pi / steps * np.arange(steps + 1)  # GEOS and _discs: from east, clockwise, closed
        ideal = centre[:, None, :] + radius[:, None, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        off = np.abs(ring - ideal).max(axis=(1, 2))
        ok = (radius > 0) & (off <= 1e-6 * radius)  # a micrometre a kilometre: sure of the circles below
        at = np.flatnonzero(regular)[ok]
        xy[at] = centre[ok]
        # the inscribed circle of the ideal polygon, and the circumcircle, less and more what it is off
        inner[at] = radius[ok] * math.cos(math.pi / steps) - 2 * off[ok]
        outer[at] = radius[ok] + 2 * off[ok]
        regular[np.flatnonzero(regular)[~ok]] = False
    other = np.flatnonzero(~regular)
    if len(other):
        shapes = discs[other]
        box = shapely.bounds(shapes)  # its middle: any point serves, and a centroid costs as much as the rest
        xy[other] = (box[:, :2] + box[:, 2:]) / 2
        centre = shapely.points(xy[other])
        inner[other] = np.where(shapely.contains(shapes, centre), shapely.distance(centre, shapely.boundary(shapes)),
                                0.0)
        coords, owner = shapely.get_coordinates(shapes, return_index=True)
        if len(owner):  # owner is sorted: each disc's farthest vertex at once
            starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
            outer[other[owner[starts]]] = np.maximum.reduceat(np.hypot(*(coords - xy[other][owner]).T), starts)
    return xy, inner, outer


def default_threads() -> int:
    """The threads an analysis uses unless told (GRIDMAP_ANALYSIS_THREADS): the cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


THREADS = default_threads()  # shapely's array functions let go of the GIL
_CHUNK = 2_000  # below this many geometries a thread costs more than it saves


def _parallel(func, *arrays: np.ndarray) -> np.ndarray:
    """``func(*arrays)`` in THREADS threads over slices of the arrays, the results joined in order."""
    n = len(arrays[0])
    parts = min(THREADS, n // _CHUNK)
    if parts < 2:
        return func(*arrays)
    bounds = np.linspace(0, n, parts + 1).astype(int)
    with ThreadPoolExecutor(parts) as pool:
        results = list(pool.map(lambda i: func(*(a[bounds[i]:bounds[i + 1]] for a in arrays)), range(parts)))
    return np.concatenate(results)


def covered_population(grids: gpd.GeoDataFrame, ratio: np.ndarray) -> pd.Series:
    """Each grid's people inside a catchment: its population times its covered share, rounded (NA: no population).

    The one definition of "covered people": the summaries add these up, and siting starts from them.
    """
    population = pd.to_numeric(grids["population"]).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(pd.array(np.round(population * ratio), dtype="Float64").astype("Int64"), index=grids.index)


def _coverage_frame(grids: gpd.GeoDataFrame, ratio: np.ndarray, params: Params) -> gpd.GeoDataFrame:
    coverage = grids.copy()
    for name, values in coverage_columns(grids, ratio, params).items():
        coverage[name] = values
    return coverage


def coverage_columns(grids: gpd.GeoDataFrame, ratio: np.ndarray, params: Params) -> dict[str, object]:
    """The columns the analysis adds to ``grids``, given each grid's covered share ``ratio``."""
    return {"coverage_ratio": np.round(ratio, 6), "covered_population": covered_population(grids, ratio),
            "coverage_status": np.select([ratio >= params.covered_ratio, ratio >= params.partial_ratio],
                                         ["covered", "partial"], "uncovered")}


# --- gaps ----------------------------------------------------------------------------------

@dataclass
class _Gaps:
    """Gap rows of one kind, geometries in the metric CRS."""

    kind: str
    rows: pd.DataFrame  # level, district, street, community, grid_id, detail, id_suffix
    geoms: np.ndarray


def _grid_rows(grids: gpd.GeoDataFrame, positions, details) -> pd.DataFrame:
    columns = [CITY] * (CITY in grids.columns) + ["district", "street", "community", "grid_id"]
    rows = grids.iloc[positions][columns].reset_index(drop=True)
    rows["level"] = None
    rows["detail"] = list(details)
    rows["id_suffix"] = rows["grid_id"]
    return rows


def _service_gaps(grids, uncovered: np.ndarray, params: Params) -> _Gaps:
    area = shapely.area(uncovered)
    positions = np.flatnonzero(area >= max(params.sliver_m2, 1e-6))
    names = grids["name"].to_numpy()
    said = gapdetail.template("service_gap")
    details = [said.format(name=names[i], area=f"{area[i]:,.0f}") for i in positions]
    return _Gaps("service_gap", _grid_rows(grids, positions, details), uncovered[positions])


def _missing_centers(grids, grid_geoms, centers_m, districts, crs, shapes: dict | None = None) -> _Gaps:
    """Units (district, street, community) with no centre of their own level inside them.

    A centre serves the unit of the grid it stands in: its whole key (city, district, …), so a
    centre in one city's 市辖区 does nothing for another city's.
    """
    cities = has_cities(grids)
    units = key_table(grids, unit_columns("community", cities))
    with_centre = {level: np.zeros(0, np.intp) for level in LEVELS}  # the grids a centre of the level stands in
    if not centers_m.empty:
        point_idx, grid_idx = centre_grids(grid_geoms, centers_m.geometry.values)
        levels = centers_m["level"].to_numpy()[point_idx]
        with_centre = {level: grid_idx[levels == level] for level in LEVELS}

    shapes = district_shapes(districts, crs, cities) if shapes is None else shapes
    rows, geoms = [], []
    for level in LEVELS:
        columns = unit_columns(level, cities)
        # each grid's unit, numbered in key order (a unit without a whole key: none); 26k units
        # compared as numbers, and only the few without a centre made into positions
        grouped = units.groupby(columns, sort=True)
        unit = grouped.ngroup().fillna(-1).to_numpy(dtype=np.int64)
        served = np.zeros(grouped.ngroups + 1, dtype=bool)  # the last: grids of no unit
        served[unit[with_centre[level]]] = True
        lacking = np.flatnonzero(~served[:-1])
        if not len(lacking):
            continue
        by_unit = np.argsort(unit, kind="stable")  # each unit's grids together, in the layer's order
        starts = np.searchsorted(unit[by_unit], lacking, side="left")
        ends = np.searchsorted(unit[by_unit], lacking, side="right")
        keys = units[columns].iloc[by_unit[starts]].to_numpy(dtype=object)
        for key, start, end in zip(keys, starts, ends):
            key = tuple(key)
            shape = district_shape(shapes, key) if level == "district" else None
            if shape is None:
                shape = merge_tiles(grid_geoms[by_unit[start:end]])
            rows.append(missing_center_row(level, columns, key))
            geoms.append(shape)
    return _Gaps("missing_center", pd.DataFrame(rows, columns=[CITY, *_ROW_COLUMNS]), np.array(geoms, dtype=object))


def missing_center_row(level: str, columns: list[str], key: tuple) -> dict:
    """The gap row of a unit (named ``key`` by ``columns``) with no centre of its ``level``."""
    names = dict(zip(columns, key))
    return {**{c: names.get(c) for c in ("district", "street", "community")}, "grid_id": None,
            CITY: names.get(CITY) or None, "level": level, "id_suffix": f"{level}.{'.'.join(key)}",
            "detail": gapdetail.template("missing_center").format(unit=key[-1], level=LEVEL_NAMES[level])}


def centre_grids(grid_geoms: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, grid) positions: the grid each centre stands in.  A centre on a shared edge counts
    once, for the first of its grids (in the layer's order, so an update of a few grids finds the same)."""
    point_idx, grid_idx = shapely.STRtree(grid_geoms).query(points, predicate="intersects")
    order = np.lexsort((grid_idx, point_idx))
    point_idx, grid_idx = point_idx[order], grid_idx[order]
    first = np.unique(point_idx, return_index=True)[1]
    return point_idx[first], grid_idx[first]


_ROW_COLUMNS = ["district", "street", "community", "grid_id", "level", "detail", "id_suffix"]


def merge_tiles(geoms: np.ndarray):
    """Union of polygons that should tile without overlap (fast); exact union when they do not."""
    if shapely.coverage_is_valid(geoms):
        return shapely.coverage_union_all(geoms)
    return shapely.union_all(geoms)


def _significant(parts: np.ndarray, params: Params) -> np.ndarray:
    """Parts beyond the sliver tolerance: big enough and wider than a hairline."""
    big = shapely.area(parts) >= params.sliver_m2
    if params.sliver_width_m > 0 and big.any():
        # wider than a hairline: some point lies more than half the width inside
        half = params.sliver_width_m / 2
        candidates = parts[big]
        # most wide parts say so at once: a point inside them far from their edge
        wide = shapely.distance(shapely.point_on_surface(candidates), shapely.boundary(candidates)) > half
        unsure = np.flatnonzero(~wide)
        few = shapely.get_num_coordinates(candidates[unsure]) < SMALL_PART_VERTICES
        # a negative buffer is exact and quick on small parts but took minutes and gigabytes on a
        # 100k-vertex one; the largest inscribed circle is O(n log n) there (slow only on long thin boxes)
        wide[unsure[few]] = ~shapely.is_empty(shapely.buffer(candidates[unsure[few]], -half))
        if (~few).any():
            circles = shapely.maximum_inscribed_circle(candidates[unsure[~few]], tolerance=half / 10)
            wide[unsure[~few]] = shapely.length(circles) > half
        big[big] = wide
    return big


def _tiling_and_overlaps(grids, grid_geoms, districts, crs, params: Params, shapes: dict | None = None,
                         invalid_edges: np.ndarray | None = None) -> list[_Gaps]:
    """Land of a district in no grid, grids reaching outside their district, land in two grids.
    ``shapes``: ``district_shapes(districts, crs, …)``, ``invalid_edges``: ``_invalid_edges(grid_geoms)``,
    when the caller has them already."""
    invalid_edges = _invalid_edges(grid_geoms) if invalid_edges is None else invalid_edges
    overlaps = _overlaps(grids, grid_geoms, np.flatnonzero(invalid_edges), params)

    cities = has_cities(grids)  # a district is named by its city too: two cities' 市辖区 are two districts
    shapes = district_shapes(districts, crs, cities) if shapes is None else shapes

    def district_gaps(key, positions) -> tuple[list, list]:
        return _district_gaps(grids, grid_geoms[positions], positions, invalid_edges[positions].any(), key,
                              shapes, cities, params)

    columns = unit_columns("district", cities)
    by_district = key_table(grids, columns).groupby(columns, sort=True).indices
    # each district is one union and two differences of large shapes: the districts share the threads
    with ThreadPoolExecutor(THREADS) as pool:
        done = list(pool.map(lambda item: district_gaps(*item), by_district.items()))
    rows = [row for part_rows, _ in done for row in part_rows]
    geoms = [geom for _, part_geoms in done for geom in part_geoms]
    tiling = _Gaps("tiling_gap", pd.DataFrame(rows, columns=[CITY, *_ROW_COLUMNS]), np.array(geoms, dtype=object))
    return [tiling, overlaps]


def _district_gaps(grids, geoms_d, positions, any_invalid: bool, key, shapes, cities: bool,
                   params: Params) -> tuple[list, list]:
    """One district's tiling gaps: its land in no grid, and its grids reaching outside it.
    ``geoms_d``: the metric shapes of its grids, at ``positions`` of ``grids``."""
    key = key if isinstance(key, tuple) else (key,)
    name, city = key[-1], (key[0] or None) if cities else None
    rows, geoms = [], []
    union = shapely.coverage_union_all(geoms_d) if not any_invalid else shapely.union_all(geoms_d)
    land = district_shape(shapes, key)
    # without district boundaries, holes inside the grids' union are the gaps
    holes = shapely.difference(land, union) if land is not None else _holes(union)
    parts = shapely.get_parts(holes)
    for n, part in enumerate(parts[_significant(parts, params)], start=1):
        rows.append({CITY: city, "district": name, "street": None, "community": None, "grid_id": None,
                     "level": None, "id_suffix": f"{'.'.join(key)}.{n}",
                     "detail": gapdetail.template("tiling_gap").format(name=name, area=f"{part.area:,.0f}")})
        geoms.append(part)
    if land is None:
        return rows, geoms
    # the grids' land outside the district, by the areas at hand: too small for one part to count
    # (as a rule: grids cut from the district's outline), it needs no second overlay of the two
    outside_m2 = shapely.area(union) - shapely.area(land) + shapely.area(holes)
    if outside_m2 < params.sliver_m2 - max(1.0, 1e-9 * shapely.area(land)):  # less what rounding may hide
        return rows, geoms
    outside = shapely.get_parts(shapely.difference(union, land))
    outside = outside[_significant(outside, params)]
    if len(outside):
        hit = np.unique(shapely.STRtree(geoms_d).query(outside, predicate="intersects")[1])
        for i in hit:
            part = shapely.difference(geoms_d[i], land)
            if _significant(np.array([part]), params)[0]:
                row = grids.iloc[positions[i]]
                rows.append({CITY: city, "district": name, "street": row["street"], "community": row["community"],
                             "grid_id": row["grid_id"], "level": None, "id_suffix": f"outside.{row['grid_id']}",
                             "detail": gapdetail.template("outside").format(name=row["name"],
                                                                            area=f"{part.area:,.0f}", district=name)})
                geoms.append(part)
    return rows, geoms


def _invalid_edges(grid_geoms: np.ndarray) -> np.ndarray:
    """Which grids have edges that do not match their neighbours' (``shapely.coverage_invalid_edges``).

    A grid each edge of which is one other grid's edge run the other way is valid: GEOS finds every
    edge matched and stops there (``_matched_edges``, in numpy). The others, most at the data's
    rim, are checked with the grids whose envelopes touch them (GEOS checks a polygon against
    exactly those, so the answer is the same), in THREADS bands from west to east when many.
    """
    out = np.zeros(len(grid_geoms), dtype=bool)
    unsure = np.flatnonzero(~_matched_edges(grid_geoms))
    if not len(unsure):
        return out
    parts = max(1, min(THREADS, len(unsure) // _CHUNK))
    box = shapely.bounds(grid_geoms[unsure])
    bands = [unsure[b] for b in np.array_split(np.argsort(box[:, 0] + box[:, 2], kind="stable"), parts)]
    tree = shapely.STRtree(grid_geoms)
    # queried here, not in the threads: GEOS builds a tree on its first query
    checked = [np.union1d(members, tree.query(grid_geoms[members])[1]) for members in bands]  # sorted

    def band(members: np.ndarray, checked: np.ndarray) -> np.ndarray:
        invalid = ~shapely.is_empty(shapely.coverage_invalid_edges(grid_geoms[checked]))
        return invalid[np.searchsorted(checked, members)]

    with ThreadPoolExecutor(parts) as pool:
        for members, invalid in zip(bands, pool.map(band, bands, checked)):
            out[members] = invalid
    return out


def _matched_edges(geoms: np.ndarray) -> np.ndarray:
    """Polygons every edge of which is the edge of exactly one other polygon, run the other way
    (the interiors on its two sides): GEOS's coverage check finds them valid at once. Only
    polygons without holes can be sure; an edge the others (multipolygons, holes) have too is not."""
    sure = np.zeros(len(geoms), dtype=bool)
    simple = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
    simple = np.flatnonzero(simple & ~shapely.is_empty(geoms))
    if not len(simple):
        return sure
    xy, owner = shapely.get_coordinates(geoms[simple], return_index=True)  # each ring closed, one after another
    others = np.setdiff1d(np.arange(len(geoms)), simple)
    if len(others):  # their rings, numbered after the simple polygons
        other_xy, other_ring = shapely.get_coordinates(shapely.get_rings(shapely.get_parts(geoms[others])),
                                                         return_index=True)
        xy, owner = np.concatenate([xy, other_xy]), np.concatenate([owner, len(simple) + other_ring])
    if not np.isfinite(xy).all():
        return sure
    starts_edge = np.r_[owner[1:] == owner[:-1], False]  # a ring's closing point starts no edge
    at = np.flatnonzero(starts_edge)
    edge_owner = owner[at]
    # a vertex's id: equal coordinates, equal ids (one sort of the numbers x + iy)
    _, point = np.unique(xy[:, 0] + 1j * xy[:, 1], return_inverse=True)
    point = point.ravel().astype(np.int64)
    a, b = point[at], point[at + 1]
    # each ring's orientation from its signed area; each edge with the interior on its right (as GEOS)
    signed = np.bincount(edge_owner, weights=xy[at, 0] * xy[at + 1, 1] - xy[at + 1, 0] * xy[at, 1])
    flip = (signed > 0)[edge_owner]  # a ccw shell: interior on the left
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    key = np.minimum(a, b) * (len(xy) + 1) + np.maximum(a, b)
    order = np.argsort(key, kind="stable")
    key, forward, edge_owner, degenerate = key[order], (a < b)[order], edge_owner[order], (a == b)[order]
    new = np.r_[True, key[1:] != key[:-1]]
    group = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    pair = np.bincount(group) == 2
    matched = np.zeros(len(first), dtype=bool)
    at = first[pair]
    matched[pair] = ((forward[at] != forward[at + 1]) & (edge_owner[at] != edge_owner[at + 1])
                     & (edge_owner[at] < len(simple)) & (edge_owner[at + 1] < len(simple)))
    sure[simple] = signed[:len(simple)] != 0
    bad = edge_owner[~matched[group] | degenerate]
    sure[simple[bad[bad < len(simple)]]] = False
    return sure


def _holes(union) -> object:
    rings = [ring for poly in shapely.get_parts(union) for ring in poly.interiors]
    return shapely.MultiPolygon([shapely.Polygon(r) for r in rings]) if rings else shapely.Polygon()


def _overlaps(grids, grid_geoms, candidates: np.ndarray, params: Params) -> _Gaps:
    """Land in two grids.  Only grids whose edges fail the coverage check can overlap."""
    empty = _Gaps("overlap", pd.DataFrame(columns=_ROW_COLUMNS), np.array([], dtype=object))
    if len(candidates) < 2:
        return empty
    geoms = grid_geoms[candidates]
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = a < b
    order = np.lexsort((b[keep], a[keep]))  # pairs in the grids' order (the tree's own order is its own)
    a, b = a[keep][order], b[keep][order]
    shared = shapely.intersection(geoms[a], geoms[b])
    shared = shapely.get_parts(shared, return_index=True)
    parts, pair = shared
    polygonal = shapely.get_type_id(parts) == 3
    parts, pair = parts[polygonal], pair[polygonal]
    if not len(parts):
        return empty
    # one overlap per pair of grids: the polygonal parts of their intersection together
    pairs, inverse = np.unique(pair, return_inverse=True)
    merged = np.array([shapely.union_all(parts[inverse == k]) for k in range(len(pairs))], dtype=object)
    significant = _significant(merged, params)
    pairs, merged = pairs[significant], merged[significant]
    first, second = candidates[a[pairs]], candidates[b[pairs]]
    ids = grids["grid_id"].to_numpy()
    said = gapdetail.template("overlap")
    rows = _grid_rows(grids, first, [said.format(a=ids[i], b=ids[j], area=f"{g.area:,.0f}")
                                     for i, j, g in zip(first, second, merged)])
    rows["id_suffix"] = [f"{ids[i]}.{ids[j]}" for i, j in zip(first, second)]
    return _Gaps("overlap", rows, merged)


def _staffing_gaps(grids, grid_geoms) -> _Gaps:
    def blank(column):
        # each distinct value looked at once (a few thousand names among 85k grids), missing ones as -1
        codes, values = pd.factorize(grids[column], use_na_sentinel=True)
        empty = np.array([isinstance(v, str) and not v.strip() for v in values.tolist()] + [True], bool)
        return empty[codes]

    workers = pd.to_numeric(grids["grid_workers"]).astype("Float64")
    missing = {
        "instructor": blank("instructor"),
        "party_branch": blank("party_branch"),
        "grid_workers": (workers.isna() | (workers == 0)).to_numpy(bool),
    }
    any_missing = np.logical_or.reduce(list(missing.values()))
    positions = np.flatnonzero(any_missing)
    names = grids["name"].to_numpy()
    details = [gapdetail.staffing(names[i], [column for column, mask in missing.items() if mask[i]])
               for i in positions]
    return _Gaps("staffing_gap", _grid_rows(grids, positions, details), grid_geoms[positions])


def _gaps_frame(parts: list[_Gaps], crs) -> gpd.GeoDataFrame:
    frames, geoms = [], []
    for gaps in parts:
        if gaps.rows.empty:
            continue
        rows = gaps.rows.copy()
        rows.insert(0, "kind", gaps.kind)
        rows.insert(0, "gap_id", gaps.kind + "." + rows["id_suffix"].astype(str))
        frames.append(rows.drop(columns="id_suffix"))
        geoms.append(gaps.geoms)
    if not frames:
        return _empty_gaps()
    table = pd.concat(frames, ignore_index=True)
    metric = gpd.GeoSeries(np.concatenate(geoms), crs=crs)
    table["area_m2"] = np.round(metric.area.to_numpy(), 1)
    table = table[gap_columns(table)]
    return gpd.GeoDataFrame(table.astype(object).where(table.notna(), None).astype({"area_m2": float}),
                            geometry=metric.to_crs(STORAGE_CRS).values, crs=STORAGE_CRS)


GAP_COLUMNS = ["gap_id", "kind", "level", "district", "street", "community", "grid_id", "area_m2", "detail"]


def gap_columns(table: pd.DataFrame) -> list[str]:
    """The gaps' columns: with ``city`` before ``district`` when the data names cities."""
    if not has_cities(table):
        return GAP_COLUMNS
    at = GAP_COLUMNS.index("district")
    return [*GAP_COLUMNS[:at], CITY, *GAP_COLUMNS[at:]]


def _empty_gaps() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in GAP_COLUMNS}, geometry=[], crs=STORAGE_CRS)


# --- summaries -----------------------------------------------------------------------------

SUMMARY_COLUMNS = ["grids", "population", "covered_population", "covered_share",
                   *(f"grids_{s}" for s in STATUSES), *GAP_KINDS]


def summarise(coverage: gpd.GeoDataFrame, gaps: gpd.GeoDataFrame,
              districts: gpd.GeoDataFrame | None = None, in_order=None) -> dict[str, pd.DataFrame]:
    """Grids, population, covered population and share, and gap counts for the whole and every unit.

    ``total`` is one row for the whole dataset; ``city`` one row a city when the grids name cities
    (without, the one row of ``total``: a one-city deployment); then every district, street and
    community, each named by its whole key (its city first when there are cities). The units'
    rows are in administrative order (``geodata.order``: adcodes from ``districts``; ``in_order``:
    ``orderer(coverage, adcodes(districts))`` when the caller has it already).
    """
    cities = has_cities(coverage)
    keys = unit_columns("community", cities)
    status = coverage["coverage_status"].to_numpy(dtype=object)
    table = key_table(coverage, keys).assign(
        grids=1,
        population=pd.to_numeric(coverage["population"]).astype("Float64").fillna(0).astype(float),
        covered_population=pd.to_numeric(coverage["covered_population"]).astype("Float64").fillna(0).astype(float),
        **{f"grids_{s}": (status == s).astype(int) for s in STATUSES},
        **{name: pd.to_numeric(coverage[name]).astype("Float64").fillna(0).astype(float)
           for name in walking_people(coverage)})
    # every level sums the communities' sums: grouping 85k grids once, not once a level
    table = table.groupby(keys, sort=False, dropna=False, observed=True).sum().reset_index()
    gap_table = pd.DataFrame(gaps.drop(columns=gaps.geometry.name))
    if cities and (CITY not in gap_table.columns or gap_table[CITY].isna().any()):  # else each has its own
        gap_table[CITY] = _gap_cities(gap_table, coverage)
    whole = "_whole"  # a key every row shares
    out = {"total": _summary(table.assign(**{whole: True}), gap_table.assign(**{whole: True}), [whole])
           .drop(columns=whole)}
    in_order = orderer(coverage, adcodes(districts)) if in_order is None else in_order
    for level in (CITY, *LEVELS):
        if not unit_columns(level, cities):
            out[level] = out["total"]  # one city, as before: the whole
            continue
        frame = in_order(_summary(table, gap_table, unit_columns(level, cities))).reset_index(drop=True)
        if cities:
            frame[CITY] = shown_city(frame[CITY])
        out[level] = frame
    return out


def _gap_cities(gaps: pd.DataFrame, coverage: gpd.GeoDataFrame) -> pd.Series:
    """Each gap's city as a key (``NO_CITY`` for none): its own, else its grid's, else its district's
    when only one city has a district of that name."""
    own = gaps[CITY].astype(object) if CITY in gaps.columns else pd.Series(None, index=gaps.index, dtype=object)
    own = own.where(own.notna() & (own != NO_CITY), None)
    cities = key_table(coverage, [CITY, "district"])
    by_grid = pd.Series(cities[CITY].to_numpy(), index=coverage["grid_id"].astype(object).to_numpy())
    by_grid = by_grid[~by_grid.index.duplicated()]
    own = own.fillna(gaps["grid_id"].map(by_grid))
    pairs = cities.drop_duplicates()
    by_district = pairs.drop_duplicates("district", keep=False).set_index("district")[CITY]
    own = own.fillna(gaps["district"].map(by_district))
    return own.fillna(NO_CITY)


def walking_people(table: pd.DataFrame) -> list[str]:
    """The walking analysis' people columns ``table`` (grids or summary rows) has: the discs' covered people,
    the walk gap's and each life circle's (``walking_columns``); none in a disc analysis."""
    return [c for c in table.columns if c in ("disc_covered_population", "walk_gap_population")
            or (c.startswith("ring_") and c.endswith("_population"))]


def _summary(table: pd.DataFrame, gaps: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``table``'s rows (grids, or units with their grids' sums) and ``gaps`` summed by ``keys``."""
    walking = walking_people(table)
    result = table.groupby(keys, sort=True)[["grids", "population", "covered_population",
                                             *(f"grids_{s}" for s in STATUSES), *walking]].sum()
    counted = gaps.dropna(subset=keys) if not gaps.empty else gaps
    if not counted.empty:
        kinds = counted.groupby(keys + ["kind"]).size().unstack(fill_value=0)
        result = result.join(kinds.reindex(columns=list(GAP_KINDS), fill_value=0))
    counts = [f"grids_{s}" for s in STATUSES] + list(GAP_KINDS)
    result = result.reindex(columns=[*result.columns, *(c for c in counts if c not in result.columns)])
    result[counts] = result[counts].fillna(0).astype(int)
    result["population"] = result["population"].round().astype(int)
    result["covered_population"] = result["covered_population"].round().astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = result["covered_population"] / result["population"].replace(0, np.nan)
    result["covered_share"] = share.round(4)
    for name in walking:
        result[name] = result[name].round().astype(int)
    extra = []
    if walking:  # the disc's covered share beside the walk's, then the people of the walk gap and the rings
        with np.errstate(invalid="ignore", divide="ignore"):
            share = result["disc_covered_population"] / result["population"].replace(0, np.nan)
        result["disc_covered_share"] = share.round(4)
        extra = ["disc_covered_population", "disc_covered_share", *walking[1:]]
    return result.reset_index()[keys + SUMMARY_COLUMNS + extra]


def _empty_analysis(grids: gpd.GeoDataFrame, params: Params) -> Analysis:
    coverage = grids.assign(coverage_ratio=pd.Series(dtype=float), covered_population=pd.Series(dtype="Int64"),
                            coverage_status=pd.Series(dtype=object))
    gaps = _empty_gaps()
    return Analysis(params, STORAGE_CRS, coverage, gaps, summarise(coverage, gaps))
