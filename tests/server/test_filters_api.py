"""OGC API – Features Part 3 on /api: filter, filter-lang, filter-crs; sortby, properties, skipGeometry;
the conformance classes QGIS looks for and the OpenAPI parameters GDAL looks for."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from geodata.validate import validate
from tests.factories import center_row, centers, six_grids

CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
PART3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"


@pytest.fixture
def loaded(store):
    """g00 g10 g20 g01 g11 g21 with populations 100 to 600 in that order (g00, g01 in 月湖街道, the others
    in 白云街道), and two centres."""
    store.write("grids", validate(six_grids(), "grids").data, author="tester")
    store.write("centers", validate(centers([center_row("c1", "community"), center_row("d1", "district")]),
                                    "centers").data, author="tester")
    return store


def items(client, collection: str = "grids", **params):
    resp = client.get(f"/api/collections/{collection}/items", query_string=params)
    return resp, resp.get_json(force=True)


def ids(body) -> list[str]:
    return [f["id"] for f in body["features"]]


def test_conformance_declares_what_qgis_needs_to_send_filters(client):
    """QGIS sends filters only with basic-cql2, cql2-text, filter and features-filter declared."""
    declared = set(client.get("/api/conformance").get_json()["conformsTo"])
    assert {PART3 + "filter", PART3 + "features-filter", PART3 + "queryables", CQL2 + "basic-cql2",
            CQL2 + "cql2-text", CQL2 + "cql2-json", CQL2 + "advanced-comparison-operators",
            CQL2 + "case-insensitive-comparison", CQL2 + "basic-spatial-functions"} <= declared


@pytest.mark.parametrize("collection", ["grids", "coverage"])  # the store's SQL, and a derived frame's mask
def test_filter_selects_and_counts(client, loaded, collection):
    resp, body = items(client, collection, filter="street = '白云街道' AND population >= 300", limit=2)
    assert resp.status_code == 200
    assert body["numberMatched"] == 3 and ids(body) == ["g11", "g20"]  # 500 and 300 (and g21's 600), key order
    nxt = next(link["href"] for link in body["links"] if link["rel"] == "next")
    assert parse_qs(urlsplit(nxt).query)["filter"] == ["street = '白云街道' AND population >= 300"]
    assert ids(client.get(nxt).get_json()) == ["g21"]


@pytest.mark.parametrize("lang, text", [
    ("cql2-text", "S_INTERSECTS(geometry, POINT(121.515 29.815)) OR CASEI(grid_id) = casei('G00')"),
    ("cql-text", "(S_INTERSECTS(geometry, POINT(121.515 29.815))) OR (grid_id = 'g00')"),
    ("cql2-json", '{"op": "or", "args": [{"op": "s_intersects", "args": [{"property": "geometry"}, '
                  '{"type": "Point", "coordinates": [121.515, 29.815]}]}, '
                  '{"op": "=", "args": [{"property": "grid_id"}, "g00"]}]}'),
])
def test_filter_languages(client, loaded, lang, text):
    resp, body = items(client, filter=text, **{"filter-lang": lang,
                                               "filter-crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"})
    assert resp.status_code == 200, body
    assert ids(body) == ["g00", "g11"] and body["numberMatched"] == 2


@pytest.mark.parametrize("params, says", [  # said in Chinese (by default)
    ({"filter": "population >"}, "第 13 个字符处有误"),
    ({"filter": "nope = 1"}, "未知属性 'nope'"),
    ({"filter": "population = 'x'"}, "'population' 是数字"),
    ({"filter": "name = 'a'", "filter-lang": "sql"}, "'filter-lang' 须为"),
    ({"filter": "name = 'a'", "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/32651"},
     "filter-crs 'http://www.opengis.net/def/crs/EPSG/0/32651' 不是本服务提供的坐标参考系"),
    ({"filter-lang": "cql2-text"}, "须与 'filter' 一起使用"),
    ({"filter": "(" * 500 + "name = 'a'" + ")" * 500}, "嵌套了 500 层"),
    ({"sortby": "-nope"}, "无法按 'nope' 排序"),
    ({"properties": "name,nope"}, "未知属性 'nope'"),
    ({"skipGeometry": "maybe"}, "'skipGeometry' 须为 true 或 false"),
])
def test_bad_parameters_are_json_400s_that_say_what(client, loaded, params, says):
    for collection in ("grids", "coverage"):
        resp, body = items(client, collection, **params)
        assert resp.status_code == 400 and says in body["error"]["message"], body


def test_restricted_fields_cannot_be_filtered_sorted_or_selected_by_anonymous_readers(client, viewer_client,
                                                                                      loaded):
    for params in ({"filter": "instructor IS NULL"}, {"sortby": "party_members"}, {"properties": "instructor"}):
        assert items(client, **params)[0].status_code == 400
        assert items(viewer_client, **params)[0].status_code == 200


@pytest.mark.parametrize("collection", ["grids", "coverage"])
def test_sortby_properties_and_skip_geometry(client, loaded, collection):
    resp, body = items(client, collection, sortby="-population", properties="name,population",
                       skipGeometry="true", limit=3)
    assert resp.status_code == 200
    assert ids(body) == ["g21", "g11", "g01"]
    first = body["features"][0]
    assert first["geometry"] is None and first["properties"] == {"name": "g21网格", "population": 600}
    _, body = items(client, collection, sortby="street,+population", limit=10)
    assert ids(body) == ["g00", "g01", "g10", "g20", "g11", "g21"]  # text by code point: 月 U+6708 < 白 U+767D


def test_downloads_take_filters_and_properties(client, loaded):
    resp = client.get("/api/download/grids.geojson", query_string={"filter": "population > 450",
                                                                   "properties": "name"})
    features = resp.get_json(force=True)["features"]
    assert [f["id"] for f in features] == ["g11", "g21"] and set(features[0]["properties"]) == {"name"}
    csv = client.get("/api/download/grids.csv", query_string={"filter": "population > 450"}).data.decode()
    assert "g11" in csv and "g21" in csv and "g00" not in csv


def test_openapi_declares_the_parameters_gdal_pushes_filters_with(client):
    """GDAL 3.6 sends -where as filter=...&filter-lang=cql-text only when the items path's filter-lang enum
    holds cql-text and the filtered properties are declared as query parameters."""
    doc = client.get("/api/openapi").get_json(force=True)
    declared = {}
    for param in doc["paths"]["/collections/grids/items"]["get"]["parameters"]:
        if "$ref" in param:
            param = doc["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
        declared[param["name"]] = param
    assert "cql-text" in declared["filter-lang"]["schema"]["enum"]
    assert {"filter", "filter-crs", "sortby", "properties", "skipGeometry", "population", "district"} <= set(declared)


def test_items_page_takes_the_same_parameters(client, loaded):
    page = client.get("/api/collections/grids/items", query_string={
        "f": "html", "filter": "population > 450", "sortby": "-population", "properties": "name",
        "skipGeometry": "true"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "g21网格" in text and "g11网格" in text and "g10网格" not in text
    assert text.index("g21网格") < text.index("g11网格")  # -population
    bad = client.get("/api/collections/grids/items", query_string={"f": "html", "filter": "population >"})
    assert bad.status_code == 400 and "第 13 个字符处有误" in bad.get_data(as_text=True)
