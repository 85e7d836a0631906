"""OGC API – Features Part 4 against the live server: OWSLib's client, and the requests QGIS sends.

QGIS (its OAPIF provider) asks ``OPTIONS`` on a collection's items and on a feature, offers
editing only when ``Allow`` names POST / PUT / PATCH / DELETE, then writes without ``If-Match``
and learns a new feature's id from ``Location``.
"""

from __future__ import annotations

import json

import pytest
import requests
from owslib.ogcapi.features import Features

from tests.factories import center_row, grid_row, square

ITEMS = "/api/collections/grids/items"


@pytest.fixture(scope="module")
def session(small_api):
    s = requests.Session()
    s.trust_env = False
    s.headers["Authorization"] = f"Bearer {small_api.token}"
    return s


def grid_feature(grid_id: str, col: int, row: int, **overrides) -> dict:
    return {"type": "Feature", "geometry": square(col, row).__geo_interface__,
            "properties": grid_row(grid_id, **overrides)}


def test_qgis_replay_options_then_post_put_patch_delete(small_api, session):
    anonymous = requests.Session()
    anonymous.trust_env = False
    assert "POST" not in anonymous.options(small_api.base + ITEMS, timeout=30).headers["Allow"]
    assert "POST" in session.options(small_api.base + ITEMS, timeout=30).headers["Allow"].split(", ")
    allowed = session.options(small_api.base + f"{ITEMS}/g00", timeout=30).headers["Allow"].split(", ")
    assert {"PUT", "PATCH", "DELETE"} <= set(allowed)

    created = session.post(small_api.base + ITEMS, data=json.dumps(grid_feature("q1", 0, 2)),
                           headers={"Content-Type": "application/geo+json"}, timeout=60)
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    assert location.endswith(f"{ITEMS}/q1")
    assert session.get(location, timeout=30).json()["properties"]["name"] == "q1网格"

    replaced = session.put(location, data=json.dumps(grid_feature("q1", 0, 2, population=55)),
                           headers={"Content-Type": "application/geo+json"}, timeout=60)
    assert replaced.status_code == 200, replaced.text
    patched = session.patch(location, data=json.dumps({"properties": {"name": "改名网格"}}),
                            headers={"Content-Type": "application/merge-patch+json"}, timeout=60)
    assert patched.status_code == 200, patched.text
    after = session.get(location, timeout=30).json()["properties"]
    assert (after["population"], after["name"]) == (55, "改名网格")

    assert session.delete(location, timeout=60).status_code == 204
    assert session.get(location, timeout=30).status_code == 404
    versions = session.get(small_api.base + "/api/collections/grids/versions", timeout=30).json()["versions"]
    assert [v["message"] for v in versions[:4]] == ["removed q1", "updated q1", "replaced q1", "added q1"]


def test_owslib_creates_updates_and_deletes(small_api):
    client = Features(small_api.api, headers={"Authorization": f"Bearer {small_api.token}"})
    centre = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.525, 29.805]},
              "properties": center_row("c9", "community")}
    assert client.collection_item_create("centers", centre)
    assert client.collection_item("centers", "c9")["properties"]["name"] == "c9中心"
    centre["properties"]["name"] = "新中心"
    assert client.collection_item_update("centers", "c9", json.dumps(centre, ensure_ascii=False))
    assert client.collection_item("centers", "c9")["properties"]["name"] == "新中心"
    assert client.collection_item_delete("centers", "c9")
    with pytest.raises(RuntimeError):
        client.collection_item("centers", "c9")
    with pytest.raises(RuntimeError, match="already has"):  # a key taken: 409
        client.collection_item_create("centers", {**centre, "properties": center_row("c1", "community")})
