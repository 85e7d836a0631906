"""The tile encoder gives the bytes mapbox-vector-tile gives for the same features, whatever their shapes."""

from __future__ import annotations

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from shapely import LineString, MultiLineString, MultiPolygon, Point, Polygon

from geodata import mvt

SQUARE = Polygon([(0, 0), (0, 10), (10, 10), (10, 0)])
WITH_HOLE = Polygon([(20, 20), (20, 60), (60, 60), (60, 20)], [[(30, 30), (40, 30), (40, 40), (30, 40)]])
REPEATED = Polygon([(100, 100), (100, 100), (100, 120), (120, 120), (120, 120), (120, 100)])
FLAT = Polygon([(5, 5), (5, 5), (5, 5), (5, 5)])  # nothing left on the grid: left out
SHAPES = {
    "polygons": [SQUARE, WITH_HOLE, MultiPolygon([SQUARE, WITH_HOLE]), REPEATED, FLAT,
                 MultiPolygon([Polygon([(70, 70), (70, 70), (70, 70)]), SQUARE])],  # a part with no exterior
    "lines": [LineString([(0, 0), (5, 5), (5, 5), (9, 0)]), MultiLineString([[(1, 1), (1, 1)], [(2, 2), (4096, 7)]]),
              LineString([(3, 3), (3, 3)])],
    "points": [Point(1, 2), Point(4095, 0), Point(0, 0)],
}
PROPERTIES = {"name": ["甲", "乙", "甲", None, "丙", "丁"], "count": [1, 2, None, 1, 0, 7],
              "share": [0.5, 1.25, 2.5, None, 0.5, 1.5], "open": [True, False, None, True, True, False],
              "code": ["1", "2", "x", "y", "z", "w"]}


@pytest.mark.parametrize("kind", SHAPES)
def test_the_same_bytes_as_mapbox_vector_tile(kind):
    geometries = np.array(SHAPES[kind], dtype=object)
    rows = np.arange(len(geometries))[::-1].copy()
    columns = {k: v[:len(geometries)] for k, v in PROPERTIES.items()}
    features = [{"geometry": g, "properties": {k: c[i] for k, c in columns.items() if c[i] is not None}}
                for g, i in zip(geometries, rows)]
    expected = mapbox_vector_tile.encode([{"name": kind, "features": features}],
                                         default_options={"y_coord_down": True, "extents": 4096,
                                                          "check_winding_order": False})
    assert mvt.encode(kind, 4096, geometries, mvt.Columns(columns), rows) == expected


def test_nothing_left_on_the_grid_is_no_tile():
    assert mvt.encode("x", 4096, np.array([FLAT], dtype=object), mvt.Columns({"a": ["b"]}), np.array([0])) == b""


def test_other_shapes_are_left_to_mapbox_vector_tile():
    points = np.array([shapely.MultiPoint([(1, 1), (3, 4)])], dtype=object)
    data = mvt.encode("p", 4096, points, mvt.Columns({"a": ["b"]}), np.array([0]))
    assert mapbox_vector_tile.decode(data)["p"]["features"][0]["properties"] == {"a": "b"}


def test_a_number_keeps_its_type():
    data = mvt.encode("x", 4096, np.array([SQUARE, WITH_HOLE], dtype=object),
                      mvt.Columns({"count": [1, 2], "share": [0.5, 1.0]}), np.array([1, 0]))
    features = mapbox_vector_tile.decode(data)["x"]["features"]
    assert [type(f["properties"]["count"]) for f in features] == [int, int]
    assert [type(f["properties"]["share"]) for f in features] == [float, float]
