"""The analysis that scales gives the answers of the one before it (kept in benchmarks/_coverage_reference.py).

Equal means: every coverage ratio to 1e-9, the same gaps (kind, id, names, grid, detail) with
areas to 1e-6 relative, identical summaries. Checked on the Ningbo demo and on random layouts
with overlaps, holes, gaps between grids and grids outside their district, in one thread and
cut into several.
"""

import importlib.util
import math
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import Point, box

from geodata import coverage
from geodata.coverage import Params, analyse, tiling_problems
from tests.factories import center_row, grid_row

UTM = "EPSG:32651"
X0, Y0 = 360_000.0, 3_305_000.0  # about 121.55 E, 29.87 N

_spec = importlib.util.spec_from_file_location(
    "_coverage_reference", Path(__file__).parents[2] / "benchmarks" / "_coverage_reference.py")
reference = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(reference)


@pytest.fixture(scope="module")
def demo():
    from geodata.demo import build_demo
    from geodata.validate import validate

    built = build_demo()  # read-only here: built once, it takes a couple of seconds
    return tuple(validate(getattr(built, n), n).data for n in ("grids", "centers", "districts"))


def test_the_demo_analysis_equals_the_reference(demo):
    grids, centers, districts = demo
    assert reference.differences(reference.analyse(grids, centers, districts),
                                 analyse(grids, centers, districts)) == []


def test_the_demo_analysis_cut_into_threads_equals_the_reference(demo, monkeypatch):
    # three bands of the edge check and three threads per array operation, even on one core
    monkeypatch.setattr(coverage, "THREADS", 3)
    monkeypatch.setattr(coverage, "_CHUNK", 100)
    grids, centers, districts = demo
    params = Params(radius_community_m=700, radius_street_m=1800)  # more grids partly covered
    assert reference.differences(reference.analyse(grids, centers, districts, params),
                                 analyse(grids, centers, districts, params)) == []


def _layout(cells, jitter, holes, centres, with_districts):
    """A cells × cells block of 500 m squares, some corners moved (overlaps and gaps), some holed."""
    size = 500.0
    shapes, rows = [], []
    for i in range(cells):
        for j in range(cells):
            k = i * cells + j
            dx, dy = jitter[k % len(jitter)] if jitter else (0.0, 0.0)
            shape = box(X0 + i * size, Y0 + j * size, X0 + (i + 1) * size + dx, Y0 + (j + 1) * size + dy)
            if k in holes:
                shape = shape.difference(box(X0 + i * size + 100, Y0 + j * size + 100,
                                             X0 + i * size + 300, Y0 + j * size + 250))
            shapes.append(shape)
            rows.append(grid_row(f"g{k:03d}", district="海曙区" if i < cells // 2 else "江北区",
                                 street=f"街道{j % 2}", community=f"社区{(i + j) % 3}",
                                 population=100 * (k % 7), instructor=None if k % 5 == 0 else "王"))
    grids = gpd.GeoDataFrame(rows, geometry=shapes, crs=UTM).to_crs(4326)
    points = [Point(X0 + x * cells * size, Y0 + y * cells * size) for x, y, _ in centres]
    centers = gpd.GeoDataFrame([center_row(f"c{n}", level) for n, (_, _, level) in enumerate(centres)],
                               geometry=points, crs=UTM).to_crs(4326) if centres else \
        gpd.GeoDataFrame({"level": []}, geometry=[], crs=4326)
    districts = None
    if with_districts:
        half = cells // 2 * size
        districts = gpd.GeoDataFrame(
            {"adcode": ["330203", "330205"], "name": ["海曙区", "江北区"], "name_en": ["Haishu", "Jiangbei"]},
            geometry=[box(X0 - 30, Y0 - 30, X0 + half, Y0 + cells * size),
                      box(X0 + half, Y0, X0 + cells * size + 60, Y0 + cells * size + 60)],
            crs=UTM).to_crs(4326)
    return grids, centers, districts


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(cells=st.integers(2, 7),
       jitter=st.lists(st.tuples(st.sampled_from([0.0, 0.0, 40.0, -30.0, 0.3]),
                                 st.sampled_from([0.0, 0.0, 25.0, -60.0])), max_size=5),
       holes=st.sets(st.integers(0, 48), max_size=4),
       centres=st.lists(st.tuples(st.floats(-0.2, 1.2), st.floats(-0.2, 1.2),
                                  st.sampled_from(["community", "street", "district"])), max_size=10),
       with_districts=st.booleans(), threads=st.sampled_from([1, 3]))
def test_random_layouts_equal_the_reference(monkeypatch, cells, jitter, holes, centres, with_districts, threads):
    monkeypatch.setattr(coverage, "THREADS", threads)
    monkeypatch.setattr(coverage, "_CHUNK", 2)
    grids, centers, districts = _layout(cells, jitter, holes, centres, with_districts)
    params = Params(radius_community_m=300, radius_street_m=700, radius_district_m=1500)
    assert reference.differences(reference.analyse(grids, centers, districts, params),
                                 analyse(grids, centers, districts, params)) == []


def test_threads_give_the_one_thread_analysis_bit_for_bit(monkeypatch):
    # a hand-made layout cut into many chunks: the coverage's differences, the edge check's bands and the
    # districts in threads, the tiling checks beside the coverage; every number and shape as in one thread
    grids, centers, districts = _layout(7, [(40.0, 0.0), (0.0, -60.0), (0.3, 25.0)], {3, 17, 30},
                                        [(0.2, 0.3, "community"), (0.5, 0.5, "street"), (0.8, 0.1, "community"),
                                         (0.45, 0.9, "district"), (0.9, 0.8, "community")], True)
    params = Params(radius_community_m=700, radius_street_m=1200, radius_district_m=1500)
    monkeypatch.setattr(coverage, "_CHUNK", 2)
    results = []
    for threads in (1, 3):
        monkeypatch.setattr(coverage, "THREADS", threads)
        results.append(analyse(grids, centers, districts, params))
    one, many = results
    assert len(one.gaps) and (one.coverage["coverage_ratio"] % 1 != 0).any()  # partly covered grids, gaps
    assert one.coverage.drop(columns="geometry").equals(many.coverage.drop(columns="geometry"))
    assert one.gaps.drop(columns="geometry").equals(many.gaps.drop(columns="geometry"))
    assert list(shapely.to_wkb(one.gaps.geometry.values)) == list(shapely.to_wkb(many.gaps.geometry.values))
    assert all(one.summaries[level].equals(many.summaries[level]) for level in one.summaries)
    assert one.invalid_edges.tolist() == many.invalid_edges.tolist()


def test_bands_find_the_overlaps_across_their_edges(monkeypatch):
    # 40 squares in a row, each reaching 50 m into the next: every band edge cuts an overlap
    shapes = [box(X0 + 500 * i, Y0, X0 + 500 * (i + 1) + 50, Y0 + 500) for i in range(40)]
    grids = gpd.GeoDataFrame([grid_row(f"g{i:02d}") for i in range(40)], geometry=shapes, crs=UTM).to_crs(4326)
    monkeypatch.setattr(coverage, "THREADS", 4)
    monkeypatch.setattr(coverage, "_CHUNK", 5)
    overlaps = tiling_problems(grids).query("kind == 'overlap'")
    assert len(overlaps) == 39
    assert overlaps["area_m2"].to_numpy() == pytest.approx(np.full(39, 50 * 500), rel=1e-6)


def test_discs_are_the_buffers_they_stand_for():
    xy = np.array([[X0, Y0], [X0 + 1234.5, Y0 - 99.25]])
    radii = np.array([1000.0, 2500.0])
    fast = coverage._discs(xy, radii)
    slow = shapely.buffer(shapely.points(xy), radii, quad_segs=coverage.QUAD_SEGS)
    assert shapely.equals_exact(fast, slow, tolerance=1e-9).all()


def test_empty_discs_cover_nothing_and_leave_the_others_in_place():
    grid = np.array([box(0, 0, 1000, 1000)], dtype=object)
    discs = np.array([shapely.Polygon(), None, Point(0, 0).buffer(1000, quad_segs=16)], dtype=object)
    ratio, _ = coverage.grid_coverage(grid, discs)
    assert ratio[0] == pytest.approx(math.pi / 4, rel=0.002)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 47), st.sampled_from(
    ["shift", "copy", "reverse", "hole", "merge", "split", "drop", "nudge"])), max_size=8))
def test_edge_check_equals_geos_on_the_whole_layer(changes):
    """Grids whose every edge is matched skip GEOS: the same answer as GEOS over all grids, with
    overlaps, duplicates, clockwise shells, holes, multipolygons, split edges and gaps."""
    cells = [box(x, y, x + 1, y + 1) for x in range(8) for y in range(6)]
    for at, change in changes:
        cell = cells[at]
        if cell.geom_type != "Polygon" or cell.is_empty or cell.interiors:
            continue
        if change == "shift":
            cells[at] = shapely.affinity.translate(cell, 0.3, 0)
        elif change == "copy":
            cells.append(cell)
        elif change == "reverse":
            cells[at] = shapely.Polygon(list(cell.exterior.coords)[::-1])
        elif change == "hole":
            x, y = cell.bounds[:2]
            cells[at] = shapely.Polygon(cell.exterior, [box(x + 0.3, y + 0.3, x + 0.6, y + 0.6).exterior])
        elif change == "merge":
            other = cells[(at + 9) % len(cells)]
            if other.geom_type == "Polygon" and not other.is_empty and not other.interiors:
                cells[at] = shapely.MultiPolygon([cell, other])
        elif change == "split":  # an extra vertex in the middle of an edge: the neighbour's edge is not matched
            x0, y0, x1, y1 = cell.bounds
            cells[at] = shapely.Polygon([(x0, y0), (x1, y0), (x1, (y0 + y1) / 2), (x1, y1), (x0, y1)])
        elif change == "drop":
            cells[at] = shapely.Polygon()
        else:
            cells[at] = shapely.affinity.translate(cell, 1e-9, 0)
    geoms = np.array(cells, dtype=object)
    expected = ~shapely.is_empty(shapely.coverage_invalid_edges(geoms))
    assert coverage._invalid_edges(geoms).tolist() == expected.tolist(), changes
