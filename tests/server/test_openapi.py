"""The OpenAPI 3.0 document at /api/openapi: valid, complete, typed from geodata.schema, true to the answers."""

import geopandas as gpd
import pytest
import shapely
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec
from shapely import box

from geodata.schema import DERIVED, LAYERS
from geodata.validate import validate
from server import openapi
from tests.factories import center_row, centers, six_grids

COLLECTIONS = [*LAYERS, *DERIVED]


@pytest.fixture
def loaded(store):
    store.write("grids", validate(six_grids(), "grids").data, author="tester")
    store.write("grids", validate(six_grids().iloc[:5], "grids").data, author="tester", message="g21 gone")
    store.write("centers", validate(centers([center_row("c1", "community"), center_row("d1", "district")]),
                                    "centers").data, author="tester")
    district = gpd.GeoDataFrame({"adcode": ["330203"], "name": ["海曙区"], "name_en": ["Haishu"]},
                                geometry=[box(121.49, 29.79, 121.54, 29.83)], crs="EPSG:4326")
    store.write("districts", validate(district, "districts").data, author="tester")
    road = gpd.GeoDataFrame({"road_id": ["r1"], "highway": ["residential"]},
                            geometry=[shapely.LineString([(121.50, 29.80), (121.51, 29.80)])], crs="EPSG:4326")
    store.write("roads", validate(road, "roads").data, author="tester")
    return store


@pytest.fixture
def doc(viewer_client):
    client = viewer_client  # a signed-in reader: restricted fields included
    resp = client.get("/api/openapi")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/vnd.oai.openapi+json;version=3.0"
    return resp.get_json(force=True)


def conforms(doc: dict, schema: dict, instance) -> None:
    """Validate ``instance`` against an OpenAPI 3.0 schema of ``doc`` (its $refs resolved in ``doc``)."""
    OAS30Validator({**schema, "components": doc["components"]}).validate(instance)


def operation(doc: dict, path: str, method: str = "get") -> dict:
    return doc["paths"][path][method]


def parameters(doc: dict, op: dict) -> dict[str, dict]:
    out = {}
    for param in op["parameters"]:
        if "$ref" in param:
            param = doc["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
        out[param["name"]] = param
    return out


def test_document_is_valid_openapi_3_0(doc):
    assert doc["openapi"].startswith("3.0")
    validate_spec(doc)


def test_paths_are_relative_to_the_landing_page(doc):
    assert doc["servers"] == [{"url": "http://localhost/api"}]
    assert "/" in doc["paths"] and "/collections/grids/items" in doc["paths"]  # where GDAL looks for filters


def test_every_route_under_api_is_described(app, doc):
    assert openapi.undocumented(app) == []
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    for rule in openapi.api_rules(app):
        for path, _ in openapi._expand(rule):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in described, (rule.rule, method)
    for path, method in [("/", "get"), ("/conformance", "get"), ("/openapi", "get"), ("/collections", "get"),
                         ("/collections/gaps", "get"), ("/collections/gaps/queryables", "get"),
                         ("/collections/streets/items/{featureId}", "get"), ("/download/coverage.{ext}", "get"),
                         ("/summary", "get"), ("/uploads/centers", "post"), ("/collections/grids/versions", "get"),
                         ("/collections/districts/versions/{n}/restore", "post"), ("/collections/grids/diff", "get")]:
        assert (path, method) in described
    assert "/collections/gaps/versions" not in doc["paths"]  # derived collections have no versions
    assert ("/recommendations", "get") in described and ("/whatif", "post") in described


def test_a_route_without_a_description_still_appears_and_is_named(app):
    @app.get("/api/collections/<collection_id>/experimental")
    def experimental(collection_id):
        """Something new."""
        return {}

    assert openapi.undocumented(app) == ["experimental"]
    with app.test_request_context():
        doc = openapi.document(app, "http://localhost/api")
    op = doc["paths"]["/collections/grids/experimental"]["get"]
    assert op["summary"] == "Something new." and op["x-undocumented"]
    validate_spec(doc)


@pytest.mark.parametrize("cid", COLLECTIONS)
def test_items_parameters_filter_by_each_property(app, viewer_client, cid):
    client = viewer_client  # a signed-in reader: restricted fields included
    app.config["MAX_ITEMS"] = 500
    doc = client.get("/api/openapi").get_json(force=True)
    params = parameters(doc, operation(doc, f"/collections/{cid}/items"))
    layer = LAYERS.get(cid) or DERIVED[cid]
    assert {"f", "bbox", "limit", "offset"} <= set(params)
    assert params["limit"]["schema"]["maximum"] == 500 and params["limit"]["schema"]["minimum"] == 1
    assert params["f"]["schema"]["enum"] == ["json", "html"]
    assert params["bbox"]["style"] == "form" and params["bbox"]["explode"] is False
    for f in layer.fields:
        if f.kind == "boolean":  # not a filter yet (geodata.query answers 400)
            assert f.name not in params
            continue
        assert params[f.name]["in"] == "query"
        kind = {"integer": "integer", "number": "number", "boolean": "boolean"}.get(f.kind, "string")
        assert params[f.name]["schema"]["type"] == kind
        if f.kind == "enum":
            assert params[f.name]["schema"]["enum"] == list(f.choices)
    assert ("version" in params) == (cid in LAYERS)
    assert ("radius_community_m" in params) == (cid in DERIVED)


@pytest.mark.parametrize("cid", COLLECTIONS)
def test_feature_schemas_are_typed_from_the_layer(doc, cid):
    layer = LAYERS.get(cid) or DERIVED[cid]
    props = doc["components"]["schemas"][f"{cid}.properties"]
    assert list(props["properties"]) == layer.field_names
    assert props["required"] == [f.name for f in layer.fields if f.required]
    for f in layer.fields:
        schema = props["properties"][f.name]
        assert schema["type"] == {"integer": "integer", "number": "number", "boolean": "boolean"}.get(f.kind, "string")
        assert schema.get("nullable", False) == (not f.required)
    feature = doc["components"]["schemas"][f"{cid}.feature"]
    served = feature["properties"]["geometry"]["properties"]["type"]["enum"]  # one type: what GIS clients read
    assert served == {"centers": ["Point"], "roads": ["MultiLineString"]}.get(cid, ["MultiPolygon"])
    items = operation(doc, f"/collections/{cid}/items")["responses"]["200"]["content"]
    assert items["application/geo+json"]["schema"] == {"$ref": f"#/components/schemas/{cid}.collection"}
    assert "text/html" in items


@pytest.mark.parametrize("cid", COLLECTIONS)
def test_answers_conform_to_their_schemas(client, loaded, doc, cid):
    def check(url, path, media_type="application/json"):
        resp = client.get(url)
        assert resp.status_code == 200, url
        conforms(doc, operation(doc, path)["responses"]["200"]["content"][media_type]["schema"],
                 resp.get_json(force=True))

    check(f"/api/collections/{cid}/items?limit=100", f"/collections/{cid}/items", "application/geo+json")
    check(f"/api/collections/{cid}", f"/collections/{cid}")
    check(f"/api/collections/{cid}/queryables", f"/collections/{cid}/queryables", "application/schema+json")
    first = client.get(f"/api/collections/{cid}/items?limit=1").get_json(force=True)["features"]
    if first:
        check(f"/api/collections/{cid}/items/{first[0]['id']}", f"/collections/{cid}/items/{{featureId}}",
              "application/geo+json")
    if cid in LAYERS:
        check(f"/api/collections/{cid}/versions", f"/collections/{cid}/versions")
    check(f"/api/download/{cid}.geojson", f"/download/{cid}.{{ext}}", "application/geo+json")


def test_other_answers_conform(client, loaded, doc):
    for url, path in [("/api", "/"), ("/api/conformance", "/conformance"), ("/api/collections", "/collections"),
                      ("/api/summary?level=street", "/summary"), ("/api/collections/grids/diff", "/collections/grids/diff")]:
        conforms(doc, operation(doc, path)["responses"]["200"]["content"]["application/json"]["schema"],
                 client.get(url).get_json(force=True))
    features = client.get("/api/collections/grids/diff?f=geojson").get_json(force=True)
    conforms(doc, operation(doc, "/collections/grids/diff")["responses"]["200"]["content"]["application/geo+json"]
             ["schema"], features)
    error = client.get("/api/collections/grids/items?bbox=1,2").get_json()
    conforms(doc, doc["components"]["responses"]["400"]["content"]["application/json"]["schema"], error)


def test_uploads_are_described_with_every_form_field_and_answer(doc):
    op = operation(doc, "/uploads/grids", "post")
    assert op["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {**doc["components"]["securitySchemes"]
                                                                   ["bearerAuth"], "type": "http", "scheme": "bearer"}
    form = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    assert set(form["properties"]) == {"file", "message", "mode", "dry_run", "preview", "source_crs", "encoding",
                                       "coordinates", "lang", "confirm"}
    assert {"200", "201", "401", "403", "409", "412", "413", "415", "422"} <= set(op["responses"])
    assert "If-Match" in parameters(doc, op)
    restore = operation(doc, "/collections/grids/versions/{n}/restore", "post")
    assert restore["security"] == [{"bearerAuth": []}] and {"201", "401", "403", "404", "412"} <= set(
        restore["responses"])
    for path, ops in doc["paths"].items():  # reads need no token
        assert "security" not in ops.get("get", {}), path


def test_downloads_summary_and_diff_formats(doc):
    download = operation(doc, "/download/grids.{ext}")
    exts = parameters(doc, download)["ext"]["schema"]["enum"]
    assert exts == list(openapi.download_formats())
    assert set(download["responses"]["200"]["content"]) == {m for m, _ in openapi.download_formats().values()}
    assert set(operation(doc, "/summary")["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert parameters(doc, operation(doc, "/summary"))["f"]["schema"]["enum"] == ["json", "csv"]
    assert set(operation(doc, "/collections/grids/diff")["responses"]["200"]["content"]) == {
        "application/json", "application/geo+json"}


def test_service_doc_lists_every_path(client, doc):
    page = client.get("/api/openapi", headers={"Accept": "text/html"}).get_data(as_text=True)
    for path in doc["paths"]:
        assert f'data-path="{path}"' in page
