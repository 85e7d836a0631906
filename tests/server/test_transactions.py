"""OGC API – Features Part 4 over HTTP: create, replace, update, delete, each one checked version."""

from __future__ import annotations

import json

import pytest
from shapely import box
from shapely.geometry import shape

from server.audit import read as read_audit
from tests.factories import X0, Y0, STEP, center_row, centers, grid_row, six_grids, square

ITEMS = "/api/collections/grids/items"
GEOJSON = "application/geo+json"


@pytest.fixture
def stored(store):
    return store.write("grids", six_grids(), author="survey", message="first survey")


def feature(grid_id: str, geometry=None, **overrides) -> dict:
    geometry = geometry if geometry is not None else square(0, 2)  # the row above g00
    return {"type": "Feature", "geometry": json.loads(json.dumps(geometry.__geo_interface__)),
            "properties": grid_row(grid_id, **overrides)}


def send(client, method: str, url: str, body, headers: dict, **extra):
    return client.open(url, method=method, data=json.dumps(body, ensure_ascii=False),
                       headers={**headers, "Content-Type": GEOJSON, **extra})


def test_post_creates_one_version_and_answers_the_feature_with_its_etag(client, editor, store, stored):
    resp = send(client, "POST", ITEMS, feature("g02", population=777), editor, **{"X-Gridmap-Message": "新网格"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.headers["Location"].endswith("/api/collections/grids/items/g02")
    body = resp.get_json()
    assert body["id"] == "g02" and body["properties"]["population"] == 777
    assert body["geometry"]["type"] == "MultiPolygon"  # served as GET serves it
    v = store.current("grids")
    assert (v.version, v.features, v.author, v.message) == (2, 7, "editor1", "新网格")
    assert store.changes("grids", 1, 2).added == {"g02"}
    fetched = client.get(f"{ITEMS}/g02", headers=editor)  # an editor sees every field: the feature as stored
    assert fetched.headers["ETag"] == resp.headers["ETag"]  # the one the write answered
    in_gk = client.get(f"{ITEMS}/g02?crs=EPSG:4549", headers=editor)
    assert in_gk.headers["ETag"] != resp.headers["ETag"]  # another representation, another tag


def test_post_of_a_collection_is_one_version(client, editor, store, stored):
    collection = {"type": "FeatureCollection",
                  "features": [feature("g02", square(0, 2)), feature("g12", square(1, 2))]}
    resp = send(client, "POST", ITEMS, collection, editor)
    assert resp.status_code == 201, resp.get_json()
    assert [f["id"] for f in resp.get_json()["features"]] == ["g02", "g12"]
    assert store.current("grids").version == 2 and store.count("grids") == 8


def test_post_of_an_existing_key_is_409_and_stores_nothing(client, editor, store, stored):
    resp = send(client, "POST", ITEMS, feature("g00"), editor)
    assert resp.status_code == 409
    assert "g00" in resp.get_json()["error"]["message"]
    assert store.current("grids").version == 1


def test_an_invalid_feature_is_422_with_the_uploads_report(client, editor, store, stored):
    bow_tie = {"type": "Polygon", "coordinates": [[[X0, Y0 + 0.03], [X0 + STEP, Y0 + 0.04], [X0 + STEP, Y0 + 0.03],
                                                   [X0, Y0 + 0.04], [X0, Y0 + 0.03]]]}
    bad = {**feature("g02"), "geometry": bow_tie}
    bad["properties"]["grid_type"] = "castle"
    resp = send(client, "POST", ITEMS, bad, editor)
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["error"]["code"] == "invalid_upload"
    assert any(e["field"] == "grid_type" for e in body["report"]["errors"])
    assert store.current("grids").version == 1


def test_put_replaces_a_feature_and_the_history_keeps_the_old_one(client, editor, store, stored):
    moved = box(X0, Y0, X0 + STEP, Y0 + STEP / 2)  # g00's lower half
    resp = send(client, "PUT", f"{ITEMS}/g00", feature("g00", moved, population=5), editor)
    assert resp.status_code == 200, resp.get_json()
    assert shape(resp.get_json()["geometry"]).equals(moved)
    assert store.read("grids").set_index("grid_id").loc["g00", "population"] == 5
    assert store.read("grids", 1).set_index("grid_id").loc["g00", "population"] == 100
    assert store.changes("grids", 1, 2).changed == {"g00"}


def test_put_with_another_key_in_the_body_is_400(client, editor, stored):
    resp = send(client, "PUT", f"{ITEMS}/g00", feature("g01"), editor)
    assert resp.status_code == 400 and "g00" in resp.get_json()["error"]["message"]


def test_patch_merges_properties_and_keeps_the_geometry(client, editor, store, stored):
    resp = send(client, "PATCH", f"{ITEMS}/g10", {"properties": {"population": 4321, "instructor": None}}, editor)
    assert resp.status_code == 200, resp.get_json()
    after = store.read("grids").set_index("grid_id").loc["g10"]
    assert after["population"] == 4321
    assert after["instructor"] is None or after["instructor"] != after["instructor"]  # removed: null / NaN
    assert after.geometry.equals(square(1, 0))
    assert store.current("grids").message == "updated g10"


def test_delete_removes_the_feature_in_a_new_version(client, editor, store, stored):
    resp = client.delete(f"{ITEMS}/g21", headers=editor)
    assert resp.status_code == 204
    assert store.count("grids") == 5 and store.changes("grids", 1, 2).removed == {"g21"}
    assert client.get(f"{ITEMS}/g21").status_code == 404
    assert client.delete(f"{ITEMS}/g21", headers=editor).status_code == 404


def test_if_match_with_a_stale_etag_is_412_and_the_current_one_is_accepted(client, editor, store, stored):
    etag = client.get(f"{ITEMS}/g00", headers=editor).headers["ETag"]
    assert send(client, "PATCH", f"{ITEMS}/g00", {"properties": {"population": 1}}, editor,
                **{"If-Match": etag}).status_code == 200
    stale = send(client, "PATCH", f"{ITEMS}/g00", {"properties": {"population": 2}}, editor, **{"If-Match": etag})
    assert stale.status_code == 412
    assert store.read("grids").set_index("grid_id").loc["g00", "population"] == 1
    fresh = client.get(f"{ITEMS}/g00", headers={**editor, "Accept-Encoding": "gzip"}).headers["ETag"]
    assert fresh.endswith(':gzip"')
    assert send(client, "PATCH", f"{ITEMS}/g00", {"properties": {"population": 3}}, editor,
                **{"If-Match": fresh}).status_code == 200  # as the client received it, gzipped or not


def test_an_edit_of_another_feature_leaves_an_etag_valid(client, editor, stored):
    etag = client.get(f"{ITEMS}/g00", headers=editor).headers["ETag"]
    assert send(client, "PATCH", f"{ITEMS}/g11", {"properties": {"population": 9}}, editor).status_code == 200
    assert send(client, "DELETE", f"{ITEMS}/g00", {}, editor, **{"If-Match": etag}).status_code == 204


def test_a_write_without_if_match_applies_to_the_current_feature(client, editor, store, stored):
    send(client, "PATCH", f"{ITEMS}/g00", {"properties": {"population": 1}}, editor)
    resp = send(client, "PATCH", f"{ITEMS}/g00", {"properties": {"name": "改名"}}, editor)  # as QGIS: no If-Match
    assert resp.status_code == 200
    row = store.read("grids").set_index("grid_id").loc["g00"]
    assert (row["population"], row["name"]) == (1, "改名")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_need_an_editor(client, signed_in, stored, method):
    url = ITEMS if method == "POST" else f"{ITEMS}/g00"
    assert send(client, method, url, feature("g00"), {}).status_code == 401
    resp = send(client, method, url, feature("g00"), signed_in)
    assert resp.status_code == 403 and "editor" in resp.get_json()["error"]["message"]


def test_computed_collections_cannot_be_written(client, editor, stored):
    resp = send(client, "POST", "/api/collections/coverage/items", feature("g02"), editor)
    assert resp.status_code == 405
    assert "POST" not in resp.headers["Allow"]


def test_options_says_what_the_caller_may_do(client, editor, signed_in, stored):
    assert set(client.options(ITEMS).headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert "POST" not in client.options(ITEMS, headers=signed_in).headers["Allow"]
    assert "POST" in client.options(ITEMS, headers=editor).headers["Allow"].split(", ")
    allowed = client.options(f"{ITEMS}/g00", headers=editor).headers["Allow"].split(", ")
    assert {"PUT", "PATCH", "DELETE"} <= set(allowed) and "POST" not in allowed
    assert "PUT" not in client.options("/api/collections/coverage/items/g00", headers=editor).headers["Allow"]


def test_bad_bodies_are_400(client, editor, stored):
    assert client.post(ITEMS, data="{not json", headers={**editor, "Content-Type": GEOJSON}).status_code == 400
    assert send(client, "POST", ITEMS, {"type": "Point", "coordinates": [1, 2]}, editor).status_code == 400
    no_key = feature("g02")
    del no_key["properties"]["grid_id"]
    resp = send(client, "POST", ITEMS, no_key, editor)
    assert resp.status_code == 400 and "grid_id" in resp.get_json()["error"]["message"]
    resp = send(client, "PATCH", f"{ITEMS}/g00", {"properties": {"grid_id": "g99"}}, editor)
    assert resp.status_code == 400


def test_conformance_declares_part_4(client):
    classes = client.get("/api/conformance").get_json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update" in classes


def test_each_write_is_audited_with_its_features(client, editor, data_dir, stored):
    send(client, "PATCH", f"{ITEMS}/g00", {"properties": {"population": 1}}, editor)
    send(client, "POST", ITEMS, feature("g00"), editor)  # 409
    entries = [e for e in read_audit(data_dir) if e["action"] == "edit"]
    assert [(e["method"], e["outcome"], e["features"], e.get("version")) for e in entries] == [
        ("PATCH", "stored", ["g00"], 2), ("POST", "refused 409", ["g00"], None)]
    assert "already has" in entries[1]["error"]


def test_centres_are_edited_too(client, editor, store):
    store.write("centers", centers([center_row("c1", "community")]), author="x")
    moved = {"geometry": {"type": "Point", "coordinates": [X0 + 0.015, Y0 + 0.005]}}
    resp = send(client, "PATCH", "/api/collections/centers/items/c1", moved, editor)
    assert resp.status_code == 200, resp.get_json()
    assert store.read("centers").geometry.iloc[0].x == pytest.approx(X0 + 0.015)


# --- area-scoped editors ---------------------------------------------------------------------------

def test_a_scoped_editor_edits_inside_the_scope(client, yuehu, store, stored):
    resp = send(client, "PATCH", f"{ITEMS}/g00", {"properties": {"population": 1}}, yuehu)
    assert resp.status_code == 200, resp.get_json()
    assert store.current("grids").author == "yuehu"


@pytest.mark.parametrize("method, url, body", [
    ("PATCH", f"{ITEMS}/g10", {"properties": {"population": 1}}),  # another street's grid
    ("PATCH", f"{ITEMS}/g00", {"properties": {"street": "白云街道", "community": "白云社区"}}),  # moved out by fields
    ("PATCH", f"{ITEMS}/g00", {"geometry": square(1, 1).__geo_interface__}),  # moved out by its shape
    ("DELETE", f"{ITEMS}/g10", {}),
    ("POST", ITEMS, feature("g02", square(1, 2), street="白云街道", community="白云社区")),
])
def test_a_scoped_editor_is_refused_outside_the_scope_naming_the_features(client, yuehu, store, stored, method, url,
                                                                         body):
    resp = send(client, method, url, json.loads(json.dumps(body)), yuehu)
    assert resp.status_code == 403, resp.get_json()
    message = resp.get_json()["error"]["message"]
    assert "可编辑范围" in message and ("g10" in message or "g00" in message or "g02" in message)  # in Chinese by default
    assert store.current("grids").version == 1


def test_a_scoped_editor_edits_roads_by_their_geometry(client, yuehu, store, stored):
    """Roads carry no unit fields: a road is inside 月湖街道 when it lies on its grids (g00, g01)."""
    def road(road_id, x0, x1):
        line = {"type": "LineString", "coordinates": [[X0 + x0 * STEP, Y0 + STEP], [X0 + x1 * STEP, Y0 + STEP]]}
        return {"type": "Feature", "properties": {"road_id": road_id, "name": "演示路"}, "geometry": line}

    inside = send(client, "POST", "/api/collections/roads/items", road("r1", 0.2, 0.8), yuehu)
    assert inside.status_code == 201, inside.get_json()
    across = send(client, "POST", "/api/collections/roads/items", road("r2", 0.5, 1.5), yuehu)  # into 白云街道
    assert across.status_code == 403 and "r2" in across.get_json()["error"]["message"]
    assert list(store.read("roads")["road_id"]) == ["r1"]


def test_a_scoped_editor_merges_an_upload_inside_the_scope_but_never_replaces_or_restores(client, yuehu, store,
                                                                                        stored):
    import io as bytes_io

    def upload(gdf, mode):
        data = {"file": (bytes_io.BytesIO(gdf.to_json(drop_id=True).encode()), "grids.geojson"), "mode": mode}
        return client.post("/api/uploads/grids", data=data, headers=yuehu, content_type="multipart/form-data")

    layer = six_grids()
    layer["population"] = 9
    assert upload(layer.iloc[[0, 3]], "merge").status_code == 201  # g00 and g01
    refused = upload(layer.iloc[[0, 1]], "merge")  # g10 is 白云街道's
    assert refused.status_code == 403 and "g10" in refused.get_json()["error"]["message"]
    assert upload(layer, "replace").status_code == 403
    restore = client.post("/api/collections/grids/versions/1/restore", headers=yuehu)
    assert restore.status_code == 403 and "需要不限范围的编辑" in restore.get_json()["error"]["message"]
    assert store.current("grids").version == 2


# --- the tiling stays valid -------------------------------------------------------------------------

def test_an_edit_that_makes_an_overlap_is_refused_with_the_report(client, editor, store, stored):
    wider = box(X0, Y0, X0 + 1.5 * STEP, Y0 + STEP)  # g00 reaching half across g10
    resp = send(client, "PATCH", f"{ITEMS}/g00", {"geometry": wider.__geo_interface__}, editor)
    assert resp.status_code == 422, resp.get_json()
    errors = resp.get_json()["report"]["errors"]
    assert errors and all(e["key"] in ("g00", "g10") for e in errors)
    assert store.current("grids").version == 1


def test_a_problem_that_was_there_before_does_not_stop_an_edit(client, editor, store):
    layer = six_grids()
    layer.loc[layer["grid_id"] == "g20", "geometry"] = box(X0 + 2 * STEP, Y0, X0 + 3 * STEP, Y0 + 1.5 * STEP)
    store.write("grids", layer, author="survey")  # g20 already overlaps g21
    for grid in ("g00", "g20"):  # far from it, and on it
        resp = send(client, "PATCH", f"{ITEMS}/{grid}", {"properties": {"population": 7}}, editor)
        assert resp.status_code == 200, resp.get_json()
    assert store.current("grids").version == 3


def test_a_merge_upload_of_one_grid_checks_only_the_districts_it_touches(store):
    from geodata.coverage import tiling_problems
    from geodata.uploads import _touched_districts

    layer = six_grids()
    layer.loc[layer["grid_id"].isin(["g20", "g21"]), "district"] = "江北区"  # the right column: another district
    chosen = _touched_districts(layer, layer, {"g00"}, "grid_id")
    assert sorted(chosen["grid_id"]) == ["g00", "g01", "g10", "g11"]  # 海曙区's: g00's district, none of 江北区
    beside = _touched_districts(layer, layer, {"g10"}, "grid_id")  # g10 meets g20: both districts
    assert sorted(beside["grid_id"]) == sorted(layer["grid_id"])
    assert tiling_problems(chosen).empty
