"""A walking analysis (network catchments, issue #16) updated after a change equals the cold analysis.

The layout of tests/geodata/test_incremental.py (500 m grids in two cities) with a hand-made street
network: streets every 250 m that meet at their shared vertices, a river across the middle crossed by
one bridge, a road crossing the others without meeting them, and an island street.  Equal means what
``assert_same`` says, and the walking columns (the discs' covered people, the walk gap's and each life
circle's) the same numbers, grid for grid and unit for unit.
"""

from __future__ import annotations

import math
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import LineString, Point

from geodata import incremental
from geodata.coverage import analyse, walking_people
from geodata.incremental import changes_between, update
from tests.geodata.test_incremental import (CELLS, PARAMS, SIZE, UTM, X0, Y0, _apply, _set, _set_geometry, assert_same,
                                            centre_op, grid_op, layout)

WALK = replace(PARAMS, catchment="network", life_circles_m=(200.0, 500.0))
STEP = 250.0
RIVER = (Y0 + 1100.0, Y0 + 1400.0)  # no street between these, but the bridge
BRIDGE_X = X0 + 750.0


def streets(cells: int = CELLS) -> gpd.GeoDataFrame:
    """Streets every STEP m over the layout and a street beyond it (WGS84)."""
    side = cells * SIZE
    ticks = np.arange(-STEP, side + 2 * STEP, STEP)
    lines = []
    for y in Y0 + ticks:  # east-west streets, a vertex at every crossing
        if not RIVER[0] < y < RIVER[1]:
            lines.append(LineString([(X0 + x, y) for x in ticks]))
    for x in X0 + ticks:  # north-south streets, cut by the river but at the bridge
        south = [(x, Y0 + y) for y in ticks if Y0 + y <= RIVER[0]]
        north = [(x, Y0 + y) for y in ticks if Y0 + y >= RIVER[1]]
        if x == BRIDGE_X:
            lines.append(LineString(south + north))
        else:
            lines += [LineString(south), LineString(north)]
    lines.append(LineString([(X0 - 100, Y0 - 60), (X0 + side + 100, Y0 + side - 60)]))  # meets nothing
    lines.append(LineString([(X0 + side + 600, Y0), (X0 + side + 600, Y0 + side)]))  # an island
    frame = gpd.GeoDataFrame({"road_id": [f"r{n:03d}" for n in range(len(lines))]}, geometry=lines, crs=UTM)
    return frame.to_crs(4326)


ROADS = streets()


@pytest.fixture(autouse=True)
def _small_layouts_never_fall_back(monkeypatch):
    # a change of a few of 25 grids is "large" otherwise, and so is one that removes all three centres
    monkeypatch.setattr(incremental, "MAX_SHARE", math.inf)


def walked_and_cold(old, new, params=WALK, forget_the_walk=False):
    """(the update of old's walking analysis to new, the cold walking analysis of new)."""
    changes = {name: changes_between(a, b, key)
               for name, a, b, key in (("grids", old[0], new[0], "grid_id"),
                                       ("centers", old[1], new[1], "center_id"),
                                       ("districts", old[2], new[2], "adcode"))}
    previous = analyse(*old, params=params, roads=ROADS)
    if forget_the_walk:  # as read back from another process: its walk is not kept
        previous = replace(previous, walk=None)
    return update(previous, (*old, ROADS), (*new, ROADS), changes), analyse(*new, params=params, roads=ROADS)


def assert_same_walk(got, want):
    assert_same(got, want)
    names = walking_people(want.coverage)
    assert names and walking_people(got.coverage) == names
    for name in names:
        pd.testing.assert_series_equal(got.coverage[name], want.coverage[name])


def _moved(old, cid, x, y):
    grids, centers, districts = old
    return grids, _set_geometry(centers, "center_id", cid, Point(X0 + x, Y0 + y)), districts


def test_a_centre_moved_along_the_streets():
    old = layout(CELLS)
    got, want = walked_and_cold(old, _moved(old, "c00", 900, 700))
    assert_same_walk(got, want)
    assert got.coverage["coverage_ratio"].to_numpy().tolist() != analyse(*old, params=WALK, roads=ROADS) \
        .coverage["coverage_ratio"].to_numpy().tolist()  # the move changed something to update


def test_a_centre_moved_across_the_river():
    old = layout(CELLS)
    got, want = walked_and_cold(old, _moved(old, "c00", 600, 1600))
    assert_same_walk(got, want)


def test_a_centre_whose_walk_reaches_a_grid_beyond_its_disc():
    # from x 150 on the street y 250: 300 m east to x 450, and the round end of the land 100 m around it: 50 m
    # into grid g0100 (x ≥ 500), beyond the disc's reach (x ≤ 450): a grid only the walk tells apart
    old = layout(CELLS, ((0.9, 0.9, "community"),))
    got, want = walked_and_cold(old, _moved(old, "c00", 150, 250))
    assert_same_walk(got, want)
    ratio = dict(zip(got.coverage["grid_id"], got.coverage["coverage_ratio"]))["g0100"]
    cap = 100 ** 2 * math.acos(50 / 100) - 50 * math.sqrt(100 ** 2 - 50 ** 2)  # a circle's segment 50 m deep
    assert ratio == pytest.approx(cap / SIZE ** 2, rel=2e-2)  # (the polygonal circle's a little less)


def test_an_analysis_read_back_without_its_walk_walks_the_old_centres_again():
    old = layout(CELLS)
    got, want = walked_and_cold(old, _moved(old, "c01", 200, 2200), forget_the_walk=True)
    assert_same_walk(got, want)


def test_a_centre_added_and_a_population_changed():
    old = layout(CELLS)
    grids, centers, districts = _moved(old, "c02", 2400, 300)
    grids = _set(grids, "grid_id", "g0101", population=777)
    got, want = walked_and_cold(old, (grids, centers, districts))
    assert_same_walk(got, want)


def test_a_walking_analysis_in_threads_is_the_one_thread_analysis_bit_for_bit(monkeypatch):
    # the walk measured while its life circles are buffered, each life circle measured in the thread that
    # buffered it (on copies of the tiles it shares with the walk and the others), the discs beside: as in
    # one thread
    from geodata import coverage

    old = layout(CELLS)
    params = replace(WALK, life_circles_m=(200.0, 500.0, 5000.0))  # 5 km: the walk's own land
    monkeypatch.setattr(coverage, "_CHUNK", 2)
    results = []
    for threads in (1, 3):
        monkeypatch.setattr(coverage, "THREADS", threads)
        results.append(analyse(*old, params=params, roads=ROADS))
    one, many = results
    rings = [one.coverage[f"ring_{d}_population"].sum() for d in (200, 500, 5000)]
    assert 0 < rings[0] < rings[1] < rings[2] == one.coverage["covered_population"].sum()  # each measured
    assert one.coverage.drop(columns="geometry").equals(many.coverage.drop(columns="geometry"))
    assert list(shapely.to_wkb(one.gaps.geometry.values)) == list(shapely.to_wkb(many.gaps.geometry.values))
    assert all(one.summaries[level].equals(many.summaries[level]) for level in one.summaries)


def test_without_its_roads_a_walking_analysis_is_analysed_cold():
    old = layout(CELLS)
    new = _moved(old, "c00", 900, 700)
    previous = analyse(*old, params=WALK, roads=ROADS)
    changes = {"centers": changes_between(old[1], new[1], "center_id")}
    assert update(previous, old, new, changes) is None


@pytest.mark.slow
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(start=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1),
                                st.sampled_from(["community", "street", "district"])), min_size=1, max_size=5),
       grid_ops=st.lists(grid_op, max_size=3), centre_ops=st.lists(centre_op, min_size=1, max_size=3))
def test_random_changes_update_to_the_cold_walking_analysis(start, grid_ops, centre_ops):
    old = layout(CELLS, start)
    new = _apply(old, grid_ops, centre_ops)
    if new[0].empty:
        return
    got, want = walked_and_cold(old, new)
    assert_same_walk(got, want)


# --- through the catalog: a centre moved, the walking analysis of the new versions ---------------------------

def test_the_catalog_updates_a_walking_analysis_after_a_centre_moves(location, monkeypatch):
    import geodata.catalog
    from geodata.catalog import Catalog
    from geodata.store import open_store
    from geodata.validate import validate

    store = open_store(location)
    for name, frame in zip(("grids", "centers", "districts", "roads"), (*layout(CELLS), ROADS)):
        store.write(name, validate(frame, name).data, author="t")
    catalog = Catalog(store, WALK)
    catalog.analysis()
    centers = store.read("centers")
    store.write_changes("centers", upserts=_set_geometry(centers.iloc[:1], "center_id", "c00",
                                                         Point(X0 + 900, Y0 + 700)), author="t")

    def cold(*args, **kwargs):
        raise AssertionError("analysed cold")

    monkeypatch.setattr(geodata.catalog, "analyse", cold)
    got = catalog.analysis()
    monkeypatch.undo()
    frames = [store.read(name) for name in ("grids", "centers", "districts")]
    assert_same_walk(got, analyse(*frames, params=WALK, roads=store.read("roads")))
    catalog._sharing.join()


def test_a_walking_analysis_goes_to_another_process_without_its_walk():
    import pickle

    analysis = analyse(*layout(CELLS), params=WALK, roads=ROADS)
    assert analysis.walk is not None  # kept here, to update it
    copy = pickle.loads(pickle.dumps(analysis))  # as a job's result comes back
    assert copy.walk is None
    pd.testing.assert_frame_equal(pd.DataFrame(copy.coverage), pd.DataFrame(analysis.coverage))
