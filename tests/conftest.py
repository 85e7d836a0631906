"""Fixtures per test (flaskr style): an app over a fresh data directory, its client."""

from __future__ import annotations

import pytest
from hypothesis import settings

from server import create_app

pytest_plugins = ("tests.postgres",)  # postgres_cluster, postgis_url: a throwaway PostGIS for the store tests

# Property tests check answers, not speed: no per-example deadline (a busy shared machine trips the default 200 ms)
settings.register_profile("gridmap", deadline=None)
settings.load_profile("gridmap")


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def app(data_dir):
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})
    yield app
    app.extensions["gridmap"].jobs.close()  # its job processes, if a test started them


@pytest.fixture
def editor(app) -> dict:
    """Headers of an editor with no scope."""
    return {"Authorization": "Bearer " + app.extensions["gridmap_users"].add("editor1", "editor")[1]}


@pytest.fixture
def yuehu(app) -> dict:
    """Headers of an editor of 月湖街道 alone (tests/factories.six_grids' left column: g00, g01)."""
    users = app.extensions["gridmap_users"]
    return {"Authorization": "Bearer " + users.add("yuehu", "editor", scopes=["district=海曙区,street=月湖街道"])[1]}


@pytest.fixture
def signed_in(app) -> dict:
    """Headers of a signed-in viewer (what-ifs need one)."""
    return {"Authorization": "Bearer " + app.extensions["gridmap_users"].add("viewer1", "viewer")[1]}


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def store(app):
    return app.extensions["gridmap"].store


@pytest.fixture
def viewer_client(app, signed_in):
    """A client sending a viewer's API token: a signed-in reader, who sees the restricted fields."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = signed_in["Authorization"]
    return client
