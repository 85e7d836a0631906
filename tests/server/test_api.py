import json

import pytest

from geodata import geojson
from geodata.schema import LAYERS
from geodata.validate import validate
from tests.factories import center_row, centers, six_grids
from tests.http import get_json


@pytest.fixture
def loaded(store):
    """Six grids (version 1, then a version 2 without g21) and two centres."""
    grids = validate(six_grids(), "grids").data
    store.write("grids", grids, author="tester", message="first")
    store.write("grids", grids[grids.grid_id != "g21"], author="tester", message="second")
    store.write("centers", validate(centers([center_row("c1", "community"), center_row("d1", "district")]),
                                    "centers").data, author="tester")
    return store


def test_healthz_reports_layer_versions(client, loaded):
    body = get_json(client, "/healthz")
    assert body["status"] == "ok"
    assert body["layers"]["grids"] == {"version": 2, "features": 5}
    assert body["layers"]["districts"] is None


def test_collections_list_every_layer_with_extent(client, loaded):
    body = get_json(client, "/api/collections")
    ids = [c["id"] for c in body["collections"]]
    assert ids == ["grids", "centers", "districts", "roads", "streets", "communities", "coverage", "gaps", "catchments"]
    grids = body["collections"][0]
    assert grids["extent"]["spatial"]["bbox"] == [[121.5, 29.8, 121.53, 29.82]]
    assert grids["numberOfFeatures"] == 5
    assert any(link["rel"] == "items" for link in grids["links"])


def test_items_page_and_links(client, loaded):
    resp = client.get("/api/collections/grids/items?limit=2&offset=2")  # features come in key order
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    body = resp.get_json(force=True)
    assert [f["id"] for f in body["features"]] == ["g10", "g11"]
    assert (body["numberMatched"], body["numberReturned"]) == (5, 2)
    links = {link["rel"]: link["href"] for link in body["links"]}
    assert "offset=4" in links["next"] and "limit=2" in links["next"]
    assert "offset=0" in links["prev"]
    assert body["features"][0]["properties"]["name"] == "g10网格"


def test_last_page_has_no_next_link(client, loaded):
    body = get_json(client, "/api/collections/grids/items?limit=2&offset=4")
    assert [f["id"] for f in body["features"]] == ["g20"]
    assert "next" not in {link["rel"] for link in body["links"]}


def test_following_next_links_visits_every_feature_once(client, loaded):
    url, seen = "/api/collections/grids/items?limit=2", []
    while url:
        body = get_json(client, url)
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert seen == ["g00", "g01", "g10", "g11", "g20"]  # key order


def test_bbox_selects_intersecting_features(client, loaded):
    # squares are 0.01° wide from lon 121.50; this box covers only the middle column's interior
    body = get_json(client, "/api/collections/grids/items?bbox=121.512,29.801,121.518,29.819")
    assert sorted(f["id"] for f in body["features"]) == ["g10", "g11"]
    assert body["numberMatched"] == 2


def test_property_filters_combine_with_bbox(client, loaded):
    body = get_json(client, "/api/collections/grids/items?community=白云社区")
    assert sorted(f["id"] for f in body["features"]) == ["g10", "g11", "g20"]
    body = get_json(client, "/api/collections/grids/items?community=白云社区&bbox=121.521,29.8,121.53,29.809")
    assert [f["id"] for f in body["features"]] == ["g20"]
    body = get_json(client, "/api/collections/grids/items?population=500")
    assert [f["id"] for f in body["features"]] == ["g11"]


def test_older_version_is_readable(client, loaded):
    body = get_json(client, "/api/collections/grids/items?version=1&limit=100")
    assert body["numberMatched"] == 6


def test_single_item_and_missing_item(client, loaded):
    body = get_json(client, "/api/collections/centers/items/d1")
    assert body["type"] == "Feature" and body["properties"]["level"] == "district"
    error = get_json(client, "/api/collections/centers/items/nope", 404)["error"]
    assert error["code"] == "not_found" and "nope" in error["message"]


@pytest.mark.parametrize("url", ["/api/collections/parks", "/api/collections/parks/items",
                                 "/api/download/parks.geojson", "/api/download/grids.shp",
                                 "/api/collections/grids/items?version=9"])
def test_unknown_things_are_json_404(client, loaded, url):
    resp = client.get(url)
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("query", ["bbox=1,2,3", "bbox=a,b,c,d", "bbox=10,10,0,0", "bbox=0,-100,1,1",
                                   "bbox=nan,0,1,1", "limit=0", "limit=-1", "limit=x", "offset=-5",
                                   "colour=red", "population=many", "version=abc"])
def test_bad_parameters_are_json_400(client, loaded, query):
    resp = client.get(f"/api/collections/grids/items?{query}")
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "bad_request" and error["message"]


def test_limit_above_maximum_is_clamped(app, client, loaded):
    app.config["MAX_ITEMS"] = 3
    body = get_json(client, "/api/collections/grids/items?limit=50")
    assert body["numberReturned"] == 3


def test_empty_layer_has_no_items(client, loaded):
    body = get_json(client, "/api/collections/districts/items")
    assert body["numberMatched"] == 0 and body["features"] == []


def test_download_whole_layer_is_the_stored_file(viewer_client, loaded, store):
    """The stored features, each grid as a MultiPolygon (the type the layer declares)."""
    client = viewer_client  # a signed-in reader: restricted fields included
    resp = client.get("/api/download/grids.geojson")
    assert resp.status_code == 200
    assert resp.data == geojson.feature_collection(geojson.served(store.query("grids").features, LAYERS["grids"]))
    assert 'filename="grids-v2.geojson"' in resp.headers["Content-Disposition"]
    body = json.loads(resp.data)
    assert "crs" not in body and len(body["features"]) == 5


def test_download_with_filters_and_version(client, loaded):
    resp = client.get("/api/download/grids.geojson?street=月湖街道&version=1")
    body = json.loads(resp.data)
    assert sorted(f["properties"]["grid_id"] for f in body["features"]) == ["g00", "g01"]
    assert 'filename="grids-v1.geojson"' in resp.headers["Content-Disposition"]


def test_download_of_an_empty_layer_is_404(client, loaded):
    assert client.get("/api/download/districts.geojson").status_code == 404


def test_pages_get_html_errors_and_api_gets_json(client):
    resp = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    resp = client.post("/api/collections")
    assert resp.status_code == 405 and resp.get_json()["error"]["code"] == "method_not_allowed"


def test_landing_and_conformance(client):
    landing = get_json(client, "/api/")
    assert {link["rel"] for link in landing["links"]} >= {"self", "conformance", "data"}
    assert get_json(client, "/api")["title"] == "gridmap"
    conf = get_json(client, "/api/conformance")["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf


def test_items_pages_are_cached_within_the_byte_budget(data_dir):
    from server import create_app

    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "CACHE_MB": 1})
    app.extensions["gridmap"].store.write("grids", six_grids(), author="t")
    client = app.test_client()
    for n in range(300):  # 300 different URLs of about 5 KB each: 1.5 MB asked
        assert client.get(f"/api/collections/grids/items?bbox=121,29,122,30.{n:03d}").status_code == 200
    pages = app.extensions["gridmap"].pages
    kept = sum(len(v) for v in pages._items.values())
    assert 0 < kept <= 2**20 // 4  # the pages' quarter of GRIDMAP_CACHE_MB
