"""/api/search: hits with parents and where each is shown; bad parameters are JSON 400s."""

from __future__ import annotations

import pytest

from geodata.validate import validate
from tests.factories import center_row, centers, six_grids


@pytest.fixture
def filled(store):
    store.write("grids", validate(six_grids(), "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")]), "centers").data, author="t")
    return store


def test_a_community_by_its_short_name_links_to_its_map(client, filled):
    body = client.get("/api/search?q=青石").get_json()
    first = body["hits"][0]
    assert (first["kind"], first["label"]) == ("community", "青石社区 · 月湖街道 · 海曙区")
    assert first["unit"] == {"district": "海曙区", "street": "月湖街道", "community": "青石社区"}
    assert "/map?" in first["href"] and "community=%E9%9D%92%E7%9F%B3" in first["href"]
    assert body["numberReturned"] == len(body["hits"]) <= 10


def test_a_grid_by_code_and_a_centre_link_to_their_pages(client, filled):
    (grid,) = client.get("/api/search?q=g00&limit=1").get_json()["hits"]
    assert grid["id"] == "g00" and grid["href"].endswith("/api/collections/grids/items/g00?f=html")
    centre = client.get("/api/search?q=c1中心").get_json()["hits"][0]
    assert centre["kind"] == "center" and "/api/collections/centers/items/c1" in centre["href"]


def test_a_new_version_is_searched(client, filled):
    assert client.get("/api/search?q=新村").get_json()["hits"] == []
    filled.write("grids", validate(six_grids().assign(community="新村社区"), "grids").data, author="t")
    assert client.get("/api/search?q=新村").get_json()["hits"][0]["name"] == "新村社区"


@pytest.mark.parametrize("query", ["", "q=", "q=%20", "q=a&limit=0", "q=a&limit=51", "q=a&limit=x", "q=a&bbox=1",
                                   "q=" + "长" * 101])
def test_bad_searches_are_400(client, filled, query):
    resp = client.get(f"/api/search?{query}")
    assert resp.status_code == 400 and resp.get_json()["error"]["message"]
