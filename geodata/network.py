"""Walking catchments along the road network (SPEC §2, issue #16), framework-neutral.

The graph is built once per roads content (:func:`network_of`) from the walkable roads in
the analysis' metric CRS:

- every road is cut into its straight segments; each distinct vertex (to the millimetre)
  is a node, so roads meet where they share a vertex — at their ends or at a common
  vertex — and **not** where they merely cross.  That is how GIS road networks are drawn
  (OSM, ArcGIS Network Analyst's default "end point" connectivity): a bridge or an
  underpass crosses a road without meeting it.
- edges are the segments, weighted by their length in metres (duplicates once).

A centre is snapped to the nearest point of the nearest segment, which splits that
segment: the centre is a node joined to the segment's two ends by the two parts.  Its
walking distances come from scipy's Dijkstra (``scipy.sparse.csgraph``), stopped at the
level's radius; every segment is then reached from each end as far as the distance left
allows (partial segments cut at the exact remaining distance: they are straight, so the
cut is a linear interpolation), and the catchment is the land within ``access_m`` of what
is reached (``GRIDMAP_WALK_ACCESS_M``, default 100 m).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

NODE_PRECISION_M = 0.001  # vertices closer than a millimetre are one node
BUFFER_QUAD_SEGS = 16  # round ends as fine as the discs (coverage.QUAD_SEGS): within 0.2 % of a circle
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
        keep = ~roads["walkable"].map(lambda v: isinstance(v, (bool, np.bool_)) and not v).to_numpy(bool)
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
    points = shapely.points(xy)
    _, edge = net.tree.query_nearest(points, all_matches=False)
    t = shapely.line_locate_point(net.segments[edge], points)  # from the edge's u end, m
    length = net.length[edge]
    n = len(net.xy)
    # each centre is a node n+i joined to its edge's two ends by the two parts of the edge
    src = np.arange(n, n + k)
    w_u, w_v = np.maximum(t, _TINY), np.maximum(length - t, _TINY)
    rows = np.r_[src, net.u[edge], src, net.v[edge]]
    cols = np.r_[net.u[edge], src, net.v[edge], src]
    extra = sparse.csr_matrix((np.r_[w_u, w_u, w_v, w_v], (rows, cols)), shape=(n + k, n + k))
    graph = sparse.block_diag([net.graph, sparse.csr_matrix((k, k))], format="csr") + extra
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


def frame_catchments(centers_m: gpd.GeoDataFrame, radii: np.ndarray, roads_m: gpd.GeoDataFrame,
                     access_m: float) -> np.ndarray:
    """:func:`catchments` of point centres (metric CRS) along ``roads_m``'s walkable roads."""
    points = np.asarray(centers_m.geometry.values, dtype=object)
    xy = shapely.get_coordinates(shapely.centroid(points)) if len(points) else np.empty((0, 2))
    return catchments(network_of(roads_m), xy, radii, access_m)


def has_roads(roads: gpd.GeoDataFrame | None) -> bool:
    """Whether there is a network to walk along (else catchments are discs)."""
    return roads is not None and not roads.empty and len(walkable(roads)) > 0


__all__ = ["Network", "Reach", "build", "catchments", "frame_catchments", "has_roads", "network_of", "reach",
           "segments_of", "walkable"]
