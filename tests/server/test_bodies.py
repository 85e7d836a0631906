"""Request bodies within bounds: uploads may be large, other routes take GRIDMAP_MAX_JSON_MB; JSON nests 64 deep."""

import io
import json

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from tests.factories import center_row, centers, six_grids

MIB = 2**20


class UnreadStream(io.RawIOBase):
    """A request body that records whether the app read any of it."""

    def __init__(self, size: int):
        self.size, self.read_bytes = size, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b" " * n
        self.read_bytes += n
        return n


@pytest.fixture
def loaded(app, store):
    app.config["PUBLIC_WHATIF"] = True  # these tests are about bodies, whoever sends them
    store.write("grids", six_grids(), author="t")
    store.write("centers", centers([center_row("c1", "community")]), author="t")


def proposal(**properties) -> dict:
    return {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"level": "community",
            **properties}, "geometry": {"type": "Point", "coordinates": [121.505, 29.805]}}]}


def test_a_json_body_over_the_limit_is_413_before_it_is_read(app, loaded):
    stream = UnreadStream(3 * MIB)
    environ = EnvironBuilder(path="/api/whatif", method="POST", content_type="application/json").get_environ()
    environ.update({"wsgi.input": stream, "CONTENT_LENGTH": str(3 * MIB)})
    body, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("413")
    error = json.loads(b"".join(body))["error"]
    assert error["code"] == "too_large" and "GRIDMAP_MAX_JSON_MB" in error["message"]
    assert stream.read_bytes == 0


def test_a_valid_json_body_over_the_limit_is_413(client, loaded):
    body = json.dumps(proposal(note="x" * (3 * MIB)))  # one proposed centre, a large property
    resp = client.post("/api/whatif", data=body, content_type="application/json")
    assert resp.status_code == 413


def test_the_limit_is_a_setting(app, client, loaded):
    app.config["MAX_JSON_MB"] = 1
    body = json.dumps(proposal(note="x" * (MIB + 10)))
    assert client.post("/api/whatif", data=body, content_type="application/json").status_code == 413


def test_a_small_json_body_is_answered(client, loaded):
    resp = client.post("/api/whatif", json=proposal())
    assert resp.status_code == 200, resp.get_json()


def test_other_routes_take_small_bodies_only(client):
    resp = client.post("/login", data={"name": "a", "password": "x" * (3 * MIB)})
    assert resp.status_code == 413


def test_uploads_keep_the_upload_limit(app, client):
    token = app.extensions["gridmap_users"].add("ed", "editor")[1]
    padded = six_grids().to_json().encode() + b" " * (3 * MIB)  # valid GeoJSON, 3 MiB
    resp = client.post("/api/uploads/grids", data={"file": (io.BytesIO(padded), "g.geojson")},
                       headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201, resp.get_json()


def test_deeply_nested_json_is_a_400_naming_the_limit(client, loaded):
    resp = client.post("/api/whatif", data="[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert resp.status_code == 400
    assert "64" in resp.get_json()["error"]["message"]


def test_nesting_inside_a_property_is_bounded_too(client, loaded):
    deep = json.dumps(proposal())[:-1] + ', "x": ' + "[" * 65 + "]" * 65 + "}"
    assert client.post("/api/whatif", data=deep, content_type="application/json").status_code == 400


def test_brackets_inside_strings_do_not_count(client, loaded):
    resp = client.post("/api/whatif", json=proposal(note="[" * 1000))
    assert resp.status_code == 200


def test_a_chunked_json_body_is_cut_off_at_the_limit(app, loaded):
    stream = UnreadStream(3 * MIB)
    environ = EnvironBuilder(path="/api/whatif", method="POST", content_type="application/json").get_environ()
    environ.update({"wsgi.input": stream, "wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    environ.pop("CONTENT_LENGTH", None)
    body, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("413")
    assert stream.read_bytes <= 2 * MIB + 64 * 1024  # read up to the limit (and a buffer), not all of it


def test_a_small_chunked_json_body_is_answered(app, loaded):
    data = json.dumps(proposal()).encode()
    environ = EnvironBuilder(path="/api/whatif", method="POST", content_type="application/json").get_environ()
    environ.update({"wsgi.input": io.BytesIO(data), "wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    environ.pop("CONTENT_LENGTH", None)
    _, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("200")
