"""Fixtures per test (flaskr style): an app over a fresh data directory, its client."""

from __future__ import annotations

import pytest

from server import create_app


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def store(app):
    return app.extensions["gridmap"].store


@pytest.fixture
def viewer_client(app):
    """A client sending a viewer's API token: a signed-in reader, who sees the restricted fields."""
    _, token = app.extensions["gridmap_users"].add("reader", "viewer")
    signed_in = app.test_client()
    signed_in.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return signed_in
