"""Migration: a data directory of the old FileStore (one GeoJSON file a version) into the embedded store."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal
from shapely import Point

from geodata.errors import DamagedStore, ImportFailed, PreconditionFailed
from geodata.schema import LAYERS
from geodata.store import FileStore, Store, migrate
from geodata.store.sqlite import SQLiteStore
from tests.factories import center_row, centers, grid_row, grids, six_grids

ROOT = Path(__file__).resolve().parents[2]


def at(day: int) -> str:
    return f"2025-03-{day:02d}T08:30:00+00:00"


def old_history(root) -> FileStore:
    """Grids: an upload, an edit, an addition with a property of its own, a restore of version 1;
    centers: two versions.  Chinese text everywhere."""
    old = FileStore(root)
    first = six_grids()
    old.write("grids", first, author="王芳", message="首次上传：海曙区网格", time=at(1))
    edited = first.copy()
    edited.loc[0, "population"] = 4321
    edited.loc[1, "name"] = "白云二号网格（调整）"
    old.write("grids", edited.iloc[:5], author="李强", message="合并网格 g21", time=at(2))
    extra = grids([grid_row("g30", name="新增网格", 备注="新建小区")])
    old.write("grids", gpd.GeoDataFrame(pd.concat([edited.iloc[:5], extra], ignore_index=True), crs="EPSG:4326"),
              author="李强", message="新增 g30", time=at(3))
    # a restore wrote version 1's file again (today's read would add the newer schema's `city`)
    old.write("grids", first, author="王芳", message="恢复到版本 1", time=at(4))
    old.write("centers", centers([center_row("c1", "street"), center_row("c2", "community")]),
              author=None, message="党群服务中心", time=at(5))
    old.write("centers", centers([center_row("c1", "street", name="月湖街道党群服务中心")],
                                 [Point(121.52, 29.81)]), author="admin", message="", time=at(6))
    return old


def by_key(gdf: gpd.GeoDataFrame, layer: str) -> gpd.GeoDataFrame:
    return gdf.sort_values(LAYERS[layer].key, ignore_index=True)


def records(store: Store, layer: str) -> list[tuple]:
    return [(v.version, v.time, v.author, v.message, v.features) for v in store.versions(layer)]


@pytest.fixture
def old(tmp_path):
    return old_history(tmp_path)


@pytest.fixture
def target(tmp_path):
    store = SQLiteStore(tmp_path)  # the same data directory, as at a first start
    yield store
    store.close()


def test_every_version_comes_over_with_its_number_time_author_message_and_features(tmp_path, old, target):
    expected = {layer: records(old, layer) for layer in ("grids", "centers")}
    frames = {(layer, v.version): by_key(old.read(layer, v.version), layer)
              for layer in ("grids", "centers") for v in old.versions(layer)}

    report = migrate.migrate(tmp_path, target)

    assert report[0].startswith("grids: imported 4 versions, 1 to 4")
    assert report[1].startswith("centers: imported 2 versions, 1 to 2")
    for layer in ("grids", "centers"):
        assert records(target, layer) == expected[layer]
    for (layer, number), frame in frames.items():
        got = target.read(layer, number)
        assert sorted(got.columns) == sorted(frame.columns)
        assert_geodataframe_equal(got[list(frame.columns)], frame)
        assert target.query(layer, number).number_matched == len(frame) == target.count(layer, number)
    assert target.read("grids", 3).loc[lambda f: f.grid_id == "g30", "备注"].item() == "新建小区"


def test_a_restore_stays_a_version_whose_content_hash_is_the_restored_ones(tmp_path, old, target):
    assert old.version("grids", 4).sha256 == old.version("grids", 1).sha256
    migrate.migrate(tmp_path, target)
    v1, v2, v3, v4 = target.versions("grids")
    assert v4.sha256 == v1.sha256 and len({v1.sha256, v2.sha256, v3.sha256}) == 3
    assert v4.message == "恢复到版本 1"


def test_the_old_layers_are_kept_aside_and_a_second_run_imports_nothing(tmp_path, old, target):
    migrate.migrate(tmp_path, target)
    assert not (tmp_path / "layers").exists()
    kept = tmp_path / "layers.migrated" / "grids"
    assert sorted(p.name for p in kept.iterdir()) == ["manifest.json", *(f"v00000{i}.geojson" for i in range(1, 5))]
    before = {layer: target.versions(layer) for layer in ("grids", "centers")}

    assert not migrate.pending(tmp_path)
    assert migrate.if_needed(tmp_path, target) == []
    assert migrate.migrate(tmp_path, target) == [f"{tmp_path} holds no layers of the old store: nothing to import"]
    assert {layer: target.versions(layer) for layer in ("grids", "centers")} == before
    assert not (tmp_path / "layers").exists()  # nothing made it again


def test_a_layer_the_store_already_has_is_skipped_and_the_others_imported(tmp_path, old, target):
    mine = target.write("grids", six_grids().iloc[:2], author="new", message="already here")

    report = migrate.migrate(tmp_path, target)

    assert report[0] == (f"grids: skipped: {tmp_path} already has 1 version of it "
                         "(the 4 old one(s) stay in the old record)")
    assert target.versions("grids") == [mine]
    assert [v.version for v in target.versions("centers")] == [1, 2]
    assert (tmp_path / "layers.migrated" / "grids" / "v000004.geojson").is_file()


@pytest.mark.parametrize("damage", ["truncated", "missing file", "lost record"])
def test_a_damaged_old_record_is_refused_naming_repair_and_nothing_is_imported(tmp_path, old, target, damage):
    layer_dir = tmp_path / "layers" / "centers"  # the second layer: grids, before it, is whole
    manifest = layer_dir / "manifest.json"
    if damage == "truncated":
        manifest.write_bytes(manifest.read_bytes()[:-40])
    elif damage == "missing file":
        (layer_dir / "v000001.geojson").unlink()
    else:
        manifest.unlink()

    with pytest.raises(DamagedStore) as caught:
        migrate.migrate(tmp_path, target)

    assert "nothing was imported" in caught.value.message and "python -m server repair" in caught.value.message
    assert "centers" in caught.value.message
    assert target.versions("grids") == [] and target.versions("centers") == []
    assert manifest.parent.is_dir() and not (tmp_path / "layers.migrated").exists()

    assert [line.split(":")[0] for line in FileStore(tmp_path).repair()] == ["centers"]  # then repair, then migrate
    migrate.migrate(tmp_path, target)
    assert len(target.versions("grids")) == 4 and target.versions("centers")


def test_an_import_that_stops_halfway_stores_nothing_of_that_layer_and_says_so(tmp_path, old, target):
    (tmp_path / "layers" / "grids" / "v000003.geojson").write_bytes(b'{"type": "FeatureCollection", "feat')

    with pytest.raises(ImportFailed) as caught:
        migrate.migrate(tmp_path, target)

    message = caught.value.message
    assert "layer 'grids'" in message and "nothing of it was stored" in message
    assert "python -m server migrate" in message
    assert target.versions("grids") == []  # not versions 1 and 2 alone: all or nothing
    assert (tmp_path / "layers" / "grids" / "manifest.json").is_file()  # the old record stays where it was


def test_gaps_a_repair_left_keep_their_numbers(tmp_path, old, target):
    (tmp_path / "layers" / "grids" / "v000002.geojson").unlink()
    FileStore(tmp_path).repair()  # drops version 2, whose file is gone
    assert [v.version for v in FileStore(tmp_path).versions("grids")] == [1, 3, 4]
    frame = by_key(FileStore(tmp_path).read("grids", 3), "grids")

    report = migrate.migrate(tmp_path, target)

    assert report[0].startswith("grids: imported 3 versions, 1 to 4") and "anew" not in report[0]
    assert [v.version for v in target.versions("grids")] == [1, 3, 4]
    assert_geodataframe_equal(target.read("grids", 3)[list(frame.columns)], frame)
    assert target.write("grids", six_grids(), author="next", if_version=4).version == 5


class OneByOne(SQLiteStore):
    """An engine without its own import: the interface's default, version after version."""

    import_history = Store.import_history


def test_an_engine_that_numbers_anew_reports_the_mapping(tmp_path, old):
    (tmp_path / "layers" / "grids" / "v000002.geojson").unlink()
    FileStore(tmp_path).repair()
    target = OneByOne(tmp_path / "db")

    report = migrate.migrate(tmp_path, target)

    assert report[0].endswith("numbered anew: 3 → 2, 4 → 3")
    assert [v.message for v in target.versions("grids")] == ["首次上传：海曙区网格", "新增 g30", "恢复到版本 1"]
    assert target.version("grids", 3).sha256 == target.version("grids", 1).sha256


def test_a_start_without_old_layers_does_nothing(tmp_path, target):
    assert migrate.if_needed(tmp_path, target) == []
    assert not (tmp_path / "layers").exists()


def _first_start(root: str) -> list[str]:
    store = SQLiteStore(root)
    try:
        return migrate.if_needed(root, store)
    finally:
        store.close()


def test_workers_starting_together_import_once(tmp_path, old):
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        reports = pool.map(_first_start, [str(tmp_path)] * 3)

    imported = [r for r in reports if any("imported" in line for line in r)]
    assert len(imported) == 1, reports
    assert [v.version for v in SQLiteStore(tmp_path).versions("grids")] == [1, 2, 3, 4]
    assert json.loads((tmp_path / "layers.migrated" / "grids" / "manifest.json").read_bytes())["versions"]


def test_a_history_goes_only_into_an_empty_layer(tmp_path, old, target):
    mine = target.write("grids", six_grids(), author="new")
    with pytest.raises(PreconditionFailed):
        target.import_history("grids", [(v, old.read("grids", v.version)) for v in old.versions("grids")])
    assert target.versions("grids") == [mine]


# Imports the old data directory given, killing itself (SIGKILL) at the point given: after the Nth
# version it stores (``apply:N``, before that layer's commit), or when every layer is stored but the
# old layers are not yet set aside (``aside``).
MIGRATOR = """
import os, signal, sys
from geodata.store import migrate
from geodata.store.sqlite import SQLiteStore
point = sys.argv[2]
calls = []
def kill_after(real):
    def wrapped(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if point == f"apply:{len(calls)}":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped
def kill_before(real):
    def wrapped(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    return wrapped
SQLiteStore._apply = kill_after(SQLiteStore._apply)
if point == "aside":
    migrate._set_aside = kill_before(migrate._set_aside)
migrate.migrate(sys.argv[1], SQLiteStore(sys.argv[1]))
"""


@pytest.mark.parametrize("point", ["apply:1", "apply:3", "apply:4", "apply:5", "aside"])
def test_a_migration_killed_at_any_point_leaves_whole_layers_and_the_next_run_finishes_it(tmp_path, point):
    def variant(k: int) -> gpd.GeoDataFrame:
        return grids([grid_row(f"g{i}", name=f"{i}号网格（第{k}版）") for i in range(6)])

    old = FileStore(tmp_path)
    for n in range(4):  # grids: versions 1-4 (the 1st to 4th stored), centers: 1 (the 5th)
        old.write("grids", variant(n % 3), author="王芳", message=f"第 {n + 1} 版", time=at(n + 1))
    old.write("centers", centers([center_row("c1", "street")]), author="a", message="中心", time=at(9))
    expected = {layer: records(old, layer) for layer in ("grids", "centers")}

    killed = subprocess.run([sys.executable, "-c", MIGRATOR, str(tmp_path), point], cwd=ROOT, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert killed.returncode == -signal.SIGKILL

    target = SQLiteStore(tmp_path)
    target.check()
    whole = {layer: records(target, layer) for layer in ("grids", "centers")}
    assert whole["grids"] == (expected["grids"] if point in ("apply:5", "aside") else [])  # all, or nothing
    assert whole["centers"] == (expected["centers"] if point == "aside" else [])
    assert (tmp_path / "layers").is_dir()  # not set aside before every layer is in

    report = migrate.migrate(tmp_path, target)  # the next start finishes it
    assert any(line.startswith("grids: skipped") for line in report) == (point in ("apply:5", "aside"))
    for layer in ("grids", "centers"):
        assert records(target, layer) == expected[layer]
    assert target.read("grids", 4)["name"].tolist() == variant(0)["name"].tolist()
    assert (tmp_path / "layers.migrated").is_dir() and not (tmp_path / "layers").exists()
    target.close()
