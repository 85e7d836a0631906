"""Where to build next: new centre sites that cover the most people not yet covered.

The baseline is the analysis' own: each grid's covered people are its population
times the share of its area inside existing catchments (``geodata.coverage``), so
``covered_before`` is the summary's ``covered_population``.  Demand is the rest of
each grid's people, spread over points of a lattice inside the grid's uncovered part
(so a large rural grid is many points, not one).  Candidates are these demand points
themselves (at most ``MAX_CANDIDATES``, the most populous), never within
``MIN_SPACING_M`` of an existing centre of the same level.  The greedy solver
adds, one at a time, the site that covers the most still-uncovered people: a
(1 − 1/e) approximation of the maximal covering location problem (MCLP).  For
small k, PySAL spopt's exact MCLP runs too, on the most populous candidates and
within a time limit; the better answer is returned and the solver named.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from scipy.sparse import csgraph

from . import network
from .coverage import LEVELS, Params, catchments, covered_population, grid_coverage, walks
from .crs import STORAGE_CRS, metric_crs
from .errors import BadRequest
from .i18n import says
from .unitkeys import UNIT_KEYS, has_cities, unit_columns

LATTICE_M = 250.0  # demand points every 250 m inside each grid (and at least one per grid)
MAX_CANDIDATES = 3000
MIN_SPACING_M = 100.0  # a new site is never (nearly) where a centre of its level already stands
MAX_K = 50
SOLVERS = ("auto", "greedy", "mclp")
MCLP_MAX_K = 10  # "auto" tries the exact solver up to this many sites
MCLP_CANDIDATES = 300  # its model grows with candidates × reachable demand points
MCLP_SECONDS = 4.0


@dataclass(frozen=True, eq=False)
class Recommendation:
    sites: gpd.GeoDataFrame  # rank, new_population, …, level, (city,) district, street, community
    solver: str
    population: int
    covered_before: int
    reason: str | None = None  # why fewer than k sites came back


def recommend(grids: gpd.GeoDataFrame, centers: gpd.GeoDataFrame, level: str = "community", k: int = 5,
              params: Params = Params(), unit: dict[str, str] | None = None, solver: str = "auto",
              roads: gpd.GeoDataFrame | None = None) -> Recommendation:
    """Choose up to ``k`` new sites of ``level`` that newly cover the most people.

    ``unit`` (e.g. {"district": "海曙区"}, or {"city": "宁波市", "district": "海曙区"} when the grids
    name cities) restricts both demand and sites to that unit: every name given must match.
    With ``params.catchment`` network and ``roads``, coverage is walked (as the analysis walks it) and a site
    covers the demand points within its level's distance on foot (``walking_pairs``), for either solver.

    Examples
    --------
    >>> rec = recommend(grids, centers, "community", k=3)  # doctest: +SKIP
    >>> rec.sites[["rank", "new_population"]]  # doctest: +SKIP
    """
    if level not in LEVELS:
        raise BadRequest(says("params.one_of", name="level", choices=", ".join(LEVELS), value=repr(level)))
    if not 1 <= k <= MAX_K:
        raise BadRequest(says("siting.k", most=MAX_K, value=k))
    if solver not in SOLVERS:
        raise BadRequest(says("params.one_of", name="solver", choices=", ".join(SOLVERS), value=repr(solver)))
    if grids.empty:
        raise BadRequest(says("siting.no_grids"))
    crs = metric_crs(grids)  # the whole city's, as the analysis: the same areas, the same covered people
    cities = has_cities(grids)
    if unit:
        inside = np.ones(len(grids), dtype=bool)
        for column, value in unit.items():
            if column not in UNIT_KEYS:
                raise BadRequest(says("siting.unit_keys", keys=", ".join(UNIT_KEYS), value=repr(column)))
            values = grids[column] if column in grids.columns else pd.Series(None, index=grids.index, dtype=object)
            inside &= (values == value).to_numpy(dtype=bool, na_value=False)
        grids = grids[inside]
        if grids.empty:
            raise BadRequest(says("error.no_grids_in", unit=" / ".join(unit.values())))
    centers_m = centers.to_crs(crs) if not centers.empty else centers
    grid_geoms = grids.geometry.to_crs(crs).values
    walking = walks(params, roads)
    roads_m = roads.to_crs(crs) if walking else None
    ratio, uncovered = grid_coverage(grid_geoms, catchments(centers_m, params, roads_m))
    people = pd.to_numeric(grids["population"]).astype("Float64").fillna(0).to_numpy(float)
    covered = covered_population(grids, ratio).astype("Float64").fillna(0).to_numpy(float)
    points, weights, owner = demand(grid_geoms, uncovered, np.maximum(people - covered, 0))
    candidates = _candidates(points, weights, owner, centers_m, level)
    args = (points, weights, candidates[0], params.radius(level), k)
    pairs = walking_pairs(network.network_of(roads_m), candidates[0], points, params.radius(level),
                          params.walk_access_m) if walking else None
    sites, gains = greedy(*args, pairs=pairs) if solver != "mclp" else (np.array([], dtype=int), np.array([]))
    used = "greedy"
    if solver == "mclp" or (solver == "auto" and k <= MCLP_MAX_K):
        exact = mclp(*args, pairs=pairs)
        if exact is not None and (solver == "mclp" or exact[1].sum() > gains.sum()):
            (sites, gains), used = exact, "mclp"
        elif solver == "mclp":
            sites, gains = greedy(*args, pairs=pairs)  # no exact answer in time: say so by naming the solver that ran
    population = int(round(people.sum()))
    before = int(round(covered.sum()))  # exactly the summary's covered_population of these grids
    chosen = candidates[1][sites]
    rows = grids.iloc[chosen][unit_columns("community", cities)].reset_index(drop=True)
    rows.insert(0, "rank", np.arange(1, len(sites) + 1))
    rows.insert(1, "new_population", np.round(gains).astype(int))
    rows.insert(2, "cumulative_population", before + np.cumsum(np.round(gains)).astype(int))
    rows.insert(3, "covered_share", np.round(rows["cumulative_population"] / max(population, 1), 4))
    rows.insert(4, "level", level)
    geometry = gpd.GeoSeries(candidates[0][sites], crs=crs).to_crs(STORAGE_CRS).values
    reason = None
    if len(sites) < k:
        reason = (says("siting.only_some", count=len(sites)) if weights.sum() >= 0.5
                  else says("siting.all_covered"))  # said in the reader's language where it is answered
    return Recommendation(gpd.GeoDataFrame(rows, geometry=geometry, crs=STORAGE_CRS), used, population,
                          before, reason)


def demand(grid_geoms: np.ndarray, parts: np.ndarray,
           people: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Demand points in metric coordinates, their people, and the position of their grid.

    Each grid's ``people`` are spread evenly over the points of a lattice (laid over the
    grid's box) that fall in its ``parts`` (its uncovered part; the grid itself when
    nothing covers it); a part no lattice point falls in gets its representative point.
    """
    minx, miny, maxx, maxy = shapely.bounds(grid_geoms).T
    nx = np.maximum(1, np.ceil((maxx - minx) / LATTICE_M)).astype(int)
    ny = np.maximum(1, np.ceil((maxy - miny) / LATTICE_M)).astype(int)
    counts = nx * ny
    owner = np.repeat(np.arange(len(grid_geoms)), counts)
    # position of each lattice point within its grid's box
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    x = np.repeat(minx, counts) + (local % np.repeat(nx, counts) + 0.5) * LATTICE_M
    y = np.repeat(miny, counts) + (local // np.repeat(nx, counts) + 0.5) * LATTICE_M
    parts = np.asarray(parts, dtype=object)
    inside = shapely.contains_xy(parts[owner], x, y)
    # parts too small or thin for any lattice point (and not empty: fully covered grids have no demand)
    missing = np.setdiff1d(np.flatnonzero(~shapely.is_empty(parts)), owner[inside])
    reps = shapely.point_on_surface(parts[missing])
    missing, reps = missing[~shapely.is_empty(reps)], shapely.get_coordinates(reps[~shapely.is_empty(reps)])
    xs = np.concatenate([x[inside], reps[:, 0]])
    ys = np.concatenate([y[inside], reps[:, 1]])
    owner = np.concatenate([owner[inside], missing])
    per_point = people / np.maximum(np.bincount(owner, minlength=len(grid_geoms)), 1)
    return shapely.points(xs, ys), per_point[owner], owner


def _candidates(points, weights, owner, centers_m, level) -> tuple[np.ndarray, np.ndarray]:
    """Uncovered demand points as sites (the most populous first), away from same-level centres."""
    order = np.argsort(-weights, kind="stable")[:MAX_CANDIDATES]
    sites, owners = points[order], owner[order]
    if not centers_m.empty:
        same = centers_m[centers_m["level"] == level].geometry.values
        if len(same):
            near = shapely.STRtree(same).query(sites, predicate="dwithin", distance=MIN_SPACING_M)[0]
            keep = np.ones(len(sites), dtype=bool)
            keep[near] = False
            sites, owners = sites[keep], owners[keep]
    return sites, owners


def walking_pairs(net: network.Network, sites: np.ndarray, points: np.ndarray, radius: float,
                  access_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(site, point) positions, sorted by site: the demand points within ``radius`` on foot of each site.

    Sites and points are snapped to their nearest road point (as centres are, ``network``); a point counts
    when the walk between the two snapped points is at most ``radius`` and the point is within ``access_m`` of
    its road (the land a walking catchment holds)."""
    if net.empty or not len(sites) or not len(points):
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    k = len(sites)
    xy = shapely.get_coordinates(np.concatenate([sites, points]))
    graph, src, edge, t = network._with_sources(net, xy)
    near_road = shapely.distance(points, net.segments[edge[k:]]) <= access_m
    by_edge = np.argsort(edge[k:], kind="stable")  # points by their segment: a site walks to those on its own
    point_edges = edge[k:][by_edge]
    out_s, out_p = [], []
    for start in range(0, k, network.SOURCE_BATCH):
        batch = np.arange(start, min(k, start + network.SOURCE_BATCH))
        dist = csgraph.dijkstra(graph, directed=False, indices=src[batch], limit=radius)[:, src[k:]]
        for row, i in enumerate(batch):  # along its own segment, straight (the graph goes by the segment's ends)
            lo, hi = np.searchsorted(point_edges, [edge[i], edge[i] + 1])
            same = by_edge[lo:hi]
            dist[row, same] = np.minimum(dist[row, same], np.abs(t[k + same] - t[i]))
        s, p = np.nonzero((dist <= radius) & near_road[None, :])
        out_s.append(batch[s])
        out_p.append(p)
    return np.concatenate(out_s), np.concatenate(out_p)


def greedy(points: np.ndarray, weights: np.ndarray, sites: np.ndarray, radius: float,
           k: int, pairs: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pick up to ``k`` sites, each the one covering the most weight not yet covered; (site positions, gains).
    ``pairs``: which points each site covers (sorted by site), when not those within ``radius`` (``walking_pairs``)."""
    if len(sites) == 0 or len(points) == 0:
        return np.array([], dtype=int), np.array([])
    site_idx, point_idx = pairs if pairs is not None else shapely.STRtree(points).query(
        sites, predicate="dwithin", distance=radius)
    starts = np.searchsorted(site_idx, np.arange(len(sites) + 1))  # query pairs come sorted by site
    remaining = weights.astype(float).copy()
    chosen, gains = [], []
    for _ in range(k):
        gain = np.bincount(site_idx, weights=remaining[point_idx], minlength=len(sites))
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        chosen.append(best)
        gains.append(gain[best])
        remaining[point_idx[starts[best]:starts[best + 1]]] = 0.0
    return np.array(chosen, dtype=int), np.array(gains)


def mclp(points: np.ndarray, weights: np.ndarray, sites: np.ndarray, radius: float,
         k: int, pairs: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The exact MCLP (spopt + CBC) on the first ``MCLP_CANDIDATES`` sites; None without an optimum in time.
    ``pairs``: which points each site covers (sorted by site), when not those within ``radius`` (``walking_pairs``).

    The chosen sites come ranked as the greedy order among them, with their marginal gains.
    """
    import pulp
    from spopt.locate import MCLP

    n = min(len(sites), MCLP_CANDIDATES)
    if n == 0 or len(points) == 0:
        return None
    site_idx, point_idx = pairs if pairs is not None else shapely.STRtree(points).query(
        sites[:n], predicate="dwithin", distance=radius)
    site_idx, point_idx = site_idx[site_idx < n], point_idx[site_idx < n]
    reach = np.unique(point_idx)
    if len(reach) == 0:
        return None
    # demand × sites: 0 where the site covers the point, else beyond the radius (straight or on foot alike)
    cost = np.full((len(reach), n), 2.0 * radius + 1.0)
    cost[np.searchsorted(reach, point_idx), site_idx] = 0.0
    model = MCLP.from_cost_matrix(cost, weights[reach], service_radius=radius, p_facilities=min(k, n))
    model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=MCLP_SECONDS))
    if model.problem.sol_status != pulp.LpSolutionOptimal:
        return None
    selected = np.array([j for j, var in enumerate(model.fac_vars) if var.value() > 0.5], dtype=int)
    mine = np.isin(site_idx, selected)  # the chosen sites' pairs, numbered among them (still sorted by site)
    among = (np.searchsorted(selected, site_idx[mine]), point_idx[mine])
    order, gains = greedy(points, weights, sites[selected], radius, len(selected), pairs=among)
    return selected[order], gains
