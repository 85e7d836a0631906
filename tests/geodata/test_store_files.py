"""FileStore, the first store (one GeoJSON file a version + a manifest), kept to read and migrate
older data directories: atomic writes, writers in several processes, faults, damage and repair.

What every engine must do is in ``test_store.py``; these are the tests of the files themselves."""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from geodata.errors import BadRequest, DamagedStore, InsufficientStorage, PreconditionFailed
from geodata.store import FileStore, Version
from tests.geodata.test_store import grids


def layer_dir(store: FileStore, layer: str = "grids") -> Path:
    return store.root / "layers" / layer


def temp_files(store: FileStore, layer: str = "grids") -> list[str]:
    return sorted(p.name for p in layer_dir(store, layer).glob(".*.tmp"))


@pytest.fixture
def store(tmp_path) -> FileStore:
    return FileStore(tmp_path / "data")


# --- versions are files ---------------------------------------------------------

def test_first_write_is_version_1(store):
    v = store.write("grids", grids(3), author="王伟", message="首次导入")
    assert isinstance(v, Version)
    assert (v.layer, v.version, v.author, v.message, v.features) == ("grids", 1, "王伟", "首次导入", 3)
    assert v.sha256 == hashlib.sha256(store.read_geojson("grids")).hexdigest()
    assert store.current("grids") == v
    assert store.versions("grids") == [v]
    assert store.version("grids", 1) == v
    assert (layer_dir(store) / "v000001.geojson").is_file()


def test_projected_crs_is_refused(store):
    with pytest.raises(BadRequest) as caught:
        store.write("grids", grids().to_crs(32651), author="x")
    assert caught.value.status == 400
    assert store.versions("grids") == []
    assert not list(layer_dir(store).glob("v*.geojson"))


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

    monkeypatch.setattr("geodata.store.files.os.replace", replace)


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

    monkeypatch.setattr("geodata.store.files.os.fsync", fsync)


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
