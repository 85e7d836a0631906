"""OWSLib's OGC API – Features client (owslib.ogcapi.features.Features) against the served demo."""

from __future__ import annotations

import pytest
from owslib.ogcapi.features import Features

OGC = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"


@pytest.fixture(scope="module")
def client(demo_api):
    return Features(demo_api.api)


def test_landing_and_conformance(client):
    assert {link["rel"] for link in client.links} >= {"self", "service-desc", "service-doc", "conformance", "data"}
    assert {OGC + c for c in ("core", "geojson", "html", "oas30")} <= set(client.conformance()["conformsTo"])


def test_collections(client, demo_api):
    ids = [c["id"] for c in client.collections()["collections"]]
    assert ids == ["grids", "centers", "districts", "roads", "streets", "communities", "coverage", "gaps", "catchments"]
    assert client.feature_collections() == ids
    grids = client.collection("grids")
    assert grids["itemType"] == "feature" and grids["title"] == "网格"  # the default language: OWSLib asks for none
    assert "population" in client.collection_queryables("grids")["properties"]


def test_items_and_one_item(client):
    page = client.collection_items("grids", limit=5)
    assert page["type"] == "FeatureCollection" and len(page["features"]) == page["numberReturned"] == 5
    assert page["numberMatched"] > 8000
    first = page["features"][0]
    item = client.collection_item("grids", first["id"])
    assert item["id"] == first["id"] and item["properties"]["name"] == first["properties"]["name"]
    filtered = client.collection_items("centers", limit=3, level="district", bbox=[121.0, 29.0, 122.5, 30.5])
    assert filtered["features"] and all(f["properties"]["level"] == "district" for f in filtered["features"])


def test_api_description(client):
    api = client.api()  # follows the service-desc link, typed application/vnd.oai.openapi+json;version=3.0
    assert api["openapi"].startswith("3.0") and "/collections/grids/items" in api["paths"]
