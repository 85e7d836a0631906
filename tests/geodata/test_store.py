"""The store, on every engine: whatever the embedded SQLite store passes, the PostGIS store passes.

Each test runs once per engine (the ``store`` fixture): SQLite in a fresh data directory, PostGIS
in a fresh database of the session's throwaway cluster (``tests/postgres.py``, a plugin of
``tests/conftest.py``).  The tests of the old one-file-a-version store are in ``test_store_files.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading

import geopandas as gpd
import pandas as pd
import psycopg
import pytest
import shapely
from shapely import MultiPolygon, Polygon

from geodata import geojson
from geodata.errors import (BadRequest, DamagedStore, InsufficientStorage, NotFound, PreconditionFailed,
                            ServiceUnavailable)
from geodata.store import Version, open_store
from geodata.store.base import RowParts, content_hash, text_hash
from geodata.store.postgis import PostGISStore
from tests.postgres import HEARD_WITHIN_S, heard_within, opened_at

# --- data ---------------------------------------------------------------------

X0, Y0, STEP = 121.50, 29.90, 0.01


def ccw_square(i: int) -> Polygon:
    x = X0 + STEP * i
    return Polygon([(x, Y0), (x + STEP, Y0), (x + STEP, Y0 + STEP), (x, Y0 + STEP), (x, Y0)])


def cw_square(i: int) -> Polygon:
    x = X0 + STEP * i
    return Polygon([(x, Y0), (x, Y0 + STEP), (x + STEP, Y0 + STEP), (x + STEP, Y0), (x, Y0)])


def grids(n: int = 2, *, tag: str = "a", **columns) -> gpd.GeoDataFrame:
    """``n`` valid grids side by side near Ningbo; ``columns`` add or replace whole columns."""
    data = {
        "grid_id": [f"{tag}{i}" for i in range(n)],
        "name": [f"{tag}{i}号网格" for i in range(n)],
        "grid_type": ["residential"] * n,
        "district": ["海曙区"] * n,
        "street": ["月湖街道"] * n,
        "community": ["青石社区"] * n,
        "population": [100 * (i + 1) for i in range(n)],
    }
    data.update(columns)
    return gpd.GeoDataFrame(data, geometry=[ccw_square(i) for i in range(n)], crs="EPSG:4326")


# --- the engines ----------------------------------------------------------------

@pytest.fixture
def instances(location):
    """Opens another instance of the store (as another process or server would), closed after the test."""
    yield from opened_at(location, open_store)


@pytest.fixture
def store(instances):
    return instances()


def rows_stored(store, layer: str = "grids") -> int:
    """Feature rows the engine keeps for ``layer`` over all its versions (what a write added)."""
    if isinstance(store, PostGISStore):
        with psycopg.connect(store.location) as db:
            return db.execute("SELECT count(*) FROM features WHERE layer = %s", (layer,)).fetchone()[0]
    with sqlite3.connect(store.path) as db:
        return db.execute("SELECT count(*) FROM features WHERE layer = ?", (layer,)).fetchone()[0]


def keys(page) -> list[str]:
    return [json.loads(text)["id"] for text in page.features]


# --- an empty store -----------------------------------------------------------

def test_empty_store_has_no_versions(store):
    assert store.versions("grids") == []
    assert store.current("grids") is None


@pytest.mark.parametrize("call", ["read", "read_geojson", "version", "query", "get", "count", "extent", "fields"])
def test_reading_an_empty_layer_is_not_found(store, call):
    args = ("grids", "a0") if call == "get" else ("grids",)
    with pytest.raises(NotFound) as caught:
        getattr(store, call)(*args)
    assert caught.value.status == 404


@pytest.mark.parametrize("call", ["versions", "current", "read", "read_geojson", "query"])
def test_unknown_layer_is_not_found(store, call):
    with pytest.raises(NotFound) as caught:
        getattr(store, call)("rivers")
    assert caught.value.status == 404
    with pytest.raises(NotFound):
        store.write("rivers", grids(), author="x")


def test_unknown_version_is_not_found(store):
    store.write("grids", grids(), author="x")
    for number in (0, 2):
        with pytest.raises(NotFound):
            store.read("grids", number)
        with pytest.raises(NotFound):
            store.query("grids", number)
        with pytest.raises(NotFound):
            store.get("grids", "a0", number)


# --- writing and reading versions ---------------------------------------------

def test_first_write_is_version_1(store):
    v = store.write("grids", grids(3), author="王伟", message="首次导入", time="2026-01-02T03:04:05+00:00")
    assert isinstance(v, Version)
    assert (v.layer, v.version, v.author, v.message, v.features, v.time) == (
        "grids", 1, "王伟", "首次导入", 3, "2026-01-02T03:04:05+00:00")
    # the content hash names the features stored, whatever their order
    assert v.sha256 == content_hash(text_hash(t) for t in reversed(store.query("grids").features))
    assert store.current("grids") == v
    assert store.versions("grids") == [v]
    assert store.version("grids", 1) == v
    assert store.count("grids") == 3


def test_versions_accumulate_and_old_ones_stay_readable(store):
    first, second = grids(2, tag="a"), grids(3, tag="b")
    v1 = store.write("grids", first, author="a", message="one")
    v2 = store.write("grids", second, author="b", message="two")
    assert v2.version == 2
    assert store.versions("grids") == [v1, v2]
    assert store.current("grids") == v2

    old = store.read("grids", 1)
    assert old["grid_id"].tolist() == ["a0", "a1"]
    assert old["population"].tolist() == [100, 200]
    assert shapely.equals_exact(old.geometry.values, first.geometry.values, tolerance=1e-9).all()

    latest = store.read("grids")
    assert latest["grid_id"].tolist() == ["b0", "b1", "b2"]
    assert latest.crs.equals("EPSG:4326")
    assert store.read_geojson("grids", 1) != store.read_geojson("grids", 2)
    assert (store.count("grids", 1), store.count("grids")) == (2, 3)


def test_stored_features_follow_the_right_hand_rule(store):
    store.write("grids", grids(1, tag="c").set_geometry([cw_square(0)], crs="EPSG:4326"), author="x")
    doc = json.loads(store.read_geojson("grids"))
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    (feature,) = doc["features"]
    assert (feature["type"], feature["id"], feature["geometry"]["type"]) == ("Feature", "c0", "Polygon")
    exterior = feature["geometry"]["coordinates"][0]
    assert exterior[0] == exterior[-1]
    assert shapely.is_ccw(shapely.LinearRing(exterior))
    assert not shapely.is_ccw(cw_square(0).exterior)  # the input really was clockwise


def test_holes_and_multipolygons_follow_the_right_hand_rule(store):
    outer = list(cw_square(0).exterior.coords)
    hole = [(121.502, 29.902), (121.508, 29.902), (121.508, 29.908), (121.502, 29.908), (121.502, 29.902)]  # CCW
    with_hole = Polygon(outer, [hole])
    multi = MultiPolygon([cw_square(2), cw_square(4)])
    store.write("grids", grids(2).set_geometry([with_hole, multi], crs="EPSG:4326"), author="x")
    first, second = (f["geometry"] for f in json.loads(store.read_geojson("grids"))["features"])
    assert [shapely.is_ccw(shapely.LinearRing(r)) for r in first["coordinates"]] == [True, False]
    assert second["type"] == "MultiPolygon"
    assert [shapely.is_ccw(shapely.LinearRing(p[0])) for p in second["coordinates"]] == [True, True]
    back = store.read("grids")
    assert back.geometry.iloc[0].equals(with_hole) and back.geometry.iloc[1].equals(multi)  # same shapes


def test_an_empty_layer_can_be_stored(store):
    store.write("grids", grids(2), author="x")
    v = store.write("grids", grids(0), author="x", message="cleared")
    assert v.features == 0
    assert json.loads(store.read_geojson("grids"))["features"] == []
    back = store.read("grids")
    assert len(back) == 0
    assert "grid_id" in back.columns and str(back["population"].dtype) == "Int64"
    assert store.extent("grids") is None
    assert store.query("grids", bbox=(121, 29, 122, 30)).number_matched == 0


def test_chinese_text_round_trips(store, instances):
    gdf = grids(1, name=["鼓楼·天一阁网格（一）"], district=["鄞州区"], street=["钟公庙街道"],
                community=["金家漕社区"])
    store.write("grids", gdf, author="张三", message="导入网格")
    back = store.read("grids")
    assert back.loc[0, "name"] == "鼓楼·天一阁网格（一）"
    assert back.loc[0, "district"] == "鄞州区"
    assert back.loc[0, "community"] == "金家漕社区"
    assert "鼓楼·天一阁网格（一）".encode() in store.read_geojson("grids")  # readable, not \u-escaped
    assert store.current("grids").author == "张三"
    assert instances().current("grids").message == "导入网格"
    assert keys(store.query("grids", filters=[("name", "鼓楼·天一阁网格（一）")])) == ["a0"]


def test_extra_properties_come_back_untouched(store):
    gdf = grids(2, survey=[{"done": True, "by": ["李四"], "score": 4.5}, None],
                updated=["2024-01-01", "2023-12-31"], note=["甲", None])
    store.write("grids", gdf, author="x")
    back = store.read("grids")
    assert [c for c in back.columns if c != "geometry"][-3:] == ["survey", "updated", "note"]  # in their order
    assert back.loc[0, "survey"] == {"done": True, "by": ["李四"], "score": 4.5}
    assert back.loc[1, "survey"] is None
    assert back["updated"].tolist() == ["2024-01-01", "2023-12-31"]
    assert all(isinstance(v, str) for v in back["updated"])
    assert back.loc[0, "note"] == "甲"
    props = json.loads(store.read_geojson("grids"))["features"][0]["properties"]
    assert props["survey"] == {"done": True, "by": ["李四"], "score": 4.5}
    assert props["updated"] == "2024-01-01"


def test_integer_fields_are_nullable_int64(store):
    gdf = grids(3, population=pd.array([120, None, 0], dtype="Int64"))
    store.write("grids", gdf, author="x")
    back = store.read("grids")
    assert str(back["population"].dtype) == "Int64"
    assert back["population"].tolist()[0] == 120 and back["population"].tolist()[2] == 0
    assert back["population"].isna().tolist() == [False, True, False]
    assert str(back["households"].dtype) == "Int64"  # a schema field the input lacked: all null
    assert back["households"].isna().all()
    props = [f["properties"] for f in json.loads(store.read_geojson("grids"))["features"]]
    assert [p["population"] for p in props] == [120, None, 0]


def test_control_characters_round_trip(store):
    odd = "甲\x00乙\t丙\n\\u0000"  # a NUL, a tab, a newline, and a backslash before "u0000"
    store.write("grids", grids(2, note=[odd, "\x01"]), author="x")
    assert store.read("grids")["note"].tolist() == [odd, "\x01"]
    assert json.loads(store.get("grids", "a0"))["properties"]["note"] == odd
    assert keys(store.query("grids", filters=[("note", "\x01")])) == ["a1"]


def test_a_feature_without_geometry_is_kept(store):
    store.write("grids", grids(2).set_geometry([None, ccw_square(1)], crs="EPSG:4326"), author="x")
    assert json.loads(store.get("grids", "a0"))["geometry"] is None
    assert store.read("grids").geometry.isna().tolist() == [True, False]
    assert keys(store.query("grids", bbox=(121, 29, 122, 30))) == ["a1"]
    assert_extent(store.extent("grids"), [121.51, 29.9, 121.52, 29.91])


def test_crs84_and_missing_crs_are_accepted(store):
    store.write("grids", grids(1).set_crs("OGC:CRS84", allow_override=True), author="x")
    store.write("grids", grids(1).set_crs(None, allow_override=True), author="x")
    assert [v.version for v in store.versions("grids")] == [1, 2]


@pytest.mark.parametrize("bad", ["projected", "repeated key"])
def test_a_bad_layer_is_refused_and_stores_nothing(store, bad):
    gdf = grids().to_crs(32651) if bad == "projected" else grids(2, grid_id=["k", "k"])
    with pytest.raises(BadRequest) as caught:
        store.write("grids", gdf, author="x")
    assert caught.value.status == 400
    assert store.versions("grids") == []
    assert rows_stored(store) == 0


def test_another_instance_sees_new_writes(store, instances):
    other = instances()
    bound = HEARD_WITHIN_S if isinstance(store, PostGISStore) else 0  # one database file: at once

    def at(one, number: int):
        return lambda: (v := one.current("grids")) and v.version == number

    assert other.versions("grids") == [] and other.current("grids") is None
    store.write("grids", grids(2), author="a")
    heard_within(bound, at(other, 1))  # its empty view is not cached for ever
    assert other.read("grids")["grid_id"].tolist() == ["a0", "a1"]
    store.write("grids", grids(4, tag="z"), author="a")
    heard_within(bound, at(other, 2))
    assert [v.version for v in other.versions("grids")] == [1, 2]
    assert other.read("grids")["grid_id"].tolist() == ["z0", "z1", "z2", "z3"]
    other.write("grids", grids(1), author="b")
    assert heard_within(bound, at(store, 3)) and store.current("grids").author == "b"


LISTENERS_CONNECT_S = 10.0  # a connection made on a loaded machine


def test_a_write_while_the_listener_is_cut_off_is_not_missed(postgis_url):
    """PostGIS: the versions a store keeps in memory stay right only while it hears every notice; a
    listener cut off (and the notice of a write meanwhile lost to it) must not leave a stale answer."""
    one, other = open_store(postgis_url), open_store(postgis_url)
    try:
        one.write("grids", grids(2), author="a")
        heard_within(HEARD_WITHIN_S, lambda: (v := other.current("grids")) and v.version == 1)
        listening = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gridmap notices' AND "
                     "datname = current_database()")
        with psycopg.connect(postgis_url, autocommit=True) as db:
            # each store's listener connects in a thread of its own, in the background: both, before they are cut
            heard_within(LISTENERS_CONNECT_S, lambda: db.execute(listening).fetchone()[0] == 2)
            cut = db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                             "application_name = 'gridmap notices' AND datname = current_database()").fetchall()
            assert len(cut) == 2  # each store's listener
            one.write("grids", grids(3), author="a")  # its notice may reach nobody
        heard_within(HEARD_WITHIN_S, lambda: other.current("grids").version == 2)
        assert other.read("grids")["grid_id"].tolist() == ["a0", "a1", "a2"]
    finally:
        one.close()
        other.close()


def test_a_version_another_process_just_wrote_is_found_before_its_notice_arrives(postgis_url, monkeypatch):
    """A job's process writes and answers with the new version's number; the server reads that version
    back at once, before the database's notice has reached its listener."""
    reader, writer = open_store(postgis_url), open_store(postgis_url)
    try:
        writer.write("grids", grids(2), author="a")
        heard_within(HEARD_WITHIN_S, lambda: (v := reader.current("grids")) and v.version == 1)
        notices = reader._notices()
        deaf = notices.stamp("grids")
        monkeypatch.setattr(notices, "stamp", lambda layer: deaf)  # the notice of what follows never arrives
        assert reader.current("grids").version == 1  # the list kept in memory, as the notices allow
        written = writer.write("grids", grids(3), author="a")
        assert reader.version("grids", written.version) == written
        assert reader.get("grids", "a2", written.version)
    finally:
        reader.close()
        writer.close()


# --- If-Match -----------------------------------------------------------------------

def test_if_version_0_writes_to_an_empty_layer(store):
    assert store.write("grids", grids(), author="x", if_version=0).version == 1
    assert store.write("grids", grids(), author="x", if_version=1).version == 2


@pytest.mark.parametrize("stale", [0, 2, 5])
def test_stale_if_version_is_refused_and_stores_nothing(store, instances, stale):
    before = store.write("grids", grids(2), author="x")
    rows = rows_stored(store)
    with pytest.raises(PreconditionFailed) as caught:
        store.write("grids", grids(5, tag="new"), author="y", if_version=stale)
    assert caught.value.status == 412
    with pytest.raises(PreconditionFailed):
        store.write_changes("grids", upserts=grids(1, tag="new"), author="y", if_version=stale)
    assert store.versions("grids") == [before]
    assert instances().versions("grids") == [before]
    assert rows_stored(store) == rows
    assert store.read("grids")["grid_id"].tolist() == ["a0", "a1"]


def _race(writers, n: int) -> list[object]:
    """``n`` threads, each writing through ``writers[i % len(writers)]`` with the same if_version."""
    barrier = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def attempt(i: int) -> None:
        store = writers[i % len(writers)]
        expected = store.current("grids").version
        barrier.wait()
        try:
            outcomes[i] = store.write("grids", grids(2, tag=f"t{i}_"), author=f"t{i}", if_version=expected)
        except BaseException as e:  # noqa: BLE001 - reported by the asserts of the caller
            outcomes[i] = e

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def test_if_version_lets_one_of_many_threads_win(store):
    store.write("grids", grids(1), author="setup")
    n = 20
    outcomes = _race([store], n)
    won = [o for o in outcomes if isinstance(o, Version)]
    lost = [o for o in outcomes if isinstance(o, PreconditionFailed)]
    assert len(won) == 1, outcomes
    assert len(lost) == n - 1, outcomes
    assert won[0].version == 2
    assert [v.version for v in store.versions("grids")] == [1, 2]
    assert store.current("grids").author == won[0].author
    assert store.read("grids")["grid_id"].tolist() == [f"{won[0].author}_0", f"{won[0].author}_1"]


# --- queries ------------------------------------------------------------------------

def shapes() -> gpd.GeoDataFrame:
    """Two 0.01° squares and a right triangle whose bounding box is mostly empty::

        sq0 [121.50, 121.51] × [29.90, 29.91]
        sq1 [121.52, 121.53] × [29.90, 29.91]
        tri (121.54, 29.90) (121.56, 29.90) (121.54, 29.92): x + y ≤ 151.46, box [121.54, 121.56] × [29.90, 29.92]
    """
    tri = Polygon([(121.54, 29.90), (121.56, 29.90), (121.54, 29.92), (121.54, 29.90)])
    return gpd.GeoDataFrame({"grid_id": ["sq0", "sq1", "tri"], "name": ["甲", "乙", "丙"]},
                            geometry=[ccw_square(0), ccw_square(2), tri], crs="EPSG:4326")


BBOXES = {
    # inside the triangle's box, above its long side (at x = 121.555 it reaches y = 29.905 only)
    "box meets, shape does not": ((121.555, 29.915, 121.56, 29.92), []),
    "crosses sq0, holds sq1, crosses tri": ((121.505, 29.905, 121.545, 29.906), ["sq0", "sq1", "tri"]),
    "between the squares": ((121.511, 29.90, 121.519, 29.91), []),
    "touches sq0's right edge": ((121.51, 29.905, 121.515, 29.906), ["sq0"]),
    "inside the triangle": ((121.541, 29.901, 121.542, 29.902), ["tri"]),
    "everything": ((121.0, 29.0, 122.0, 30.0), ["sq0", "sq1", "tri"]),
}


@pytest.mark.parametrize("bbox, expected", BBOXES.values(), ids=BBOXES.keys())
def test_bbox_keeps_the_features_whose_shape_meets_it(store, bbox, expected):
    store.write("grids", shapes(), author="x")
    page = store.query("grids", bbox=bbox)
    assert keys(page) == expected
    assert page.number_matched == len(expected)


def test_bbox_queries_an_older_version(store):
    store.write("grids", shapes(), author="x")
    store.write("grids", grids(1, tag="new"), author="x")
    box = BBOXES["crosses sq0, holds sq1, crosses tri"][0]
    assert keys(store.query("grids", 1, bbox=box)) == ["sq0", "sq1", "tri"]
    assert keys(store.query("grids", 2, bbox=box)) == ["new0"]


def test_filters_compare_numbers_as_numbers_and_text_as_text(store):
    store.write("grids", grids(3, note=["007", "7", None], survey=[{"a": 1}, None, None]), author="x")
    assert keys(store.query("grids", filters=[("population", "200")])) == ["a1"]
    assert keys(store.query("grids", filters=[("population", "200.0")])) == ["a1"]
    assert keys(store.query("grids", filters=[("population", "2e2")])) == ["a1"]
    assert keys(store.query("grids", filters=[("population", "250")])) == []
    assert keys(store.query("grids", filters=[("name", "a2号网格")])) == ["a2"]
    assert keys(store.query("grids", filters=[("district", "海曙区")])) == ["a0", "a1", "a2"]
    assert keys(store.query("grids", filters=[("note", "7")])) == ["a1"]  # an extra property is text: "007" ≠ "7"
    assert keys(store.query("grids", filters=[("households", "1")])) == []  # nulls never match
    assert keys(store.query("grids", filters=[("grid_id", "a0")])) == ["a0"]
    both = store.query("grids", filters=[("district", "海曙区"), ("population", "300")])
    assert (keys(both), both.number_matched) == (["a2"], 1)
    box = (121.505, 29.905, 121.515, 29.906)  # meets a0 and a1
    assert keys(store.query("grids", bbox=box, filters=[("population", "100")])) == ["a0"]
    with pytest.raises(BadRequest, match="population"):
        store.query("grids", filters=[("population", "many")])


def test_a_number_filter_reads_the_clients_text_as_a_number(store):
    store.write("centers", gpd.GeoDataFrame(
        {"center_id": ["c1", "c2"], "name": ["一", "二"], "level": ["community", "community"],
         "floor_area_m2": [120.5, 80.0]}, geometry=[shapely.Point(121.5, 29.9)] * 2, crs="EPSG:4326"), author="x")
    assert keys(store.query("centers", filters=[("floor_area_m2", "120.50")])) == ["c1"]
    assert keys(store.query("centers", filters=[("floor_area_m2", "80")])) == ["c2"]
    assert keys(store.query("centers", filters=[("floor_area_m2", "nan")])) == []


def test_pages_follow_the_keys_in_order(store):
    n = 25
    store.write("grids", grids(n, tag="g"), author="x")
    ordered = sorted(f"g{i}" for i in range(n))  # g0, g1, g10, g11, ... as text
    everything = store.query("grids")
    assert keys(everything) == ordered and everything.number_matched == n
    page = store.query("grids", limit=10, offset=5)
    assert (keys(page), page.number_matched) == (ordered[5:15], n)
    assert keys(store.query("grids", limit=10, offset=20)) == ordered[20:]
    beyond = store.query("grids", limit=10, offset=30)
    assert (beyond.features, beyond.number_matched) == ([], n)
    assert store.query("grids", limit=0).number_matched == n

    box = (121.5 + 0.005, 29.9, 121.5 + 0.095, 29.91)  # meets squares 0 to 9
    inside = sorted(f"g{i}" for i in range(10))
    filtered = store.query("grids", bbox=box, limit=4, offset=4)
    assert (keys(filtered), filtered.number_matched) == (inside[4:8], 10)
    past = store.query("grids", bbox=box, limit=4, offset=12)
    assert (past.features, past.number_matched) == ([], 10)
    assert store.query("grids", bbox=box, limit=0).number_matched == 10
    assert store.read("grids")["grid_id"].tolist() == ordered  # the frame too


def test_keys_sort_by_code_point_whatever_the_locale(store):
    names = ["b", "B", "a", "Z", "é", "中", "10", "9", "a-1", "a_1"]
    gdf = grids(len(names), grid_id=names)
    store.write("grids", gdf, author="x")
    assert keys(store.query("grids")) == sorted(names)
    assert keys(store.query("grids", bbox=(121, 29, 122, 30), limit=4, offset=2)) == sorted(names)[2:6]
    assert store.read("grids")["grid_id"].tolist() == sorted(names)


def test_get_one_feature_of_any_version(store):
    store.write("grids", grids(2), author="x")
    store.write("grids", grids(2, population=[5, 6]), author="x")
    assert json.loads(store.get("grids", "a1"))["properties"]["population"] == 6
    assert json.loads(store.get("grids", "a1", 1))["properties"]["population"] == 200
    assert store.get("grids", "a0") == store.query("grids", limit=1).features[0]
    with pytest.raises(NotFound, match="a9"):
        store.get("grids", "a9")


def assert_extent(found: list[float], exact: list[float]) -> None:
    """Within 2e-5° (2 m) and never inside the features: SQLite's R*Tree keeps its boxes as 32-bit
    floats, rounded outwards."""
    assert found == pytest.approx(exact, abs=2e-5)
    assert found[0] <= exact[0] and found[1] <= exact[1] and found[2] >= exact[2] and found[3] >= exact[3]


def test_extent_and_fields(store):
    store.write("grids", grids(3, note=["x", None, None]), author="x")
    assert_extent(store.extent("grids"), [121.5, 29.9, 121.53, 29.91])
    store.write("grids", grids(1), author="x")
    assert_extent(store.extent("grids"), [121.5, 29.9, 121.51, 29.91])
    assert_extent(store.extent("grids", 1), [121.5, 29.9, 121.53, 29.91])
    schema = ["grid_id", "name", "grid_type", "city", "district", "street", "community", "population",
              "households", "party_members", "grid_workers", "instructor", "party_branch"]
    assert store.fields("grids", 1) == [*schema, "note"]
    assert store.fields("grids") == schema


def test_a_lock_is_held_against_other_instances(store, instances):
    other, events = instances(), []
    got = threading.Event()

    def take() -> None:
        with other.lock("cold-start"):
            events.append("other")
            got.set()

    with store.lock("cold-start"):
        thread = threading.Thread(target=take)
        thread.start()
        assert not got.wait(0.5)  # the other instance waits while this one holds the lock
        with instances().lock("another name"):
            pass  # other names are free
        events.append("this")
    thread.join(30)
    assert events == ["this", "other"]


# --- only what changed is written --------------------------------------------------------

def test_write_changes_stores_only_the_changed_rows(store):
    store.write("grids", grids(10), author="x")
    assert rows_stored(store) == 10
    changed = grids(10).iloc[[3, 7]].copy()
    changed["population"] = [1, 2]
    v2 = store.write_changes("grids", upserts=changed, author="y", message="two grids")
    assert (v2.version, v2.features, v2.author, v2.message) == (2, 10, "y", "two grids")
    assert rows_stored(store) == 12  # exactly the two changed grids
    back = store.read("grids")
    assert back.set_index("grid_id")["population"].to_dict() == {
        f"a{i}": {3: 1, 7: 2}.get(i, 100 * (i + 1)) for i in range(10)}
    assert store.read("grids", 1)["population"].tolist() == [100 * (i + 1) for i in range(10)]

    v3 = store.write_changes("grids", upserts=grids(10).iloc[[0]], author="y")  # the same as stored
    assert rows_stored(store) == 12 and v3.features == 10 and v3.sha256 == v2.sha256
    v4 = store.write_changes("grids", upserts=grids(1, tag="n"), removed=["a0", "a1"], author="y")
    assert rows_stored(store) == 13 and v4.features == 9
    assert store.read("grids")["grid_id"].tolist() == sorted([f"a{i}" for i in range(2, 10)] + ["n0"])


def test_removing_a_missing_key_is_not_found_and_stores_nothing(store):
    v1 = store.write("grids", grids(3), author="x")
    with pytest.raises(NotFound, match="zz"):
        store.write_changes("grids", upserts=grids(1, tag="n"), removed=["a0", "zz"], author="y")
    assert store.versions("grids") == [v1]
    assert rows_stored(store) == 3


def test_a_whole_layer_write_stores_only_what_changed(store):
    store.write("grids", grids(10), author="x")
    layer = grids(10)
    layer.loc[[2, 5], "name"] = ["改名甲", "改名乙"]
    v2 = store.write("grids", layer, author="x")
    assert rows_stored(store) == 12
    assert v2.features == 10
    assert store.read("grids")["name"].tolist()[2] == "改名甲"
    store.write("grids", layer.iloc[:8], author="x")  # two grids removed: nothing new to store
    assert rows_stored(store) == 12 and store.count("grids") == 8


@pytest.fixture
def small_parts(monkeypatch):
    """Whole-layer writes made three features a part (a province's are 5,000), so a test's layer has many."""
    monkeypatch.setattr(RowParts, "PART", 3)


def test_a_layer_written_in_parts_keeps_the_changes_of_each_part(store, small_parts):
    store.write("grids", grids(10), author="x")
    layer = grids(10)
    layer.loc[[1, 4, 8], "population"] = [7, 8, 9]  # in the first, second and third part
    layer = pd.concat([layer.iloc[:9], grids(1, tag="b")], ignore_index=True)  # a9 goes, b0 comes
    v2 = store.write("grids", layer, author="x")
    assert rows_stored(store) == 10 + 3 + 1
    assert (v2.version, v2.features) == (2, 10)
    assert v2.sha256 == content_hash(text_hash(t) for t in store.query("grids").features)
    assert keys(store.query("grids")) == [*(f"a{i}" for i in range(9)), "b0"]
    assert store.read("grids")["population"].tolist() == [100, 7, 300, 400, 8, 600, 700, 800, 9, 100]
    changes = store.changes("grids", 1, 2)
    assert (changes.added, changes.changed, changes.removed) == ({"b0"}, {"a1", "a4", "a8"}, {"a9"})


def test_a_key_repeated_in_another_part_is_refused_and_stores_nothing(store, small_parts):
    with pytest.raises(BadRequest, match="repeats a value"):
        store.write("grids", grids(8, grid_id=[f"k{i}" for i in range(7)] + ["k0"]), author="x")
    assert store.versions("grids") == [] and rows_stored(store) == 0


def test_a_part_that_fails_stores_nothing_of_the_parts_before(postgis, small_parts, monkeypatch):
    store = postgis()  # the engine that stores parts while the next is made
    v1 = store.write("grids", grids(4), author="x")
    made = []
    real = type(store)._rows

    def rows(gdf, layer):
        made.append(len(gdf))
        if len(made) == 3:
            raise BadRequest("the third part cannot be made")
        return real(gdf, layer)

    monkeypatch.setattr(type(store), "_rows", staticmethod(rows))
    with pytest.raises(BadRequest, match="third part"):
        store.write("grids", grids(9, population=[1] * 9), author="x")
    assert store.current("grids") == v1 and rows_stored(store) == 4
    assert store.read("grids")["population"].tolist() == [100, 200, 300, 400]


# --- history ------------------------------------------------------------------------

def test_every_older_version_reads_exactly_as_written(store):
    layers = [grids(3), grids(4, population=[1, 2, 3, 4]), grids(2, tag="b"), grids(4, population=[1, 2, 3, 4])]
    written = []
    for i, gdf in enumerate(layers):
        v = store.write("grids", gdf, author=f"w{i}")
        written.append((v, store.read_geojson("grids"), store.read("grids").copy()))
    changes = grids(1, tag="c")
    store.write_changes("grids", upserts=changes, removed=["a3"], author="w")
    for v, data, frame in written:
        assert store.version("grids", v.version) == v
        assert store.read_geojson("grids", v.version) == data
        pd.testing.assert_frame_equal(store.read("grids", v.version), frame)
        assert store.count("grids", v.version) == len(frame)
    assert written[1][0].sha256 == written[3][0].sha256  # the same features, the same hash


def test_restoring_version_1_gives_its_hash_and_bytes_again(store):
    v1 = store.write("grids", grids(5), author="x")
    first = store.read_geojson("grids")
    store.write("grids", grids(3, tag="b"), author="x")
    store.write_changes("grids", upserts=grids(2, tag="c"), removed=["b0"], author="x")
    restored = store.write("grids", store.read("grids", 1), author="x", message="restore of version 1")
    assert restored.version == 4
    assert restored.sha256 == v1.sha256 and restored.features == v1.features
    assert store.read_geojson("grids") == first


def test_restore_writes_again_only_the_rows_the_current_version_lacks(store):
    v1 = store.write("grids", grids(10), author="x")
    changed = grids(10).iloc[[3, 7]].copy()
    changed["population"] = [1, 2]
    store.write_changes("grids", upserts=changed, removed=["a0"], author="y")
    assert rows_stored(store) == 12
    restored = store.restore("grids", 1, author="z", message="restored version 1")
    assert (restored.version, restored.author, restored.message) == (3, "z", "restored version 1")
    assert rows_stored(store) == 15  # a0, a3 and a7 again: the seven unchanged rows live on
    assert restored.sha256 == v1.sha256 and restored.features == 10
    assert store.read_geojson("grids") == store.read_geojson("grids", 1)
    assert store.fields("grids") == store.fields("grids", 1)
    assert store.extent("grids") == store.extent("grids", 1)
    with pytest.raises(PreconditionFailed):
        store.restore("grids", 2, author="z", if_version=2)
    with pytest.raises(NotFound):
        store.restore("grids", 9, author="z")
    assert store.current("grids").version == 3


def test_a_versions_frame_is_read_once(store):
    store.write("grids", grids(3), author="x")
    assert store.read("grids") is store.read("grids") is store.read("grids", 1)
    store.write("grids", grids(2), author="x")
    assert len(store.read("grids")) == 2 and len(store.read("grids", 1)) == 3


def test_read_geojson_is_the_features_in_key_order(store):
    store.write("grids", grids(12), author="x")
    data = store.read_geojson("grids")
    assert data == geojson.feature_collection(store.query("grids").features)
    assert [f["id"] for f in json.loads(data)["features"]] == sorted(f"a{i}" for i in range(12))


# --- PostGIS: a database restart, two instances --------------------------------------

@pytest.fixture
def postgis(postgis_url):
    opened = []

    def open_(**options) -> PostGISStore:
        opened.append(PostGISStore(postgis_url, **options))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


def test_a_stopped_database_is_service_unavailable_and_comes_back(postgis, postgres_cluster):
    store = postgis(timeout=2)
    v1 = store.write("grids", grids(3), author="x")
    stopped, answered, failures = threading.Event(), threading.Event(), []

    def reader() -> None:
        while not stopped.is_set() or not failures:
            try:
                assert store.query("grids", bbox=(121, 29, 122, 30)).number_matched == 3
                answered.set()
            except Exception as e:  # noqa: BLE001 - what the reader met, asserted below
                failures.append(e)
                if isinstance(e, ServiceUnavailable) and stopped.is_set():
                    return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert answered.wait(30)  # the reader runs when the database goes
        postgres_cluster.stop()
        stopped.set()
        thread.join(60)
        assert not thread.is_alive()
        assert failures and all(isinstance(e, ServiceUnavailable) for e in failures), failures
        for call in (lambda: store.current("grids"), lambda: store.read("grids", 1),
                     lambda: store.write("grids", grids(1), author="y")):
            with pytest.raises(ServiceUnavailable) as caught:
                call()
            assert caught.value.status == 503 and caught.value.retry_after > 0
            assert "127.0.0.1" in caught.value.message and "cannot be reached" in caught.value.message
            assert not isinstance(caught.value.__cause__, ServiceUnavailable)
        late = postgis(timeout=2)  # an instance starting while the database is down starts all the same
        with pytest.raises(ServiceUnavailable):
            late.versions("grids")
    finally:
        stopped.set()
        postgres_cluster.start()
    # the same store, not rebuilt, answers again at once
    assert store.current("grids") == v1
    assert late.current("grids") == v1
    assert store.query("grids", bbox=(121, 29, 122, 30)).number_matched == 3
    assert store.write("grids", grids(2), author="y", if_version=1).version == 2


def test_fifty_writers_on_two_instances_one_wins(postgis):
    a, b = postgis(timeout=60), postgis(timeout=60)  # 50 writers, 20 connections: some wait their turn
    a.write("grids", grids(1), author="setup")
    assert b.current("grids").version == 1
    outcomes = _race([a, b], 50)
    won = [o for o in outcomes if isinstance(o, Version)]
    lost = [o for o in outcomes if isinstance(o, PreconditionFailed)]
    assert (len(won), len(lost)) == (1, 49), [o for o in outcomes if not isinstance(o, PreconditionFailed)]
    for instance in (a, b):
        assert [v.version for v in instance.versions("grids")] == [1, 2]
        assert instance.current("grids") == won[0]
    assert rows_stored(a) == 3


def test_an_instance_sees_what_the_other_wrote_within_a_second(postgis):
    a, b = postgis(), postgis()
    a.write("grids", grids(2), author="a")
    assert heard_within(HEARD_WITHIN_S, lambda: (v := b.current("grids")) and v.version == 1)
    assert b.read("grids")["grid_id"].tolist() == ["a0", "a1"]  # b caches version 1's frame
    v2 = a.write_changes("grids", upserts=grids(1, tag="n"), author="a")
    # b hears of it by NOTIFY, a moment after the commit: not necessarily by its very next call
    heard_within(HEARD_WITHIN_S, lambda: b.current("grids") == v2)
    assert b.read("grids")["grid_id"].tolist() == ["a0", "a1", "n0"]
    assert keys(b.query("grids")) == ["a0", "a1", "n0"]


def test_a_full_database_disk_is_insufficient_storage_and_stores_nothing(postgis, monkeypatch):
    store = postgis()
    v1 = store.write("grids", grids(2), author="x")
    real = PostGISStore._apply

    def apply(self, conn, *args):
        real(self, conn, *args)  # the rows are written: the disk fills before the commit
        raise psycopg.errors.DiskFull("could not extend file: No space left on device")

    monkeypatch.setattr(PostGISStore, "_apply", apply)
    with pytest.raises(InsufficientStorage, match="disk is full") as caught:
        store.write("grids", grids(5, tag="new"), author="y")
    assert caught.value.status == 507
    monkeypatch.undo()
    assert postgis().versions("grids") == [v1]
    assert rows_stored(store) == 2
    assert store.write("grids", grids(3), author="z").version == 2


def _use_in_a_child(store: PostGISStore, out) -> None:
    out.put((store.current("grids").version, len(store.read("grids"))))
    store.close()


def test_a_forked_process_has_its_own_connections(postgis):
    store = postgis()
    store.write("grids", grids(2), author="x")  # the parent's pool has connections
    ctx = multiprocessing.get_context("fork")  # as gunicorn forks its workers
    out = ctx.Queue()
    child = ctx.Process(target=_use_in_a_child, args=(store, out))
    child.start()
    assert out.get(timeout=60) == (1, 2)
    child.join(60)
    assert child.exitcode == 0
    assert store.write("grids", grids(3), author="y", if_version=1).version == 2  # the parent's still work
    assert len(store.read("grids")) == 3


def test_a_database_without_postgis_gets_it_or_says_what_to_do(postgres_cluster):
    name = f"plain_{id(postgres_cluster)}"
    with postgres_cluster.connect("postgres") as db:
        db.execute(f"CREATE ROLE {name} LOGIN")
        db.execute(f"CREATE DATABASE {name} OWNER {name} TEMPLATE template0")  # no PostGIS in it
    try:
        owner_url = postgres_cluster.url(name).replace("postgres@", f"{name}@")
        with pytest.raises(DamagedStore, match="CREATE EXTENSION postgis") as caught:
            PostGISStore(owner_url)  # may not add it: PostGIS is not a trusted extension
        assert name in caught.value.message
        store = PostGISStore(postgres_cluster.url(name))  # a superuser adds it
        try:
            store.write("grids", grids(1), author="x")
            store.check()
            assert keys(store.query("grids", bbox=(121, 29, 122, 30))) == ["a0"]
        finally:
            store.close()
    finally:
        with postgres_cluster.connect("postgres") as db:
            db.execute(f"DROP DATABASE {name} WITH (FORCE)")
            db.execute(f"DROP ROLE {name}")


def test_check_names_a_table_that_is_not_the_stores(postgis, postgis_url):
    with psycopg.connect(postgis_url, autocommit=True) as db:
        db.execute("CREATE TABLE versions (id serial, layer text)")  # another program's table
    with pytest.raises(DamagedStore, match="versions"):
        postgis().check()


def test_a_version_stored_meanwhile_by_another_instance_is_not_mixed_in(postgis, monkeypatch):
    a, b = postgis(), postgis()
    a.write("grids", grids(3), author="a")
    real, seen = PostGISStore.versions, []

    def versions(self, layer):
        found = real(self, layer)
        if self is b and not seen:  # right after b learnt which version is current, a stores the next
            seen.append(found[-1].version)
            a.write("grids", grids(len(found) % 2 + 1, tag=f"z{len(found)}_"), author="a")
        return found

    def first_key(n: int) -> str:
        return "a0" if n == 1 else f"z{n - 1}_0"

    monkeypatch.setattr(PostGISStore, "versions", versions)
    calls = {
        "read": lambda store, n: store.read("grids", n)["grid_id"].tolist(),
        "query": lambda store, n: store.query("grids", n).features,
        "bbox": lambda store, n: store.query("grids", n, bbox=(121, 29, 122, 30), limit=2).features,
        "get": lambda store, n: store.get("grids", first_key(n or a.current("grids").version), n),
        "extent": lambda store, n: store.extent("grids", n),
    }
    for name, call in calls.items():
        # b has heard of a's last write (by NOTIFY, a moment after it), so what b is told next is a's current
        heard_within(HEARD_WITHIN_S, lambda: real(b, "grids")[-1] == real(a, "grids")[-1])
        seen.clear()
        answer = call(b, None)  # the current version, as b was told
        assert answer == call(a, seen[0]), name  # that version's features, none of the next one's


# --- changes between versions -----------------------------------------------------------

def test_changes_between_versions_by_key(store):
    v1 = store.write("grids", grids(3), author="x")  # a0 a1 a2
    changed = grids(3, population=[100, 7, 300]).iloc[[1]]
    v2 = store.write_changes("grids", upserts=pd.concat([changed, grids(4).iloc[[3]]]), removed=["a2"], author="x")
    v3 = store.write_changes("grids", upserts=pd.concat([grids(3).iloc[[1]], grids(5).iloc[[4]]]),  # a1 as at v1
                             removed=["a3"], author="x")
    c = store.changes("grids", v1.version, v2.version)
    assert (c.added, c.changed, c.removed) == ({"a3"}, {"a1"}, {"a2"})
    c = store.changes("grids", v1.version, v3.version)  # a1 changed and back: the same; a3 came and went
    assert (c.added, c.changed, c.removed) == ({"a4"}, set(), {"a2"})
    c = store.changes("grids", v2.version, v3.version)
    assert (c.added, c.changed, c.removed) == ({"a4"}, {"a1"}, {"a3"})
    assert store.changes("grids", 0, v1.version).added == {"a0", "a1", "a2"}


def test_a_features_history_names_the_versions_that_changed_it(store):
    store.write("grids", grids(3), author="x")  # 1: a0 added
    store.write_changes("grids", upserts=grids(1, tag="b"), author="x")  # 2: a0 untouched
    changed = grids(1)
    changed["population"] = [7]
    store.write_changes("grids", upserts=changed, author="y", message="a0 counted")  # 3: a0 changed
    store.write_changes("grids", removed=["a0"], author="x")  # 4: removed
    store.write_changes("grids", upserts=grids(1), author="x")  # 5: back again
    history = store.history("grids", "a0")
    assert [(v.version, change) for v, change in history] == [(1, "added"), (3, "changed"), (4, "removed"),
                                                              (5, "added")]
    assert (history[1][0].author, history[1][0].message) == ("y", "a0 counted")
    assert store.history("grids", "b0")[0][0].version == 2
    assert store.history("grids", "nobody") == []


def test_changes_need_two_versions_in_order(store):
    v1 = store.write("grids", grids(2), author="x")
    with pytest.raises(BadRequest):
        store.changes("grids", v1.version, v1.version)
    with pytest.raises(NotFound):
        store.changes("grids", v1.version, 9)
