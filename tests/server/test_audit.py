"""Every write attempt is one audit line, written before the answer; a failed audit never fails a stored version."""

import io
import logging

import pytest

from server import audit
from server.audit import read as read_audit
from tests.factories import six_grids


@pytest.fixture
def users(app):
    add = app.extensions["gridmap_users"].add
    return {role: {"Authorization": "Bearer " + add(f"{role}1", role)[1]} for role in ("viewer", "editor")}


def upload(client, headers=None, **form):
    data = {"file": (io.BytesIO(six_grids().to_json(drop_id=True).encode()), "grids.geojson"), **form}
    return client.post("/api/uploads/grids", data=data, headers=headers or {}, content_type="multipart/form-data")


def outcomes(data_dir):
    return [(e["user"], e["action"], e["target"], e["outcome"], e["status"]) for e in read_audit(data_dir)]


def test_refused_writes_are_audited(app, client, users, data_dir):
    assert upload(client).status_code == 401  # no user
    assert upload(client, {"Authorization": "Bearer nonsense"}).status_code == 401  # a bad token
    assert upload(client, users["viewer"]).status_code == 403
    assert client.post("/api/collections/grids/versions/1/restore").status_code == 401
    assert client.post("/api/collections/grids/versions/1/restore", headers=users["viewer"]).status_code == 403
    assert outcomes(data_dir) == [
        (None, "upload", "grids", "refused 401", 401), (None, "upload", "grids", "refused 401", 401),
        ("viewer1", "upload", "grids", "refused 403", 403),
        (None, "restore", "grids", "refused 401", 401), ("viewer1", "restore", "grids", "refused 403", 403)]
    assert "viewer" in read_audit(data_dir)[2]["error"]  # the message the client got


def test_every_kind_of_answer_is_one_line(app, client, users, data_dir):
    editor = users["editor"]
    assert upload(client, editor, dry_run="1").status_code == 200
    assert upload(client, editor, message="first").status_code == 201
    assert upload(client, {**editor, "If-Match": '"7"'}).status_code == 412
    assert client.post("/api/collections/grids/versions/1/restore", headers=editor).status_code == 201
    assert client.post("/api/collections/grids/versions/9/restore", headers=editor).status_code == 404
    app.config["MAX_JSON_MB"] = 0  # restore takes no body: any body is over the limit
    assert client.post("/api/collections/grids/versions/1/restore", headers=editor, data="x").status_code == 413
    entries = read_audit(data_dir)
    assert [(e["action"], e["outcome"], e["status"]) for e in entries] == [
        ("upload", "dry run", 200), ("upload", "stored", 201), ("upload", "refused 412", 412),
        ("restore", "stored", 201), ("restore", "refused 404", 404), ("restore", "refused 413", 413)]
    assert entries[1]["version"] == 1 and entries[1]["filename"] == "grids.geojson" and entries[1]["features"] == 6
    assert entries[3]["version"] == 2 and entries[3]["restored"] == 1
    assert entries[2]["filename"] == "grids.geojson"  # details the view knew before it refused


def test_reads_are_not_audited(client, users, data_dir):
    client.get("/api/collections/grids/versions")
    client.get("/api/uploads/grids")  # 405
    assert read_audit(data_dir) == []


def test_a_failed_audit_write_does_not_fail_a_stored_version(client, users, store, monkeypatch, caplog):
    def disk_trouble(*args, **kwargs):
        raise OSError("audit.log: no space left on device")

    monkeypatch.setattr(audit, "append", disk_trouble)
    with caplog.at_level(logging.ERROR, logger="server.audit"):
        resp = upload(client, users["editor"])
    assert resp.status_code == 201  # stored: a retry would store it twice
    assert store.current("grids").version == 1
    assert "AUDIT LOG WRITE FAILED" in caplog.text and "no space left" in caplog.text


def test_refusals_before_the_view_are_audited_too(app, client, users, data_dir):
    editor = users["editor"]
    resp = client.post("/api/uploads/grids", data={"file": (io.BytesIO(b"<html></html>"), "grids.geojson")},
                       headers=editor, content_type="multipart/form-data")
    assert resp.status_code == 415
    app.config["MAX_CONTENT_LENGTH"] = 100  # the upload limit, hit while the form is read
    assert upload(client, editor).status_code == 413
    assert [(e["outcome"], e.get("filename")) for e in read_audit(data_dir)] == [
        ("refused 415", "grids.geojson"), ("refused 413", None)]
