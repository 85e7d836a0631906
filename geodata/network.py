"""Walking catchments along the road network (SPEC §2, issue #16), framework-neutral.

The graph is built once per roads content (:func:`network_of`) from the walkable roads in
the analysis' metric CRS:

- every road is cut into its straight segments; each distinct vertex (to the millimetre)
  is a node, so roads meet where they share a vertex — at their ends or at a common
  vertex — and **not** where they merely cross.  That is how GIS road networks are drawn
  (OSM ways meet at shared nodes; ArcGIS Network Analyst's "any vertex" connectivity): a
  bridge or an underpass crosses a road without meeting it.
- edges are the segments, weighted by their length in metres (duplicates once).

A centre is snapped to the nearest point of the nearest segment (however far: the way to the
road is not taken off its radius, as SPEC §2 says), which splits that segment: the centre is a
node joined to the segment's two ends by the two parts.  Walking distances come from scipy's
Dijkstra (``scipy.sparse.csgraph``), stopped at the level's radius; every segment is reached
from each end as far as the distance left allows (partial segments cut at the exact remaining
distance: they are straight, so the cut is a linear interpolation), and the catchment is the
land within ``access_m`` of what is reached (``GRIDMAP_WALK_ACCESS_M``, default 100 m).

Coverage needs only the union of the catchments: :func:`reached` walks from all centres of a
level at once (one multi-source Dijkstra) and :func:`covered_land` buffers the union in tiles.
:func:`reach` and :func:`catchments` give each centre's own (for one centre's reach, or a map).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from collections import OrderedDict
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

NODE_PRECISION_M = 0.001  # vertices closer than a millimetre are one node
# the round ends of the streets reached: a 32-gon a circle (0.6 % short of πa², on the ends only: the buffers
# cost twice as much with coverage.QUAD_SEGS' 64-gon, and the discs' 0.2 % rule is about whole discs)
BUFFER_QUAD_SEGS = 8
SOURCE_BATCH = 128  # centres walked in one Dijkstra call: memory batch × nodes × 8 bytes
_TINY = 1e-9  # csgraph takes a stored 0 for "no edge": a centre exactly on a vertex is this far from it


@dataclass(frozen=True, eq=False)
class Network:
    """The walkable roads as a graph: nodes, straight edges, and a tree to snap points to them."""

    xy: np.ndarray  # (nodes, 2) coordinates in the metric CRS
    u: np.ndarray  # each edge's first node
    v: np.ndarray  # ... and second node
    length: np.ndarray  # each edge's length, m
    graph: sparse.csr_matrix  # symmetric, nodes × nodes, weights = lengths
    segments: np.ndarray  # each edge as a two-point LineString from u to v
    tree: shapely.STRtree  # over ``segments``
    snaps: dict = field(default_factory=dict, repr=False)  # a point's bytes -> its segment and place on it

    @property
    def empty(self) -> bool:
        return len(self.u) == 0

    def components(self) -> np.ndarray:
        """Each node's connected component (labels 0…)."""
        return csgraph.connected_components(self.graph, directed=False)[1]


def walkable(roads: gpd.GeoDataFrame) -> np.ndarray:
    """The geometries of the roads people walk along (``walkable`` blank counts as true)."""
    if roads is None or roads.empty:
        return np.array([], dtype=object)
    keep = np.ones(len(roads), dtype=bool)
    if "walkable" in roads.columns:
        # a plain loop over a list: Series.map costs several times as much a value
        keep = ~np.array([isinstance(v, (bool, np.bool_)) and not v for v in roads["walkable"].tolist()], dtype=bool)
    return np.asarray(roads.geometry.values, dtype=object)[keep]


def segments_of(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every straight segment of the lines ``geoms``: start and end coordinates and the feature each belongs to."""
    geoms = np.asarray(geoms, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    parts, owner = shapely.get_parts(geoms[present], return_index=True)
    owner = np.flatnonzero(present)[owner]
    coords, part = shapely.get_coordinates(parts, return_index=True)
    same = part[1:] == part[:-1]
    return coords[:-1][same], coords[1:][same], owner[part[:-1][same]]


def build(geoms: np.ndarray) -> Network:
    """The graph of the lines ``geoms`` (metric CRS), noded at shared vertices (see the module's note)."""
    a, b, _ = segments_of(geoms)
    ends = np.round(np.vstack([a, b]) / NODE_PRECISION_M).astype(np.int64)
    keys, node = np.unique(ends, axis=0, return_inverse=True)
    node = node.ravel()
    xy = keys * NODE_PRECISION_M
    u, v = node[:len(a)], node[len(a):]
    real = u != v  # a segment of repeated vertices joins nothing
    pairs = np.unique(np.sort(np.column_stack([u[real], v[real]]), axis=1), axis=0)  # duplicates once
    u, v = pairs[:, 0], pairs[:, 1]
    length = np.hypot(*(xy[v] - xy[u]).T)
    n = len(xy)
    graph = sparse.csr_matrix((np.r_[length, length], (np.r_[u, v], np.r_[v, u])), shape=(n, n))
    segments = shapely.linestrings(np.stack([xy[u], xy[v]], axis=1)) if len(u) else np.array([], dtype=object)
    return Network(xy, u, v, length, graph, segments, shapely.STRtree(segments))


_CACHE: OrderedDict[str, Network] = OrderedDict()
_CACHE_SIZE = 4
_LOCK = threading.Lock()


def network_of(roads_m: gpd.GeoDataFrame) -> Network:
    """:func:`build` of the walkable ``roads_m``, built once per content (roads versions, CRS) in this process."""
    geoms = walkable(roads_m)
    digest = hashlib.sha256(b"".join(shapely.to_wkb(geoms, hex=False)) if len(geoms) else b"").hexdigest()
    with _LOCK:
        if digest in _CACHE:
            _CACHE.move_to_end(digest)
            return _CACHE[digest]
    net = build(geoms)
    with _LOCK:
        _CACHE[digest] = net
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return net


@dataclass(frozen=True)
class Reach:
    """The pieces of road each centre reaches: straight pieces from ``a`` to ``b``, of centre ``owner``."""

    a: np.ndarray
    b: np.ndarray
    owner: np.ndarray

    def lines(self) -> np.ndarray:
        return shapely.linestrings(np.stack([self.a, self.b], axis=1)) if len(self.a) else np.array([], dtype=object)


def reach(net: Network, xy: np.ndarray, radii: np.ndarray) -> Reach:
    """What each centre at ``xy`` reaches within its radius along ``net`` (the pieces of every segment)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    radii = np.asarray(radii, dtype=float)
    k = len(xy)
    if net.empty or k == 0:
        return Reach(np.empty((0, 2)), np.empty((0, 2)), np.empty(0, dtype=int))
    graph, src, edge, t = _with_sources(net, xy)
    n = len(net.xy)
    pieces_a, pieces_b, owners = [], [], []
    pu, pv = net.xy[net.u], net.xy[net.v]
    for level_radius in np.unique(radii):
        members = np.flatnonzero(radii == level_radius)
        for start in range(0, len(members), SOURCE_BATCH):
            batch = members[start:start + SOURCE_BATCH]
            dist = csgraph.dijkstra(graph, directed=False, indices=src[batch], limit=level_radius)[:, :n]
            for row, i in enumerate(batch):
                du, dv = dist[row, net.u], dist[row, net.v]
                left_u, left_v = level_radius - du, level_radius - dv  # inf distances: -inf left
                hit = np.flatnonzero((left_u > 0) | (left_v > 0))
                # (the centre's own edge too: a way round may reach its far end sooner; from the centre, below)
                L = net.length[hit]
                from_u = np.clip(left_u[hit], 0, L)
                from_v = np.clip(left_v[hit], 0, L)
                whole = from_u + from_v >= L
                # from u: [0, from_u]; from v: [L - from_v, L]; one piece when they meet
                for lo, hi, keep in ((np.zeros(len(hit)), np.where(whole, L, from_u), from_u > 0),
                                     (L - from_v, L, ~whole & (from_v > 0))):
                    s = hit[keep]
                    f0, f1 = (lo / L)[keep][:, None], (hi / L)[keep][:, None]
                    pieces_a.append(pu[s] + f0 * (pv[s] - pu[s]))
                    pieces_b.append(pu[s] + f1 * (pv[s] - pu[s]))
                    owners.append(np.full(len(s), i))
                e, r = edge[i], level_radius
                lo, hi = max(0.0, t[i] - r), min(net.length[e], t[i] + r)
                if hi > lo:
                    d = (pv[e] - pu[e]) / net.length[e]
                    pieces_a.append((pu[e] + lo * d)[None])
                    pieces_b.append((pu[e] + hi * d)[None])
                    owners.append(np.array([i]))
    return Reach(np.concatenate(pieces_a), np.concatenate(pieces_b), np.concatenate(owners))


def catchments(net: Network, xy: np.ndarray, radii: np.ndarray, access_m: float) -> np.ndarray:
    """One polygon per centre: the land within ``access_m`` of the road it reaches within its radius
    (an empty polygon for a centre that reaches nothing, e.g. with no roads at all)."""
    k = len(np.asarray(xy).reshape(-1, 2))
    out = np.array([shapely.Polygon()] * k, dtype=object)
    found = reach(net, xy, radii)
    if not len(found.owner):
        return out
    order = np.argsort(found.owner, kind="stable")
    lines = found.lines()[order]
    owner = found.owner[order]
    present = np.unique(owner)
    merged = shapely.multilinestrings(lines, indices=np.searchsorted(present, owner))
    out[present] = shapely.buffer(merged, access_m, quad_segs=BUFFER_QUAD_SEGS)
    return out


def reached(net: Network, xy: np.ndarray, radii: np.ndarray) -> Reach:
    """What any centre reaches (owner -1): the union of :func:`reach`, from one multi-source Dijkstra a level.

    A segment is reached from its end ``u`` as far as the most distance any centre has left there
    (``radius - min over centres of the distance``, per level), likewise from ``v``; each centre's own
    segment also from the centre itself.  Far cheaper than every centre's own walk, and all coverage needs.
    """
    return reached_within(net, xy, radii, (None,))[0]


def reached_within(net: Network, xy: np.ndarray, radii: np.ndarray, limits) -> list[Reach]:
    """:func:`reached` with each centre's radius capped at each of ``limits`` (None: no cap), in that order:
    the walk and its life circles from the same Dijkstras (one a level, to the level's radius: a shorter
    walk is the part of it within the shorter distance)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    radii = np.asarray(radii, dtype=float)
    limits = list(limits)
    k = len(xy)
    if net.empty or k == 0:
        return [Reach(np.empty((0, 2)), np.empty((0, 2)), np.empty(0, dtype=int)) for _ in limits]
    graph, src, edge, t = _with_sources(net, xy)
    n = len(net.xy)
    best = [(np.full(len(net.u), -np.inf), np.full(len(net.u), -np.inf)) for _ in limits]
    for level_radius in np.unique(radii):
        members = np.flatnonzero(radii == level_radius)
        dist = csgraph.dijkstra(graph, directed=False, indices=src[members], limit=level_radius, min_only=True)[:n]
        du, dv = dist[net.u], dist[net.v]
        for (best_u, best_v), limit in zip(best, limits):
            r = level_radius if limit is None else min(level_radius, limit)
            np.maximum(best_u, r - du, out=best_u)
            np.maximum(best_v, r - dv, out=best_v)
    pu, pv, L = net.xy[net.u], net.xy[net.v], net.length
    out = []
    for (best_u, best_v), limit in zip(best, limits):
        own = radii if limit is None else np.minimum(radii, limit)
        from_u, from_v = np.clip(best_u, 0, L), np.clip(best_v, 0, L)
        whole = from_u + from_v >= L
        lo = np.r_[np.zeros(len(L)), (L - from_v)[~whole], np.maximum(0, t - own)]
        hi = np.r_[np.where(whole, L, from_u), L[~whole], np.minimum(L[edge], t + own)]
        e = np.r_[np.arange(len(L)), np.flatnonzero(~whole), edge]
        keep = hi > lo
        e, lo, hi = _disjoint(e[keep], lo[keep], hi[keep])
        d = (pv[e] - pu[e]) / L[e][:, None]
        out.append(Reach(pu[e] + lo[:, None] * d, pu[e] + hi[:, None] * d, np.full(len(e), -1)))
    return out


def _disjoint(e: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The intervals [lo, hi] along edges ``e`` merged where they overlap or meet, one piece each, by edge and
    position: a centre's own edge is reached from its ends and from the centre, and GEOS buffers collinear
    overlapping lines several times slower than the same land as one line."""
    order = np.lexsort((lo, e))
    e, lo, hi = e[order], lo[order], hi[order]
    if not len(e):
        return e, lo, hi
    top = pd.Series(hi).groupby(e).cummax().to_numpy()  # the farthest any earlier piece of the edge reaches
    starts = np.r_[True, (e[1:] != e[:-1]) | (lo[1:] > top[:-1])]
    first = np.flatnonzero(starts)
    return e[first], lo[first], np.maximum.reduceat(hi, first) if len(first) else hi[:0]


def _with_sources(net: Network, xy: np.ndarray):
    """The graph with each centre as a node n+i joined to the ends of its nearest segment by the segment's
    two parts; the centres' nodes, segments and distances along them from ``u``."""
    k = len(xy)
    edge, t = _snapped(net, xy)
    n = len(net.xy)
    src = np.arange(n, n + k)
    w_u, w_v = np.maximum(t, _TINY), np.maximum(net.length[edge] - t, _TINY)
    rows = np.r_[src, net.u[edge], src, net.v[edge]]
    cols = np.r_[net.u[edge], src, net.v[edge], src]
    extra = sparse.csr_matrix((np.r_[w_u, w_u, w_v, w_v], (rows, cols)), shape=(n + k, n + k))
    graph = sparse.block_diag([net.graph, sparse.csr_matrix((k, k))], format="csr") + extra
    return graph, src, edge, t


_SNAPS_KEPT = 500_000


def _snapped(net: Network, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest segment of each point and the distance along it from its ``u``; each point looked up in
    the tree once per network in this process (an update walks from the same centres but one)."""
    raw = np.ascontiguousarray(xy, dtype=float).tobytes()
    keys = [raw[i * 16:(i + 1) * 16] for i in range(len(xy))]
    known = [net.snaps.get(key) for key in keys]
    missing = np.array([i for i, found in enumerate(known) if found is None], dtype=np.intp)
    edge, t = np.zeros(len(xy), dtype=np.intp), np.zeros(len(xy))
    if len(missing):
        points = shapely.points(xy[missing])
        _, edge[missing] = net.tree.query_nearest(points, all_matches=False)
        t[missing] = shapely.line_locate_point(net.segments[edge[missing]], points)
        if len(net.snaps) + len(missing) > _SNAPS_KEPT:
            net.snaps.clear()
        net.snaps.update(zip((keys[i] for i in missing.tolist()), zip(edge[missing].tolist(), t[missing].tolist())))
    for i, found in enumerate(known):
        if found is not None:
            edge[i], t[i] = found
    return edge, t


TILE_M = 500.0  # the union of catchments is buffered in tiles of this size (a few segments each)


def covered_land(found: Reach, access_m: float) -> np.ndarray:
    """Polygons whose union is the land within ``access_m`` of ``found``'s pieces: one per tile of
    ``TILE_M`` holding pieces (by their middle), each the buffer of its pieces.  One buffer of a whole
    city's reach costs minutes (GEOS unions thousands of overlapping outlines); tiles cost a couple of
    seconds for Ningbo (benchmarks/bench_network.py).

    Each tile's polygon is found again by its pieces' coordinates in this process for as long as anything
    (a kept analysis' walk) holds it, so after one centre moves only the few tiles whose pieces changed are
    buffered again, and the unchanged tiles are the very same objects as before (``is``): an incremental
    analysis can tell which land changed.
    """
    if not len(found.a):
        return np.array([], dtype=object)
    middle = (found.a + found.b) / 2
    cell = np.floor(middle / TILE_M).astype(np.int64)
    low = cell.min(axis=0)
    # the tiles numbered by cell, west to east, then south to north (one number a cell: quicker than rows)
    _, tile = np.unique((cell[:, 0] - low[0]) * (cell[:, 1].max() - low[1] + 1) + (cell[:, 1] - low[1]),
                        return_inverse=True)
    # within a tile the pieces stay in ``found``'s order, by edge and place (``reached_within``): the same
    # pieces, the same key
    order = np.argsort(tile, kind="stable")
    coords = np.ascontiguousarray(np.column_stack([found.a, found.b])[order])
    tile = tile[order]
    starts = np.flatnonzero(np.r_[True, tile[1:] != tile[:-1]])
    ends = np.r_[starts[1:], len(tile)]
    # a tile's key: its pieces' bytes and the access distance (slices of one bytes object: no hashing here)
    raw, tail, width = coords.tobytes(), repr(access_m).encode(), coords.itemsize * 4
    keys = [raw[a * width:b * width] + tail for a, b in zip(starts.tolist(), ends.tolist())]
    out = np.empty(len(keys), dtype=object)
    with _LOCK:
        for i, key in enumerate(keys):
            out[i] = _TILES.get(key)
    todo = np.flatnonzero([g is None for g in out])
    if len(todo):
        wanted = np.isin(tile, todo)
        lines = shapely.linestrings(coords[wanted].reshape(-1, 2, 2))
        groups = np.searchsorted(todo, tile[wanted])
        merged = shapely.line_merge(shapely.multilinestrings(lines, indices=groups))
        from .coverage import _parallel  # (coverage imports this module)

        out[todo] = _parallel(lambda g: shapely.buffer(g, access_m, quad_segs=BUFFER_QUAD_SEGS), merged)
        with _LOCK:
            for i in todo:
                _TILES[keys[i]] = out[i]
    return out


# the tiles by their key, while something holds them: no cap to outgrow (a province's walk and life circles are
# about 180,000 tiles), and nothing kept that no analysis needs
_TILES: weakref.WeakValueDictionary[bytes, object] = weakref.WeakValueDictionary()


def frame_catchments(centers_m: gpd.GeoDataFrame, radii: np.ndarray, roads_m: gpd.GeoDataFrame,
                     access_m: float) -> np.ndarray:
    """The walking catchments of point centres (metric CRS) along ``roads_m``'s walkable roads, as polygons
    whose union is the union of the centres' catchments (:func:`covered_land`): what coverage needs."""
    return frame_walks(centers_m, radii, network_of(roads_m), access_m, (None,))[0]


def frame_walks(centers_m: gpd.GeoDataFrame, radii: np.ndarray, net: Network, access_m: float,
                limits, measure=None) -> list[np.ndarray]:
    """:func:`frame_catchments` along ``net`` with the centres' radii capped at each of ``limits`` (None: not
    capped), from one walk (:func:`reached_within`).  ``measure(i, land, first)``, if given, is called with each
    land (and the first) as soon as it is buffered: the first's in this thread, the others' in the threads that
    buffer them (GEOS lets go of the GIL), so the first is measured while the others are buffered."""
    points = np.asarray(centers_m.geometry.values, dtype=object)
    present = ~(shapely.is_missing(points) | shapely.is_empty(points))  # nothing to walk from
    xy = shapely.get_coordinates(shapely.centroid(points[present])) if present.any() else np.empty((0, 2))
    found = reached_within(net, xy, np.asarray(radii, dtype=float)[present], limits)
    # the first (the walk, as a rule) alone: the others find its tiles kept where their pieces are the same
    out = [covered_land(found[0], access_m)] if found else []
    from .coverage import THREADS  # (coverage imports this module)

    def buffered(i: int, reach: Reach) -> np.ndarray:
        land = covered_land(reach, access_m)
        if measure is not None:
            measure(i, land, out[0])
        return land

    # each in a thread of its own (they are few): one left to finish alone at the end would leave a core idle
    with ThreadPoolExecutor(max(1, len(found) - 1) if THREADS > 1 else 1) as pool:
        others = [pool.submit(buffered, i, f) for i, f in enumerate(found[1:], 1)]
        if measure is not None and out:
            measure(0, out[0], out[0])
        out += [other.result() for other in others]
    return out


def has_roads(roads: gpd.GeoDataFrame | None) -> bool:
    """Whether there is a network to walk along (else catchments are discs)."""
    return roads is not None and not roads.empty and len(walkable(roads)) > 0


__all__ = ["Network", "Reach", "build", "catchments", "covered_land", "frame_catchments", "has_roads", "network_of",
           "reach", "reached", "reached_within", "frame_walks", "segments_of", "walkable"]
