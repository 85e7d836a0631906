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
