"""An analysis updated after a change equals the cold analysis of the changed layers.

Equal means: the same coverage frame (ratios to 1e-9, the same covered population and status),
the same gaps in the same order (ids, names, details; areas to 0.1 m², shapes to a millimetre),
and the same summaries, row for row.  Layouts are hand-made: two cities that both have a
市辖区, with streets and communities whose names repeat under different parents.
"""

from __future__ import annotations

import dataclasses
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import Point, box

from geodata import incremental
from geodata.coverage import Params, analyse
from geodata.incremental import changes_between, update
from tests.factories import center_row, grid_row

UTM = "EPSG:32651"
X0, Y0 = 360_000.0, 3_305_000.0  # about 121.55 E, 29.87 N
SIZE = 500.0
PARAMS = Params(radius_community_m=300, radius_street_m=700, radius_district_m=1500)
CITIES = ("甲市", "乙市")


@pytest.fixture(autouse=True)
def _small_layouts_never_fall_back(monkeypatch):
    # a change of a few of 16 grids is "large" otherwise, and so is one that removes all three centres
    monkeypatch.setattr(incremental, "MAX_SHARE", math.inf)


def _square(i, j, dx=0.0, dy=0.0):
    return box(X0 + i * SIZE, Y0 + j * SIZE, X0 + (i + 1) * SIZE + dx, Y0 + (j + 1) * SIZE + dy)


def _grid(i, j, cells, **overrides):
    row = grid_row(f"g{i:02d}{j:02d}", city=CITIES[i >= cells // 2], district="市辖区", street=f"街道{j % 2}",
                   community=f"社区{(i + j) % 3}", population=100 * ((i * 7 + j) % 5))
    return {**row, **overrides}


def layout(cells=4, centres=((0.3, 0.3, "community"), (0.7, 0.6, "street"), (0.2, 0.8, "district"))):
    """cells × cells squares of 500 m: 甲市 on the left half, 乙市 on the right, both with a 市辖区."""
    rows, shapes = [], []
    for i in range(cells):
        for j in range(cells):
            rows.append(_grid(i, j, cells))
            shapes.append(_square(i, j))
    grids = gpd.GeoDataFrame(rows, geometry=shapes, crs=UTM).to_crs(4326)
    side = cells * SIZE
    points = [Point(X0 + x * side, Y0 + y * side) for x, y, _ in centres]
    rows = [center_row(f"c{n:02d}", level, city=CITIES[x >= 0.5], district="市辖区")
            for n, (x, _, level) in enumerate(centres)]
    columns = [*center_row("c", "community", city=None)]
    centers = gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry=points, crs=UTM).to_crs(4326)
    half = cells // 2 * SIZE
    districts = gpd.GeoDataFrame(
        {"adcode": ["330101", "330201"], "city": list(CITIES), "name": ["市辖区", "市辖区"],
         "name_en": ["Shixiaqu", "Shixiaqu"]},
        geometry=[box(X0 - 30, Y0 - 30, X0 + half, Y0 + side), box(X0 + half, Y0, X0 + side + 60, Y0 + side + 60)],
        crs=UTM).to_crs(4326)
    return _sorted(grids, "grid_id"), _sorted(centers, "center_id"), districts


def _sorted(frame, key):
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


def _metric(frame):
    return frame.to_crs(UTM)


def _set_geometry(frame, key_column, key, shape_m):
    out = frame.copy()
    at = np.flatnonzero(out[key_column].to_numpy(dtype=object) == key)[0]
    geoms = out.geometry.values.copy()
    geoms[at] = gpd.GeoSeries([shape_m], crs=UTM).to_crs(4326).values[0]
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=4326))
    return out


def _set(frame, key_column, key, **values):
    out = frame.copy()
    at = out.index[out[key_column] == key][0]
    for name, value in values.items():
        out.loc[at, name] = value
    return out


def updated_and_cold(old, new, params=PARAMS, edges=True):
    """(the update of old's analysis to new, the cold analysis of new). ``edges``: whether the previous
    analysis has its grids' edge checks (a kept analysis of older code has not)."""
    changes = {name: changes_between(a, b, key)
               for name, a, b, key in (("grids", old[0], new[0], "grid_id"),
                                       ("centers", old[1], new[1], "center_id"),
                                       ("districts", old[2], new[2], "adcode"))}
    previous = analyse(*old, params=params)
    if not edges:
        previous = dataclasses.replace(previous, invalid_edges=None)
    return update(previous, old, new, changes), analyse(*new, params=params)


def assert_same(got, want):
    assert got is not None, "the update fell back to a cold analysis"
    a, b = got.coverage, want.coverage
    assert list(a.columns) == list(b.columns)
    assert list(a["grid_id"]) == list(b["grid_id"])
    np.testing.assert_allclose(a["coverage_ratio"].to_numpy(float), b["coverage_ratio"].to_numpy(float),
                               rtol=0, atol=1e-9)
    for column in ("covered_population", "coverage_status"):
        pd.testing.assert_series_equal(a[column], b[column])
    ga, gb = got.gaps, want.gaps
    assert list(ga.columns) == list(gb.columns)
    assert list(ga["gap_id"]) == list(gb["gap_id"])  # the same gaps, in the same order
    plain = [c for c in ga.columns if c not in ("area_m2", ga.geometry.name)]
    pd.testing.assert_frame_equal(pd.DataFrame(ga[plain]), pd.DataFrame(gb[plain]), check_dtype=False)
    np.testing.assert_allclose(ga["area_m2"].to_numpy(float), gb["area_m2"].to_numpy(float), rtol=0, atol=0.1)
    if len(ga):
        assert (shapely.hausdorff_distance(ga.geometry.values, gb.geometry.values) <= 1e-8).all()
    assert list(got.summaries) == list(want.summaries)
    for level, frame in want.summaries.items():
        pd.testing.assert_frame_equal(got.summaries[level], frame, check_exact=False, rtol=0, atol=1e-9)
    if got.invalid_edges is not None:  # the edge checks it keeps for the next update: the cold ones
        assert got.invalid_edges.tolist() == want.invalid_edges.tolist()


# --- hand-made cases --------------------------------------------------------------------------

def test_nothing_changed_is_the_same_analysis():
    old = layout()
    assert_same(*updated_and_cold(old, old))


def test_a_centre_moved_across_the_district_boundary():
    old = layout()
    centers = _set_geometry(old[1], "center_id", "c00",
                            Point(X0 + 2.3 * SIZE, Y0 + 1.2 * SIZE))  # from 甲市's 市辖区 into 乙市's
    new = (old[0], centers, old[2])
    got, want = updated_and_cold(old, new)
    assert_same(got, want)


def test_a_centre_moved_onto_the_edge_between_two_cities():
    old = layout()
    # on the edge shared by g0100 (甲市) and g0200 (乙市): it counts for one grid only, the first by key
    centers = _set_geometry(old[1], "center_id", "c00", Point(X0 + 2 * SIZE, Y0 + 250))
    assert_same(*updated_and_cold(old, (old[0], centers, old[2])))


def test_a_grid_moved_to_a_namesake_unit_under_another_parent():
    old = layout()
    # g0000 (甲市 市辖区 街道0 社区0) to 乙市 市辖区 街道0 社区0: the same names, another city
    grids = _set(old[0], "grid_id", "g0000", city="乙市")
    got, want = updated_and_cold(old, (grids, old[1], old[2]))
    assert_same(got, want)
    assert ("乙市", "市辖区", "街道0", "社区0") in set(map(tuple, got.summaries["community"][
        ["city", "district", "street", "community"]].to_numpy()))


def test_the_last_centre_of_a_unit_removed_makes_a_missing_centre_gap():
    old = layout()
    centers = old[1][old[1]["center_id"] != "c00"].reset_index(drop=True)
    got, want = updated_and_cold(old, (old[0], centers, old[2]))
    assert_same(got, want)
    before = set(analyse(*old, params=PARAMS).gaps.query("kind == 'missing_center'")["gap_id"])
    assert set(got.gaps.query("kind == 'missing_center'")["gap_id"]) - before  # a gap appeared


def test_a_tiling_gap_closed_by_a_changed_grid():
    old = layout()
    # g0101 shrunk: a hole in 甲市's 市辖区; then grown back
    holed = _set_geometry(old[0], "grid_id", "g0101", _square(1, 1, dx=-200))
    with_hole = (holed, old[1], old[2])
    assert (analyse(*with_hole, params=PARAMS).gaps["kind"] == "tiling_gap").sum() > \
        (analyse(*old, params=PARAMS).gaps["kind"] == "tiling_gap").sum()
    got, want = updated_and_cold(with_hole, old)
    assert_same(got, want)
    assert_same(*updated_and_cold(old, with_hole))


def test_grids_added_removed_and_overlapping():
    old = layout()
    grids = old[0][old[0]["grid_id"] != "g0303"]
    extra = gpd.GeoDataFrame([_grid(4, 0, 4, grid_id="g0400")], geometry=[_square(4, 0)], crs=UTM).to_crs(4326)
    grids = _sorted(pd.concat([grids, extra], ignore_index=True), "grid_id")
    grids = _set_geometry(grids, "grid_id", "g0202", _square(2, 2, dx=80, dy=40))  # overlaps its neighbours
    got, want = updated_and_cold(old, (grids, old[1], old[2]))
    assert_same(got, want)
    assert (got.gaps["kind"] == "overlap").any()


def test_a_changed_population_is_counted():
    old = layout()
    grids = _set(old[0], "grid_id", "g0101", population=12345, instructor=None)
    got, want = updated_and_cold(old, (grids, old[1], old[2]))
    assert_same(got, want)


def test_changes_of_the_districts_layer_are_left_to_a_cold_analysis():
    old = layout()
    districts = old[2].copy()
    districts.loc[0, "adcode"] = "330102"
    got, _ = updated_and_cold(old, (old[0], old[1], districts))
    assert got is None


# --- random changes ---------------------------------------------------------------------------

CELLS = 5

grid_op = st.one_of(
    st.tuples(st.just("reshape"), st.integers(0, CELLS * CELLS - 1), st.sampled_from([-200.0, -0.4, 60.0, 250.0]),
              st.sampled_from([0.0, -120.0, 40.0])),
    st.tuples(st.just("rekey"), st.integers(0, CELLS * CELLS - 1), st.sampled_from(["city", "district", "street",
                                                                                   "community"]),
              st.sampled_from(["甲市", "乙市", "市辖区", "新区", "街道0", "街道1", "社区0", "社区2"])),
    st.tuples(st.just("remove"), st.integers(0, CELLS * CELLS - 1), st.none(), st.none()),
    st.tuples(st.just("add"), st.integers(-1, CELLS), st.integers(-1, CELLS), st.none()),
    st.tuples(st.just("people"), st.integers(0, CELLS * CELLS - 1), st.integers(0, 900), st.none()),
)
centre_op = st.one_of(
    st.tuples(st.just("add"), st.floats(-0.1, 1.1), st.floats(-0.1, 1.1),
              st.sampled_from(["community", "street", "district"])),
    st.tuples(st.just("remove"), st.integers(0, 9), st.none(), st.none()),
    st.tuples(st.just("move"), st.integers(0, 9), st.floats(-0.1, 1.1), st.floats(-0.1, 1.1)),
    st.tuples(st.just("relevel"), st.integers(0, 9), st.sampled_from(["community", "street", "district"]), st.none()),
)


def _apply(old, grid_ops, centre_ops):
    grids, centers, districts = old
    ids = list(grids["grid_id"])
    side = CELLS * SIZE
    for op, a, b, c in grid_ops:
        if op == "add":
            gid = f"g{a + 1:02d}{b + 1:02d}x"
            if gid in set(grids["grid_id"]):
                continue
            row = gpd.GeoDataFrame([_grid(max(a, 0), max(b, 0), CELLS, grid_id=gid)],
                                   geometry=[_square(a, b)], crs=UTM).to_crs(4326)
            grids = _sorted(pd.concat([grids, row], ignore_index=True), "grid_id")
            continue
        gid = ids[a % len(ids)]
        if gid not in set(grids["grid_id"]):
            continue
        if op == "reshape":
            i, j = int(gid[1:3]), int(gid[3:5])
            grids = _set_geometry(grids, "grid_id", gid, _square(i, j, dx=b, dy=c))
        elif op == "rekey":
            grids = _set(grids, "grid_id", gid, **{b: c})
        elif op == "remove":
            grids = grids[grids["grid_id"] != gid].reset_index(drop=True)
        else:
            grids = _set(grids, "grid_id", gid, population=b)
    cids = list(centers["center_id"])
    for n, (op, a, b, c) in enumerate(centre_ops):
        if op == "add":
            row = gpd.GeoDataFrame([center_row(f"n{n:02d}", c, city=CITIES[a >= 0.5], district="市辖区")],
                                   geometry=[Point(X0 + a * side, Y0 + b * side)], crs=UTM).to_crs(4326)
            centers = _sorted(pd.concat([centers, row], ignore_index=True), "center_id")
            continue
        cid = cids[a % len(cids)] if cids else None
        if cid is None or cid not in set(centers["center_id"]):
            continue
        if op == "remove":
            centers = centers[centers["center_id"] != cid].reset_index(drop=True)
        elif op == "move":
            centers = _set_geometry(centers, "center_id", cid, Point(X0 + b * side, Y0 + c * side))
        else:
            centers = _set(centers, "center_id", cid, level=b)
    return grids, centers, districts


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(start=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1),
                                st.sampled_from(["community", "street", "district"])), min_size=0, max_size=6),
       grid_ops=st.lists(grid_op, max_size=5), centre_ops=st.lists(centre_op, max_size=4), edges=st.booleans())
def test_random_changes_update_to_the_cold_analysis(start, grid_ops, centre_ops, edges):
    old = layout(CELLS, start)
    new = _apply(old, grid_ops, centre_ops)
    if new[0].empty:
        return
    got, want = updated_and_cold(old, new, edges=edges)
    assert_same(got, want)
    assert (got.invalid_edges is not None) == edges  # kept through the update when the previous had them


# --- through the catalog: a change stored, the analysis of the new versions ---------------------

def _stored(location):
    from geodata.store import open_store
    from geodata.validate import validate

    store = open_store(location)
    for name, frame in zip(("grids", "centers", "districts"), layout(CELLS, ((0.3, 0.3, "community"),
                                                                            (0.7, 0.6, "street")))):
        store.write(name, validate(frame, name).data, author="t")
    return store


def _cold_is_not_called(monkeypatch):
    import geodata.catalog

    def cold(*args, **kwargs):
        raise AssertionError("analysed cold")

    monkeypatch.setattr(geodata.catalog, "analyse", cold)


def test_the_catalog_updates_the_analysis_after_a_merge(location, monkeypatch):
    from geodata.catalog import Catalog
    from geodata.store import open_store

    store = _stored(location)
    catalog = Catalog(store, PARAMS)
    catalog.analysis()
    grids = store.read("grids")
    upserts = grids[grids["grid_id"].isin(["g0101", "g0303"])].copy()
    upserts["population"] = [4321, 0]
    upserts = _set_geometry(upserts, "grid_id", "g0303", _square(3, 3, dx=-150))  # a tiling gap opens
    added = gpd.GeoDataFrame([_grid(5, 0, CELLS, grid_id="g0500")], geometry=[_square(5, 0)], crs=UTM).to_crs(4326)
    store.write_changes("grids", upserts=pd.concat([upserts, added], ignore_index=True), removed=["g0000"],
                        author="t")
    centers = store.read("centers")
    store.write_changes("centers", upserts=_set_geometry(centers.iloc[:1], "center_id", "c00",
                                                         Point(X0 + 1800, Y0 + 900)), author="t")

    _cold_is_not_called(monkeypatch)
    got = catalog.analysis()
    frames = [store.read(name) for name in ("grids", "centers", "districts")]
    for made, read in zip(catalog._last.frames, frames):  # the frames made from the change sets are as read
        pd.testing.assert_frame_equal(made, read)
    monkeypatch.undo()
    assert_same(got, analyse(*frames, params=PARAMS))

    catalog._sharing.join()  # kept for the other workers under the new versions' key
    _cold_is_not_called(monkeypatch)
    assert_same(Catalog(open_store(location), PARAMS).analysis(), got)


def test_the_catalog_analyses_cold_after_a_change_of_the_districts(location, monkeypatch):
    import geodata.catalog
    from geodata.catalog import Catalog

    store = _stored(location)
    catalog = Catalog(store, PARAMS)
    catalog.analysis()
    districts = store.read("districts")
    districts.loc[0, "name_en"] = "Downtown"
    store.write("districts", districts, author="t")
    cold = []
    monkeypatch.setattr(geodata.catalog, "analyse", lambda *a, **k: cold.append(1) or analyse(*a, **k))
    assert_same(catalog.analysis(), analyse(*(store.read(n) for n in ("grids", "centers", "districts")),
                                            params=PARAMS))
    assert cold == [1]


def test_a_what_if_of_the_whole_data_updates_the_kept_analysis(location, monkeypatch):
    import geopandas as gpd

    from geodata.catalog import Catalog

    store = _stored(location)
    catalog = Catalog(store, PARAMS)
    catalog.analysis()  # kept for every worker: the what-if's job starts from it
    proposed = ((121.56, 29.88, "community"), (121.565, 29.885, "street"))
    updates = []
    real = incremental.update
    monkeypatch.setattr(incremental, "update", lambda *a, **k: updates.append(1) or real(*a, **k))
    got = catalog.what_if(proposed)
    grids, centers, districts = (store.read(n) for n in ("grids", "centers", "districts"))
    extra = gpd.GeoDataFrame({"level": [p[2] for p in proposed]}, geometry=[Point(p[:2]) for p in proposed], crs=4326)
    want = analyse(grids, pd.concat([centers, extra], ignore_index=True), districts, PARAMS).summaries
    assert updates == [1]
    for level, frame in want.items():
        pd.testing.assert_frame_equal(got[level], frame, check_exact=False, rtol=0, atol=1e-9)
