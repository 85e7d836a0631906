"""FileStore: versioned RFC 7946 files, a manifest, atomic writes, writers in several processes."""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely import MultiPolygon, Polygon

from geodata.errors import BadRequest, DamagedStore, InsufficientStorage, NotFound, PreconditionFailed
from geodata.store import FileStore, Version

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


def layer_dir(store: FileStore, layer: str = "grids") -> Path:
    return store.root / "layers" / layer


def temp_files(store: FileStore, layer: str = "grids") -> list[str]:
    return sorted(p.name for p in layer_dir(store, layer).glob(".*.tmp"))


@pytest.fixture
def store(tmp_path) -> FileStore:
    return FileStore(tmp_path / "data")


# --- an empty store -----------------------------------------------------------

def test_empty_store_has_no_versions(store):
    assert store.versions("grids") == []
    assert store.current("grids") is None


@pytest.mark.parametrize("call", ["read", "read_geojson", "version"])
def test_reading_an_empty_layer_is_not_found(store, call):
    with pytest.raises(NotFound) as caught:
        getattr(store, call)("grids")
    assert caught.value.status == 404


@pytest.mark.parametrize("call", ["versions", "current", "read", "read_geojson"])
def test_unknown_layer_is_not_found(store, call):
    with pytest.raises(NotFound) as caught:
        getattr(store, call)("roads")
    assert caught.value.status == 404
    with pytest.raises(NotFound):
        store.write("roads", grids(), author="x")


def test_unknown_version_is_not_found(store):
    store.write("grids", grids(), author="x")
    with pytest.raises(NotFound):
        store.read("grids", 2)
    with pytest.raises(NotFound):
        store.read_geojson("grids", 0)


# --- writing and reading versions ---------------------------------------------

def test_first_write_is_version_1(store):
    v = store.write("grids", grids(3), author="王伟", message="首次导入")
    assert isinstance(v, Version)
    assert (v.layer, v.version, v.author, v.message, v.features) == ("grids", 1, "王伟", "首次导入", 3)
    assert v.sha256 == hashlib.sha256(store.read_geojson("grids")).hexdigest()
    assert store.current("grids") == v
    assert store.versions("grids") == [v]
    assert store.version("grids", 1) == v
    assert (layer_dir(store) / "v000001.geojson").is_file()


def test_versions_accumulate_and_old_ones_stay_readable(store):
    first, second = grids(2, tag="a"), grids(3, tag="b")
    v1 = store.write("grids", first, author="a", message="one")
    v2 = store.write("grids", second, author="b", message="two")
    assert v2.version == 2
    assert [v.version for v in store.versions("grids")] == [1, 2]
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
    assert v2.sha256 == hashlib.sha256(store.read_geojson("grids", 2)).hexdigest()


def test_stored_file_is_rfc7946(store):
    store.write("grids", grids(1, tag="c").set_geometry([cw_square(0)], crs="EPSG:4326"), author="x")
    doc = json.loads(store.read_geojson("grids"))
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc
    (feature,) = doc["features"]
    assert feature["type"] == "Feature"
    assert feature["geometry"]["type"] == "Polygon"
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
    v = store.write("grids", grids(0), author="x", message="cleared")
    assert v.features == 0
    assert json.loads(store.read_geojson("grids"))["features"] == []
    back = store.read("grids")
    assert len(back) == 0
    assert "grid_id" in back.columns and str(back["population"].dtype) == "Int64"


def test_chinese_text_round_trips(store):
    gdf = grids(1, name=["鼓楼·天一阁网格（一）"], district=["鄞州区"], street=["钟公庙街道"],
                community=["金家漕社区"])
    store.write("grids", gdf, author="张三", message="导入网格")
    back = store.read("grids")
    assert back.loc[0, "name"] == "鼓楼·天一阁网格（一）"
    assert back.loc[0, "district"] == "鄞州区"
    assert back.loc[0, "community"] == "金家漕社区"
    assert "鼓楼·天一阁网格（一）".encode() in store.read_geojson("grids")  # readable, not \u-escaped
    assert store.current("grids").author == "张三"
    assert FileStore(store.root).current("grids").message == "导入网格"


def test_extra_properties_come_back_untouched(store):
    gdf = grids(2, survey=[{"done": True, "by": ["李四"], "score": 4.5}, None],
                updated=["2024-01-01", "2023-12-31"], note=["甲", None])
    store.write("grids", gdf, author="x")
    back = store.read("grids")
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


def test_crs84_and_missing_crs_are_accepted(store):
    store.write("grids", grids(1).set_crs("OGC:CRS84", allow_override=True), author="x")
    store.write("grids", grids(1).set_crs(None, allow_override=True), author="x")
    assert [v.version for v in store.versions("grids")] == [1, 2]


def test_projected_crs_is_refused(store):
    with pytest.raises(BadRequest) as caught:
        store.write("grids", grids().to_crs(32651), author="x")
    assert caught.value.status == 400
    assert store.versions("grids") == []
    assert not list(layer_dir(store).glob("v*.geojson"))


# --- several readers and writers ------------------------------------------------

def test_another_instance_sees_new_writes(tmp_path):
    a, b = FileStore(tmp_path), FileStore(tmp_path)
    assert b.versions("grids") == []
    a.write("grids", grids(2), author="a")
    assert b.current("grids").version == 1  # b's empty view is not cached for ever
    assert b.read("grids")["grid_id"].tolist() == ["a0", "a1"]
    a.write("grids", grids(4, tag="z"), author="a")
    assert [v.version for v in b.versions("grids")] == [1, 2]  # b's cached manifest is refreshed
    assert b.read("grids")["grid_id"].tolist() == ["z0", "z1", "z2", "z3"]
    b.write("grids", grids(1), author="b")
    assert a.current("grids").version == 3
    assert a.current("grids").author == "b"


def test_if_version_0_writes_to_an_empty_layer(store):
    assert store.write("grids", grids(), author="x", if_version=0).version == 1
    assert store.write("grids", grids(), author="x", if_version=1).version == 2


@pytest.mark.parametrize("stale", [0, 2, 5])
def test_stale_if_version_is_refused_and_stores_nothing(store, stale):
    before = store.write("grids", grids(2), author="x")
    with pytest.raises(PreconditionFailed) as caught:
        store.write("grids", grids(5, tag="new"), author="y", if_version=stale)
    assert caught.value.status == 412
    assert store.versions("grids") == [before]
    assert FileStore(store.root).versions("grids") == [before]
    assert sorted(p.name for p in layer_dir(store).glob("v*.geojson")) == ["v000001.geojson"]
    assert store.read("grids")["grid_id"].tolist() == ["a0", "a1"]


def test_if_version_lets_one_of_many_threads_win(store):
    store.write("grids", grids(1), author="setup")
    n = 20
    barrier = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def attempt(i: int) -> None:
        expected = store.current("grids").version
        barrier.wait()
        try:
            outcomes[i] = store.write("grids", grids(2, tag=f"t{i}_"), author=f"t{i}", if_version=expected)
        except PreconditionFailed as e:
            outcomes[i] = e
        except BaseException as e:  # noqa: BLE001 - reported by the asserts below
            outcomes[i] = e

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)

    won = [o for o in outcomes if isinstance(o, Version)]
    lost = [o for o in outcomes if isinstance(o, PreconditionFailed)]
    assert len(won) == 1, outcomes
    assert len(lost) == n - 1, outcomes
    assert won[0].version == 2
    assert [v.version for v in store.versions("grids")] == [1, 2]
    assert store.current("grids").author == won[0].author


def _write_versions(data_dir: str, tag: str, features: int, count: int, start) -> None:
    """Run in a spawned process: its own FileStore, ``count`` unconditional writes."""
    store = FileStore(data_dir)
    frames = [grids(features, tag=f"{tag}{i}_") for i in range(count)]
    start.wait(30)  # both writers are up: their writes overlap
    for i in range(count):
        store.write("grids", frames[i], author=tag, message=f"{tag} {i}")


def test_two_processes_write_without_losing_versions(tmp_path):
    per_writer = 5
    writers = {"p": 2, "q": 3}  # tag -> features each of its versions has
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(len(writers))
    procs = [ctx.Process(target=_write_versions, args=(str(tmp_path), tag, features, per_writer, start))
             for tag, features in writers.items()]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()

    store = FileStore(tmp_path)
    versions = store.versions("grids")
    assert [v.version for v in versions] == list(range(1, 2 * per_writer + 1))
    by_author: dict[str, list[int]] = {}
    for v in versions:
        data = store.read_geojson("grids", v.version)
        assert hashlib.sha256(data).hexdigest() == v.sha256
        frame = store.read("grids", v.version)
        assert len(frame) == v.features == writers[v.author]
        assert all(gid.startswith(v.author) for gid in frame["grid_id"])
        by_author.setdefault(v.author, []).append(v.version)
    assert {a: len(vs) for a, vs in by_author.items()} == {"p": per_writer, "q": per_writer}
    # each writer's own versions were stored in the order it wrote them
    for tag in writers:
        messages = [v.message for v in versions if v.author == tag]
        assert messages == [f"{tag} {i}" for i in range(per_writer)]
    assert not temp_files(store)


# --- all or nothing -------------------------------------------------------------

class Boom(OSError):
    pass


def _fail_replace_of(monkeypatch, predicate) -> None:
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if predicate(Path(dst).name):
            assert Path(src).is_file()  # the temp file was written when the rename fails
            raise Boom("disk gone")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr("geodata.store.os.replace", replace)


def _fail_nth_file_fsync(monkeypatch, n: int, error: Exception | None = None) -> None:
    """Make the ``n``th fsync of a regular file raise ``error`` (directory fsyncs pass): 1 = data, 2 = manifest."""
    real = os.fsync
    seen = 0

    def fsync(fd):
        nonlocal seen
        if stat.S_ISREG(os.fstat(fd).st_mode):
            seen += 1
            if seen == n:
                raise error or Boom("disk gone")
        return real(fd)

    monkeypatch.setattr("geodata.store.os.fsync", fsync)


FAILURES = {
    "replace-data": lambda mp: _fail_replace_of(mp, lambda name: name.endswith(".geojson")),
    "replace-manifest": lambda mp: _fail_replace_of(mp, lambda name: name == "manifest.json"),
    "fsync-data": lambda mp: _fail_nth_file_fsync(mp, 1),
    "fsync-manifest": lambda mp: _fail_nth_file_fsync(mp, 2),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failed_write_leaves_the_layer_as_it_was(store, monkeypatch, failure):
    old = grids(2, tag="old")
    v1 = store.write("grids", old, author="x")
    old_bytes = store.read_geojson("grids")

    with monkeypatch.context() as mp:
        FAILURES[failure](mp)
        with pytest.raises(Boom):
            store.write("grids", grids(4, tag="new"), author="y")

    for view in (store, FileStore(store.root)):  # this process's view and a fresh one
        assert view.versions("grids") == [v1]
        assert view.current("grids") == v1
        assert view.read_geojson("grids") == old_bytes
        assert view.read("grids")["grid_id"].tolist() == ["old0", "old1"]
    assert hashlib.sha256(old_bytes).hexdigest() == v1.sha256
    assert temp_files(store) == []

    v2 = store.write("grids", grids(3, tag="next"), author="z")
    assert v2.version == 2
    assert [v.version for v in store.versions("grids")] == [1, 2]
    assert store.read("grids")["grid_id"].tolist() == ["next0", "next1", "next2"]
    assert hashlib.sha256(store.read_geojson("grids", 2)).hexdigest() == v2.sha256
    assert store.read_geojson("grids", 1) == old_bytes
    assert temp_files(store) == []


# --- faults: a full disk, a damaged record ------------------------------------------------

@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
@pytest.mark.parametrize("nth, which", [(1, "data"), (2, "manifest")])
def test_a_full_disk_is_insufficient_storage_and_stores_nothing(store, monkeypatch, nth, which, code):
    v1 = store.write("grids", grids(2, tag="old"), author="x")
    old_bytes = store.read_geojson("grids")
    with monkeypatch.context() as mp:
        _fail_nth_file_fsync(mp, nth, OSError(code, os.strerror(code)))
        with pytest.raises(InsufficientStorage, match="disk is full") as caught:
            store.write("grids", grids(4, tag="new"), author="y")
    assert caught.value.status == 507
    for view in (store, FileStore(store.root)):
        assert view.versions("grids") == [v1]
        assert view.read_geojson("grids") == old_bytes
    assert temp_files(store) == []
    assert sorted(p.name for p in layer_dir(store).iterdir()) == ["manifest.json", "v000001.geojson"]


def _three_versions(store) -> list[Version]:
    return [store.write("grids", grids(n, tag=f"v{n}"), author=f"author{n}", message=f"message {n}")
            for n in (1, 2, 3)]


DAMAGES = {
    "truncated": lambda raw: raw[: len(raw) // 2],
    "empty": lambda raw: b"",
    "not json": lambda raw: b"\x00\xff garbage",
    "not a manifest": lambda raw: b'{"versions": [{"version": "one"}]}',
    "a list": lambda raw: b"[]",
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_record_is_named(store, damage):
    _three_versions(store)
    manifest = layer_dir(store) / "manifest.json"
    manifest.write_bytes(damage(manifest.read_bytes()))
    fresh = FileStore(store.root)
    with pytest.raises(DamagedStore, match="manifest.json") as caught:
        fresh.versions("grids")
    assert str(manifest) in caught.value.message and "python -m server repair" in caught.value.message
    with pytest.raises(DamagedStore, match=str(manifest)):
        fresh.check()


def test_a_listed_version_whose_file_is_missing_fails_the_check(store):
    _three_versions(store)
    (layer_dir(store) / "v000002.geojson").unlink()
    with pytest.raises(DamagedStore, match="v000002.geojson"):
        FileStore(store.root).check()


def test_repair_keeps_every_readable_entry_and_recovers_the_rest(store):
    written = _three_versions(store)
    manifest = layer_dir(store) / "manifest.json"
    raw = manifest.read_bytes()
    manifest.write_bytes(raw[: raw.index(b'"version": 3')])  # entries 1 and 2 whole, 3 cut off

    fresh = FileStore(store.root)
    report = fresh.repair()
    assert len(report) == 1 and report[0].startswith("grids: rebuilt") and "1 without" in report[0]
    fresh.check()
    versions = fresh.versions("grids")
    assert versions[:2] == written[:2]  # time, author and message kept
    assert (versions[2].version, versions[2].features, versions[2].sha256) == (3, 3, written[2].sha256)
    assert versions[2].author is None and "repair" in versions[2].message
    assert fresh.read("grids")["grid_id"].tolist() == ["v30", "v31", "v32"]
    assert [p.name.split("-")[0] for p in layer_dir(store).glob("manifest.json.damaged-*")] == ["manifest.json.damaged"]
    assert fresh.write("grids", grids(1), author="next").version == 4  # and writing goes on
    assert fresh.repair() == []  # nothing left to repair


def test_repair_of_an_unreadable_record_recovers_every_version_file(store):
    written = _three_versions(store)
    (layer_dir(store) / "manifest.json").write_bytes(b"\x00garbage")
    fresh = FileStore(store.root)
    fresh.repair()
    assert [(v.version, v.features, v.sha256) for v in fresh.versions("grids")] == [
        (v.version, v.features, v.sha256) for v in written]


def test_repair_drops_a_listed_version_whose_file_is_gone_and_an_unreadable_file(store):
    _three_versions(store)
    (layer_dir(store) / "v000002.geojson").unlink()
    (layer_dir(store) / "v000003.geojson").write_bytes(b'{"type": "FeatureCollection", "feat')
    (layer_dir(store) / "manifest.json").write_bytes(b"")
    report = FileStore(store.root).repair()
    assert "left out unreadable v000003.geojson" in report[0]
    assert [v.version for v in FileStore(store.root).versions("grids")] == [1]
