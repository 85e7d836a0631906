"""A tile's features as Mapbox Vector Tile bytes, their geometry commands worked out for the whole tile at once.

mapbox-vector-tile encodes a feature at a time, point by point in Python: three quarters of a province's
cold tile.  Here the coordinates of every feature of a tile come out of shapely as one array, and the
commands (MoveTo, LineTo, ClosePath; zig-zag deltas from a cursor that runs on through a feature's parts)
are made with numpy; the message is assembled with mapbox-vector-tile's own protobuf classes.  The bytes
are the ones ``mapbox_vector_tile.encode`` gives for the same features (y down, no winding check):
consecutive repeated points dropped, a ring or line with no second point left out (a polygon whose
exterior is left out goes whole), tags in the order of the properties, values shared (but a 1 and a
1.0 each keep their type).  Geometries must
already be on the tile's integer grid.  Other geometry types (multipoints, collections) are handed to
mapbox-vector-tile.
"""

from __future__ import annotations

import mapbox_vector_tile
import numpy as np
import pandas as pd
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2

MOVE_TO, LINE_TO, CLOSE_PATH = 1, 2, 7
POINT, LINESTRING, POLYGON = 1, 2, 3  # the tile's GeomType
# shapely's type ids: 0 point, 1 linestring, 3 polygon, 5 multilinestring, 6 multipolygon
KINDS = {0: POINT, 1: LINESTRING, 5: LINESTRING, 3: POLYGON, 6: POLYGON}


class Columns:
    """A source's properties as MVT values, each column factorised once: a tile then picks codes, not values."""

    def __init__(self, columns: dict[str, list]):
        self.values = columns  # name -> the value of each row (None: missing)
        self.names = list(columns)
        self.codes, self.uniques, self.ids = [], [], []
        # a value once whatever property holds it, of its type (mapbox-vector-tile would make a 1.0 seen first
        # of a 1): numbered once here, not per tile (a tile of 2,000 grids has as many names and numbers)
        index: dict = {}
        for values in columns.values():
            codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
            self.codes.append(codes.astype(np.int64))
            self.uniques.append(list(uniques))
            self.ids.append(np.array([index.setdefault((type(v), v), len(index)) for v in uniques], dtype=np.int64))
        self.all_values = [v for _, v in index]  # by id


def encode(name: str, extent: int, geometries: np.ndarray, columns: Columns, rows: np.ndarray) -> bytes:
    """One layer ``name`` of the features ``geometries`` (on the tile's grid, y down), whose properties are
    row ``rows[i]`` of ``columns``; b"" when nothing is left of them on the grid."""
    types = shapely.get_type_id(geometries)
    if not np.isin(types, list(KINDS)).all():
        return _slow(name, extent, geometries, columns.values, rows)
    commands, starts = _commands(geometries, types)
    starts = np.asarray(starts)
    written = np.flatnonzero(starts[1:] > starts[:-1])  # the features something is left of
    if not len(written):
        return b""
    tile = vector_tile_pb2.tile()
    layer = tile.layers.add()
    layer.name, layer.version, layer.extent = name, 2, extent
    tags, tag_starts = _tags(layer, columns, rows[written])
    commands, kinds = commands.tolist(), [KINDS[t] for t in types[written].tolist()]
    starts, tag_starts = starts.tolist(), tag_starts.tolist()
    for j, i in enumerate(written.tolist()):
        feature = layer.features.add()
        feature.tags.extend(tags[tag_starts[j]:tag_starts[j + 1]])
        feature.type = kinds[j]
        feature.geometry.extend(commands[starts[i]:starts[i + 1]])
    return tile.SerializeToString()


def _tags(layer, columns: Columns, rows: np.ndarray) -> tuple[list[int], np.ndarray]:
    """The layer's keys and values (each once, in the order a feature after another first uses them, as
    mapbox-vector-tile lists them), and each feature's tags (key, value, key, value...) one after another."""
    if not columns.names or not len(rows):
        return [], np.zeros(len(rows) + 1, dtype=np.int64)
    codes = np.column_stack([c[rows] for c in columns.codes])  # a row a feature, a column a property
    ids = np.full(codes.shape, -1, dtype=np.int64)
    for c, numbered in enumerate(columns.ids):
        present = codes[:, c] >= 0
        ids[present, c] = numbered[codes[present, c]]
    present = ids >= 0
    value_of, key_of = ids[present], np.broadcast_to(np.arange(len(columns.names)), ids.shape)[present]  # row-major
    value_rank, value_first = _first_seen(value_of)
    key_rank, key_first = _first_seen(key_of)
    for k in key_first.tolist():
        layer.keys.append(columns.names[k])
    values = columns.all_values
    for v in value_first.tolist():
        _add_value(layer.values.add(), values[v])
    tags = np.column_stack([key_rank, value_rank]).ravel().tolist()
    return tags, np.r_[0, np.cumsum(present.sum(axis=1))] * 2


def _first_seen(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each id's rank in the order the ids are first seen, and the ids in that order."""
    uniques, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[order] = np.arange(len(uniques))
    return rank[inverse], uniques[order]


def _add_value(out, value) -> None:
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, int):
        out.int_value = value
    else:
        out.double_value = value


def _commands(geometries: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Every feature's command integers, one after another, and where each feature's begin (and the end)."""
    n = len(geometries)
    points = types == 0
    # the paths: a line's parts, a polygon's rings (exterior first); a point is a path of one
    parts, part_of = shapely.get_parts(geometries[~points], return_index=True)
    feature_of_part = np.flatnonzero(~points)[part_of]
    is_polygon = shapely.get_type_id(parts) == 3
    rings, ring_of = shapely.get_rings(parts[is_polygon], return_index=True)
    exterior = np.r_[True, ring_of[1:] != ring_of[:-1]] if len(rings) else np.zeros(0, dtype=bool)
    paths = np.concatenate([geometries[points], parts[~is_polygon], rings])
    feature = np.concatenate([np.flatnonzero(points), feature_of_part[~is_polygon],
                              feature_of_part[is_polygon][ring_of]])
    closed = np.r_[np.zeros(points.sum() + (~is_polygon).sum(), dtype=bool), np.ones(len(rings), dtype=bool)]
    polygon = np.r_[np.full(points.sum() + (~is_polygon).sum(), -1), np.flatnonzero(is_polygon)[ring_of]]
    is_exterior = np.r_[np.zeros(points.sum() + (~is_polygon).sum(), dtype=bool), exterior]
    lone = np.r_[np.ones(points.sum(), dtype=bool), np.zeros((~is_polygon).sum() + len(rings), dtype=bool)]
    # in the order the features' paths are written: by feature, then as each feature lists them
    order = np.lexsort((np.arange(len(paths)), feature))
    paths, feature, closed, polygon, is_exterior, lone = (a[order] for a in
                                                          (paths, feature, closed, polygon, is_exterior, lone))
    xy, path_of = shapely.get_coordinates(paths, return_index=True)
    xy = xy.astype(np.int64)
    counts = np.bincount(path_of, minlength=len(paths))
    first = np.r_[True, path_of[1:] != path_of[:-1]] if len(xy) else np.zeros(0, dtype=bool)
    last = np.r_[path_of[1:] != path_of[:-1], True] if len(xy) else np.zeros(0, dtype=bool)
    keep = ~(last & closed[path_of])  # a ring's closing point is not written
    repeated = np.r_[False, (xy[1:] == xy[:-1]).all(axis=1)] & ~first
    keep &= ~repeated
    kept = np.bincount(path_of[keep], minlength=len(paths))
    written = np.where(lone, kept >= 1, kept >= 2) & (counts > 0)  # a path with no second point is left out
    # a polygon whose exterior is left out goes whole, its holes too
    dropped = np.unique(polygon[is_exterior & ~written])
    written &= ~np.isin(polygon, dropped) | (polygon < 0)
    keep &= written[path_of]
    xy, path_of = xy[keep], path_of[keep]
    feature_of_point = feature[path_of]
    # deltas from the cursor, which starts at 0, 0 for each feature and runs on through its paths
    delta = np.diff(xy, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    starts_feature = np.r_[True, feature_of_point[1:] != feature_of_point[:-1]] if len(xy) else np.zeros(0, bool)
    delta[starts_feature] = xy[starts_feature]
    zigzag = ((delta << 1) ^ (delta >> 63)).ravel()
    # commands around each written path's points: MoveTo(1) before the first, LineTo(n − 1) after it,
    # ClosePath after a ring's last
    paths_written = np.flatnonzero(written)
    size = kept[paths_written]
    begin = (np.cumsum(size) - size) * 2  # each path's first point, in zigzag
    end = begin + 2 * size
    is_ring, is_lone = closed[paths_written], lone[paths_written]
    at = np.column_stack([begin, begin + 2, end]).ravel()
    value = np.column_stack([np.full(len(size), (1 << 3) | MOVE_TO), ((size - 1) << 3) | LINE_TO,
                             np.full(len(size), (1 << 3) | CLOSE_PATH)]).ravel()
    wanted = np.column_stack([np.ones(len(size), bool), ~is_lone, is_ring]).ravel()
    commands = np.insert(zigzag, at[wanted], value[wanted])
    # where each feature's commands begin: at its first written path's MoveTo
    per_path = wanted.reshape(-1, 3).sum(axis=1)
    inserted_before = np.cumsum(per_path) - per_path
    path_start = begin + inserted_before
    owner = feature[paths_written]
    starts = np.full(n + 1, len(commands), dtype=np.int64)
    firsts = np.r_[True, owner[1:] != owner[:-1]] if len(owner) else np.zeros(0, bool)
    starts[owner[firsts]] = path_start[firsts]
    starts = np.minimum.accumulate(starts[::-1])[::-1]  # a feature with nothing written: empty, where the next begins
    return commands, starts.tolist()


def _slow(name: str, extent: int, geometries: np.ndarray, columns: dict[str, list], rows: np.ndarray) -> bytes:
    features = [{"geometry": geom, "properties": {k: c[i] for k, c in columns.items() if c[i] is not None}}
                for geom, i in zip(geometries, rows.tolist())]
    return mapbox_vector_tile.encode([{"name": name, "features": features}],
                                     default_options={"y_coord_down": True, "extents": extent,
                                                      "check_winding_order": False})
