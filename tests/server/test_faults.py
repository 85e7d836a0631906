"""Faults answer clearly: a full disk is a 507 with nothing stored; a damaged database stops the start."""

import errno
import io
import logging
import os
import stat

import pytest

from geodata.errors import DamagedStore
from server import create_app
from server.audit import read as read_audit
from tests.factories import six_grids


def upload(client, headers, grids=None):
    grids = six_grids() if grids is None else grids
    data = {"file": (io.BytesIO(grids.to_json(drop_id=True).encode()), "grids.geojson")}
    return client.post("/api/uploads/grids", data=data, headers=headers, content_type="multipart/form-data")


def upload_on_a_full_disk(where, *args, **kwargs):
    """The upload job, run where it runs (a job process), on a disk that fills while the version is written:
    the database may not grow by a single page (SQLite then fails as on a full disk)."""
    from geodata import jobs

    db = jobs.store_at(where)._db()
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    try:
        return jobs.upload_to(where, *args, **kwargs)
    finally:
        db.execute("PRAGMA max_page_count = 4294967294")


def upload_with_no_space_to_unpack(*args, **kwargs):
    """The upload job, failing as reading an archive into a temporary directory fails on a full disk."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_answers_507_and_stores_nothing(client, editor, store, data_dir, monkeypatch):
    assert upload(client, editor).status_code == 201
    before = store.read_geojson("grids")
    with monkeypatch.context() as mp:
        mp.setattr("server.uploads.upload_to", upload_on_a_full_disk)
        resp = upload(client, editor, six_grids().assign(population=7))  # every feature changes
    assert resp.status_code == 507
    error = resp.get_json()["error"]
    assert error["code"] == "insufficient_storage" and "磁盘已满" in error["message"]  # Chinese by default
    assert store.current("grids").version == 1 and store.read_geojson("grids") == before
    assert read_audit(data_dir)[-1]["outcome"] == "failed 507"
    assert upload(client, editor).status_code == 201  # space again: the next upload is version 2


def damage(database, keep: int) -> None:
    """Overwrite the database file after its first ``keep`` bytes with garbage (its connections closed)."""
    size = database.stat().st_size
    with open(database, "r+b") as f:
        f.seek(keep)
        f.write(b"\xde\xad" * ((size - keep) // 2))


@pytest.mark.parametrize("keep", [0, 4096], ids=["header", "pages"])
def test_a_damaged_database_stops_the_app_at_start(app, store, data_dir, keep):
    store.write("grids", six_grids(), author="t")
    store.close()
    damage(store.path, keep)
    with pytest.raises(DamagedStore, match=str(store.path)):
        create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})


def test_a_database_damaged_while_serving_is_logged_with_its_file(client, store, data_dir, caplog):
    store.write("grids", six_grids(), author="t")
    store.close()
    damage(store.path, 4096)
    with caplog.at_level(logging.ERROR, logger="server.errors"):
        resp = client.get("/api/collections/grids/items")
    assert resp.status_code == 500 and resp.get_json()["error"]["code"] == "damaged_store"
    assert str(data_dir) not in resp.get_data(as_text=True)  # the server's paths stay in its log
    assert str(store.path) in caplog.text


def test_a_full_disk_while_the_upload_is_read_is_a_507_too(client, editor, store, data_dir, monkeypatch):
    monkeypatch.setattr("server.uploads.upload_to", upload_with_no_space_to_unpack)
    resp = upload(client, editor)
    assert resp.status_code == 507 and resp.get_json()["error"]["code"] == "insufficient_storage"
    assert store.current("grids") is None
    assert read_audit(data_dir)[-1]["status"] == 507
