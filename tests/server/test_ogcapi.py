"""OGC API – Features manners: conformance, links, JSON/HTML negotiation, ETags and 304s, caching, CORS."""

import json
import re

import jsonschema
import pytest

from geodata.schema import LAYERS
from geodata.validate import validate
from tests.factories import center_row, centers, six_grids

OGC = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
XSS = '<script>window.__xss=1</script>'


@pytest.fixture
def loaded(store):
    """Six grids (g00's name a script tag) and two centres."""
    grids = six_grids()
    grids.loc[0, "name"] = XSS
    store.write("grids", validate(grids, "grids").data, author="tester")
    store.write("centers", validate(centers([center_row("c1", "community"), center_row("d1", "district")]),
                                    "centers").data, author="tester")
    return store


# every JSON resource the OGC API serves, also as HTML
RESOURCES = ["/api", "/api/", "/api/conformance", "/api/collections", "/api/collections/grids",
             "/api/collections/grids/queryables", "/api/collections/grids/items",
             "/api/collections/grids/items/g10", "/api/collections/coverage/items?limit=3",
             "/api/collections/gaps", "/api/openapi"]


def _with(url: str, **params) -> str:
    return url + ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in params.items())


def links(body: dict) -> dict[str, list[dict]]:
    out = {}
    for link in body["links"]:
        out.setdefault(link["rel"], []).append(link)
    return out


def test_conformance_classes(client):
    body = client.get("/api/conformance").get_json()
    assert {OGC + c for c in ("core", "geojson", "html", "oas30")} <= set(body["conformsTo"])


def test_landing_page_links(client, loaded):
    body = client.get("/api").get_json()
    rels = links(body)
    assert rels["self"][0]["type"] == "application/json"
    assert rels["alternate"][0]["type"] == "text/html"
    assert rels["service-desc"][0]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert rels["service-desc"][0]["href"].endswith("/api/openapi")
    assert rels["service-doc"][0]["type"] == "text/html"
    assert {"conformance", "data"} <= set(rels)
    for link in body["links"]:  # every link answers, in the type it announces
        resp = client.get(link["href"])
        assert resp.status_code == 200, link
        assert resp.headers["Content-Type"].split(";")[0] == link["type"].split(";")[0], link


@pytest.mark.parametrize("url", RESOURCES)
def test_html_by_f_or_accept(client, loaded, url):
    for resp in (client.get(_with(url, f="html")), client.get(url, headers={"Accept": "text/html"}),
                 client.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})):
        assert resp.status_code == 200 and resp.mimetype == "text/html"
        page = resp.get_data(as_text=True)
        assert page.startswith("<!doctype html>") and 'class="gridmap-nav"' in page  # extends base.html
    assert "Accept" in client.get(url).headers["Vary"]


@pytest.mark.parametrize("url", RESOURCES)
def test_json_by_default_and_f_wins_over_accept(client, loaded, url):
    for accept in (None, "application/json", "application/geo+json", "*/*"):
        resp = client.get(url, headers={"Accept": accept} if accept else {})
        assert resp.status_code == 200 and "json" in resp.mimetype and json.loads(resp.data)
    resp = client.get(_with(url, f="json"), headers={"Accept": "text/html"})
    assert "json" in resp.mimetype


@pytest.mark.parametrize("url", RESOURCES)
def test_unknown_format_is_json_400(client, loaded, url):
    resp = client.get(_with(url, f="xml"), headers={"Accept": "text/html"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "bad_request" and "'f'" in resp.get_json()["error"]["message"]


@pytest.mark.parametrize("url", ["/api?colour=red", "/api/conformance?x=1", "/api/collections?bbox=1,2,3,4",
                                 "/api/collections/grids?limit=5", "/api/collections/grids/items/g10?limit=1"])
def test_unknown_parameters_are_400(client, loaded, url):
    resp = client.get(url)
    assert resp.status_code == 400 and "未知参数" in resp.get_json()["error"]["message"]


def test_language_switch_is_no_filter(client, loaded):
    assert client.get("/api/collections/grids/items?f=html&lang=en").status_code == 200
    assert client.get("/api/collections/grids/items?lang=en").get_json(force=True)["numberMatched"] == 6


def test_items_document(client, loaded):
    resp = client.get("/api/collections/grids/items?limit=2&offset=1&community=白云社区")
    assert resp.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    body = resp.get_json(force=True)
    assert (body["numberMatched"], body["numberReturned"]) == (4, 2)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", body["timeStamp"])
    rels = links(body)
    assert {"self", "alternate", "next", "prev", "collection"} <= set(rels)
    assert rels["self"][0]["type"] == rels["next"][0]["type"] == "application/geo+json"
    assert rels["alternate"][0]["type"] == "text/html"
    for rel in ("self", "alternate", "next", "prev"):
        assert "community=" in rels[rel][0]["href"] and "limit=2" in rels[rel][0]["href"], rel
    html = client.get(rels["alternate"][0]["href"])
    assert html.mimetype == "text/html" and html.get_data(as_text=True).count('<tr data-id="') == 2


def test_item_document(client, loaded):
    resp = client.get("/api/collections/grids/items/g10")
    assert resp.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    body = resp.get_json(force=True)
    assert body["id"] == "g10" and body["properties"]["grid_id"] == "g10"
    rels = links(body)
    assert rels["self"][0]["type"] == "application/geo+json" and rels["alternate"][0]["type"] == "text/html"
    assert rels["collection"][0]["href"].endswith("/api/collections/grids")


def test_collection_document(client, loaded):
    body = client.get("/api/collections/grids").get_json()
    assert body["itemType"] == "feature"
    assert body["crs"][0] == body["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert body["extent"]["spatial"] == {"bbox": [[121.5, 29.8, 121.53, 29.82]],
                                         "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    assert body["numberOfFeatures"] == 6 and body["version"] == 1
    rels = links(body)
    assert {link["type"] for link in rels["items"]} == {"application/geo+json", "text/html"}
    assert rels["alternate"][0]["type"] == "text/html"
    assert rels["queryables"][0]["type"] == "application/schema+json"
    downloads = {link["href"].rsplit(".", 1)[1] for link in rels["enclosure"]}
    assert "geojson" in downloads
    for link in rels["enclosure"]:
        assert client.get(link["href"]).status_code == 200, link["href"]
    assert client.get("/api/collections/gaps").get_json()["numberOfFeatures"] >= 0


def test_queryables_are_json_schema_typed_from_the_layer(viewer_client, loaded):
    client = viewer_client  # a signed-in reader: restricted fields included
    resp = client.get("/api/collections/grids/queryables")
    assert resp.mimetype == "application/schema+json"
    schema = resp.get_json(force=True)
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert set(props) == {"geometry", *LAYERS["grids"].field_names}
    # one type string a property: QGIS ignores ["integer", "null"] and then filters that property itself
    assert props["population"]["type"] == "integer" and props["population"]["minimum"] == 0
    assert all(isinstance(p["type"], str) for name, p in props.items() if name != "geometry")
    assert props["grid_type"]["enum"] == ["residential", "industrial_park", "commercial_market",
                                          "office_building", "other"]
    # the geometry as QGIS recognises a geometry queryable (for S_INTERSECTS)
    assert props["geometry"]["format"].startswith("geometry-") and props["geometry"]["x-ogc-role"] == \
        "primary-geometry"
    validator = jsonschema.Draft202012Validator(schema)
    for feature in client.get("/api/collections/grids/items?limit=10").get_json(force=True)["features"]:
        validator.validate({k: v for k, v in feature["properties"].items() if v is not None})
    assert client.get("/api/collections/parks/queryables").status_code == 404


# --- HTTP manners -----------------------------------------------------------------------------

@pytest.mark.parametrize("url", RESOURCES + ["/api/collections/grids/versions", "/api/summary",
                                             "/api/download/grids.geojson"])
@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_strong_etag_and_304(client, loaded, url, encoding):
    headers = {"Accept-Encoding": encoding} if encoding else {}
    for fmt_headers in ({}, {"Accept": "text/html"}) if "versions" not in url and "summary" not in url \
            and "download" not in url else ({},):
        first = client.get(url, headers={**headers, **fmt_headers})
        etag = first.headers["ETag"]
        assert first.status_code == 200 and not etag.startswith("W/") and etag.startswith('"')
        again = client.get(url, headers={**headers, **fmt_headers, "If-None-Match": etag})
        assert again.status_code == 304 and again.data == b"", (url, fmt_headers)
        assert again.headers["ETag"] == etag
        assert "Cache-Control" in again.headers


def test_gzipped_representation_is_compressed_and_revalidates(client, loaded):
    url = "/api/collections/grids/items?limit=6"
    first = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip" and first.headers["ETag"].endswith(':gzip"')
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers and plain.headers["ETag"] == first.headers["ETag"][:-6] + '"'
    assert client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]}
                      ).status_code == 304
    assert client.get(url, headers={"If-None-Match": plain.headers["ETag"]}).status_code == 304


def test_etag_follows_the_data(client, loaded, store):
    urls = ["/api/collections/grids/items", "/api/collections/grids", "/api/collections",
            "/api/collections/coverage/items"]
    before = {url: client.get(url).headers["ETag"] for url in urls}
    assert client.get("/api/collections/grids/items?limit=3").headers["ETag"] != before[urls[0]]
    store.write("grids", validate(six_grids(), "grids").data, author="tester", message="names fixed")
    for url in urls:
        resp = client.get(url, headers={"If-None-Match": before[url]})
        assert resp.status_code == 200 and resp.headers["ETag"] != before[url], url


def test_a_stored_features_etag_follows_that_feature_alone(client, loaded, store):
    url = "/api/collections/grids/items/g10"
    before = client.get(url).headers["ETag"]
    others = validate(six_grids(), "grids").data
    others.loc[others["grid_id"] == "g11", "population"] = 1
    store.write("grids", others, author="tester", message="g11 only")
    assert client.get(url, headers={"If-None-Match": before}).status_code == 304  # g10 is as it was
    changed = others.copy()
    changed.loc[changed["grid_id"] == "g10", "population"] = 2
    store.write("grids", changed, author="tester", message="g10 too")
    resp = client.get(url, headers={"If-None-Match": before})
    assert resp.status_code == 200 and resp.headers["ETag"] != before


def test_cache_lifetimes(client, loaded):
    for url in ("/api/conformance", "/api/openapi"):
        assert client.get(url).headers["Cache-Control"] == "max-age=60"
    for url in ("/api", "/api/collections", "/api/collections/grids/items", "/api/collections/grids/items/g10",
                "/api/download/grids.geojson", "/api/summary"):
        assert client.get(url).headers["Cache-Control"] == "no-cache", url


def test_cors_on_reads_only(client, loaded):
    origin = {"Origin": "https://planner.example"}
    for url in ("/api/collections", "/api/collections/grids/items", "/api/nope"):
        assert client.get(url, headers=origin).headers["Access-Control-Allow-Origin"] == "*"
    head = client.head("/api/collections/grids/items", headers=origin)
    assert head.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in client.get("/api/collections", headers=origin).headers["Access-Control-Expose-Headers"]
    preflight = client.options("/api/collections/grids/items",
                               headers={**origin, "Access-Control-Request-Method": "GET",
                                        "Access-Control-Request-Headers": "if-none-match"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert "If-None-Match" in preflight.headers["Access-Control-Allow-Headers"]
    # writes: neither the request nor its preflight get any CORS header
    write = client.post("/api/uploads/grids", headers=origin)
    assert write.status_code == 401 and "Access-Control-Allow-Origin" not in write.headers
    preflight = client.options("/api/uploads/grids", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert not any(h.startswith("Access-Control-") for h in preflight.headers.keys())
    assert "Access-Control-Allow-Origin" not in client.get("/healthz", headers=origin).headers


def test_cors_origins_setting(app, client, loaded):
    app.config["CORS_ORIGINS"] = "https://a.example, https://b.example"
    allowed = client.get("/api/collections", headers={"Origin": "https://b.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "Origin" in allowed.headers["Vary"]
    other = client.get("/api/collections", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    app.config["CORS_ORIGINS"] = ""
    assert "Access-Control-Allow-Origin" not in client.get("/api", headers={"Origin": "https://a.example"}).headers


def test_preflight_needs_no_credentials_on_a_closed_server(data_dir):
    from server import create_app

    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "PUBLIC_READ": False})
    client = app.test_client()
    assert client.get("/api/collections").status_code == 401
    preflight = client.options("/api/collections", headers={"Origin": "https://a.example",
                                                            "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"


def test_what_if_radius_is_bounded(client, loaded, signed_in):
    resp = client.get("/api/collections/coverage/items?radius_community_m=1e308", headers=signed_in)
    assert resp.status_code == 400 and "最大为 10000 米" in resp.get_json()["error"]["message"]  # Chinese by default
    assert client.get("/api/summary?radius_district_m=60000", headers=signed_in).status_code == 400
    assert client.get("/api/collections/coverage/items?radius_community_m=1500", headers=signed_in).status_code == 200


# --- HTML pages -------------------------------------------------------------------------------

def test_items_page_table_pagination_and_map(client, loaded):
    page = client.get("/api/collections/grids/items?f=html&limit=2&offset=2").get_data(as_text=True)
    assert page.count('<tr data-id="') == 2
    assert 'rel="next"' in page and 'rel="prev"' in page and "offset=4" in page and "offset=0" in page
    assert "gridmap.geojsonLayer(" in page and '"data": {"features": [{' in page  # drawn from the page
    assert '/api/collections/grids/items/{grid_id}?f=html' in page  # map popups link to each feature's page
    _only_local_assets(page)


def test_item_page_properties_and_map(client, loaded):
    page = client.get("/api/collections/centers/items/d1?f=html&lang=en").get_data(as_text=True)
    assert "<code>floor_area_m2</code></th><td>300.0</td>" in page
    assert "gridmap.geojsonLayer(" in page and '"d1"' in page
    _only_local_assets(page)


def test_collection_and_docs_pages(viewer_client, loaded):
    client = viewer_client  # a signed-in reader: restricted fields included
    page = client.get("/api/collections/grids?f=html").get_data(as_text=True)
    for field in LAYERS["grids"].field_names:
        assert f"<code>{field}</code>" in page
    assert "/api/download/grids.geojson" in page and "121.5, 29.8, 121.53, 29.82" in page
    docs = client.get("/api/openapi?f=html").get_data(as_text=True)
    assert "/api/uploads/grids" in docs and "/api/collections/grids/items/{featureId}" in docs
    assert "swagger" not in docs.lower()
    _only_local_assets(docs)


@pytest.mark.parametrize("url", ["/api/collections/grids/items?f=html", "/api/collections/grids/items/g00?f=html",
                                 "/api/collections/coverage/items?f=html&limit=6"])
def test_html_pages_escape_data(client, loaded, url):
    page = client.get(url).get_data(as_text=True)
    assert XSS not in page
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page  # the table cell, escaped by Jinja
    assert "\\u003cscript\\u003ewindow.__xss=1\\u003c/script\\u003e" in page  # the map's data, escaped as JSON


def _only_local_assets(page: str) -> None:
    for tag in re.findall(r"<(?:script|link)\b[^>]*>", page):
        src = re.search(r'(?:src|href)="([^"]+)"', tag)
        assert src is None or src.group(1).startswith("/"), tag
