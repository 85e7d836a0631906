"""A fictional road network for the demo (issue #16): deterministic, plausible, clearly made up.

- local streets run along the grids' edges (the edges two grids share, and the outer ones);
- arterials (``primary``, named 演示大道 N号 "Demo Avenue N") follow the shortest street paths
  between the demo's urban cores;
- two fictional rivers (演示河 "Demo River", 示范江 "Sample River") cut every street that crosses them,
  but for one bridge about every ``BRIDGE_EVERY_M`` along each river (演示 N号桥 "Demo Bridge N").

Everything is derived from the demo's grids (themselves seeded), so the same grids give the same roads.
Built in the demo's metric CRS; returned in WGS84, validated like an upload by the demo installer.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from .network import segments_of

METRIC = "EPSG:32651"  # the demo's UTM zone (geodata.demo._METRIC)
BRIDGE_EVERY_M = 1_500.0
# The rivers as lon/lat waypoints (fictional courses through the urban core, smoothed below)
RIVERS = {
    "演示河 Demo River": [(121.20, 29.80), (121.35, 29.84), (121.47, 29.86), (121.55, 29.875), (121.63, 29.92),
                        (121.72, 29.96), (121.80, 30.00)],
    "示范江 Sample River": [(121.42, 29.62), (121.47, 29.72), (121.52, 29.80), (121.55, 29.875)],
}
CORES = [(121.55, 29.87), (121.71, 29.95), (121.84, 29.90), (121.15, 30.04), (121.25, 30.17), (121.41, 29.66),
         (121.43, 29.29), (121.87, 29.48)]  # geodata.demo._CORES: the centres of population


def rivers_m() -> np.ndarray:
    """The rivers as metric lines, gently curved (a sine wiggle along each leg)."""
    lines = []
    for points in RIVERS.values():
        xy = gpd.GeoSeries(gpd.points_from_xy(*np.array(points).T), crs="EPSG:4326").to_crs(METRIC).get_coordinates()
        xy = xy.to_numpy()
        fine = []
        for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:]):
            s = np.linspace(0, 1, 25, endpoint=False)
            nx, ny = -(y1 - y0), x1 - x0
            norm = np.hypot(nx, ny) or 1.0
            wiggle = 400 * np.sin(2 * np.pi * s)  # metres across the straight leg
            fine.append(np.column_stack([x0 + s * (x1 - x0) + wiggle * nx / norm,
                                         y0 + s * (y1 - y0) + wiggle * ny / norm]))
        fine.append(xy[-1:])
        lines.append(shapely.LineString(np.vstack(fine)))
    return np.array(lines, dtype=object)


def build_roads(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The demo's roads (``road_id``, ``name``, ``highway``, ``walkable``) along ``grids``' edges, in WGS84."""
    grids_m = grids.to_crs(METRIC)
    a, b, _ = segments_of(shapely.boundary(grids_m.geometry.values))
    # one street per shared edge: the two grids beside it draw it in opposite directions
    ends = np.round(np.vstack([a, b]) * 100).astype(np.int64)  # to the centimetre
    keys, node = np.unique(ends, axis=0, return_inverse=True)
    node = node.ravel()
    u, v = node[:len(a)], node[len(a):]
    pairs = np.unique(np.sort(np.column_stack([u, v])[u != v], axis=1), axis=0)
    xy = keys / 100.0
    u, v = pairs[:, 0], pairs[:, 1]
    segments = shapely.linestrings(np.stack([xy[u], xy[v]], axis=1))

    # rivers: a crossing street is gone, but for one bridge per BRIDGE_EVERY_M along each river
    keep = np.ones(len(segments), dtype=bool)
    bridge = np.zeros(len(segments), dtype=bool)
    tree = shapely.STRtree(segments)
    for river in rivers_m():
        crossing = tree.query(river, predicate="intersects")
        if not len(crossing):
            continue
        where = shapely.line_locate_point(river, shapely.intersection(segments[crossing], river))
        stretch = np.floor(where / BRIDGE_EVERY_M).astype(int)
        order = np.lexsort((where, stretch))
        first = order[np.r_[True, stretch[order][1:] != stretch[order][:-1]]]  # the first crossing of each stretch
        keep[crossing] = False
        bridge[crossing[first]] = True
    keep |= bridge

    # arterials: the shortest street paths joining the urban cores, one after another
    u, v, segments, bridge = u[keep], v[keep], segments[keep], bridge[keep]
    length = shapely.length(segments)
    n = len(xy)
    graph = sparse.csr_matrix((np.r_[length, length], (np.r_[u, v], np.r_[v, u])), shape=(n, n))
    used = np.unique(np.r_[u, v])
    core_xy = gpd.GeoSeries(gpd.points_from_xy(*np.array(CORES).T), crs="EPSG:4326").to_crs(METRIC).get_coordinates()
    nearest = used[shapely.STRtree(shapely.points(xy[used])).query_nearest(shapely.points(core_xy.to_numpy()),
                                                                           all_matches=False)[1]]
    _, pred = csgraph.dijkstra(graph, directed=False, indices=nearest[:1], return_predecessors=True)
    edge_of = {(int(min(p, q)), int(max(p, q))): i for i, (p, q) in enumerate(zip(u, v))}
    primary = np.zeros(len(segments), dtype=bool)
    for target in nearest[1:]:
        at = int(target)
        while pred[0, at] >= 0:
            prev = int(pred[0, at])
            primary[edge_of[(min(at, prev), max(at, prev))]] = True
            at = prev

    rows, geoms = [], []
    for kind, mask in (("primary", primary & ~bridge), ("residential", ~primary & ~bridge)):
        merged = shapely.line_merge(shapely.multilinestrings(segments[mask]))
        parts = shapely.get_parts(merged)
        parts = parts[np.lexsort(shapely.get_coordinates(shapely.get_point(parts, 0)).T[::-1])]
        for i, line in enumerate(parts):
            rows.append({"name": f"演示大道{i + 1}号 Demo Avenue {i + 1}" if kind == "primary" else None,
                         "highway": kind, "walkable": True})
            geoms.append(line)
    for i, line in enumerate(segments[bridge]):
        rows.append({"name": f"演示{i + 1}号桥 Demo Bridge {i + 1}",
                     "highway": "primary" if primary[bridge][i] else "residential", "walkable": True})
        geoms.append(line)
    roads = gpd.GeoDataFrame(rows, geometry=geoms, crs=METRIC).to_crs("EPSG:4326")
    roads["geometry"] = shapely.transform(roads.geometry.values, lambda c: np.round(c, 7))
    roads.insert(0, "road_id", [f"R{i + 1:06d}" for i in range(len(roads))])
    return roads
