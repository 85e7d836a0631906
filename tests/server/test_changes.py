"""Change sets over HTTP: what an edit on the map saves (several features and removals, one version),
its dry run, and the split and merge helpers the map cuts and joins grids with."""

from __future__ import annotations

import json
import re

import pytest
from shapely import box
from shapely.geometry import mapping, shape

from tests.factories import STEP, X0, Y0, grid_row, grids, six_grids, square
from tests.server.test_auth import csrf_token, sign_in
from tests.server.test_transactions import feature

CHANGES = "/api/collections/grids/changes"
ITEMS = "/api/collections/grids/items"
GEOJSON = "application/geo+json"


@pytest.fixture
def stored(store):
    return store.write("grids", six_grids(), author="survey", message="first survey")


def post(client, url, body, headers, **extra):
    return client.post(url, data=json.dumps(body, ensure_ascii=False),
                       headers={**headers, "Content-Type": GEOJSON, **extra})


def etag(client, key, headers) -> str:
    return client.get(f"{ITEMS}/{key}", headers=headers).headers["ETag"]


def shared_edge_moved(dx: float) -> tuple[dict, dict]:
    """g00 and g10 with the edge between them moved ``dx`` to the right, in both."""
    edge = X0 + STEP + dx
    return (feature("g00", box(X0, Y0, edge, Y0 + STEP), population=100),
            feature("g10", box(edge, Y0, X0 + 2 * STEP, Y0 + STEP), community="白云社区", street="白云街道",
                    population=200))


def test_a_shared_edge_moved_in_both_neighbours_is_one_version(client, editor, store, stored):
    g00, g10 = shared_edge_moved(STEP / 4)
    body = {"type": "FeatureCollection", "features": [g00, g10],
            "if_match": {"g00": etag(client, "g00", editor), "g10": etag(client, "g10", editor)}}
    resp = post(client, CHANGES, body, editor, **{"X-Gridmap-Message": "边界调整"})
    assert resp.status_code == 200, resp.get_json()
    assert [f["id"] for f in resp.get_json()["features"]] == ["g00", "g10"]
    version = store.current("grids")
    assert (version.version, version.author, version.message) == (2, "editor1", "边界调整")
    assert store.changes("grids", 1, 2).changed == {"g00", "g10"}
    assert resp.headers["X-Gridmap-Version"] == "2"


def test_a_shared_edge_moved_in_one_neighbour_only_is_refused_with_the_overlap(client, editor, store, stored):
    g00, _ = shared_edge_moved(STEP / 4)
    resp = post(client, CHANGES, {"type": "FeatureCollection", "features": [g00],
                                  "if_match": {"g00": etag(client, "g00", editor)}}, editor)
    assert resp.status_code == 422
    errors = resp.get_json()["report"]["errors"]
    assert errors and {e["key"] for e in errors} <= {"g00", "g10"}
    overlap = shape(errors[0]["geometry"])  # where it is, for the map to draw
    assert overlap.area == pytest.approx(STEP * STEP / 4, rel=0.01)
    assert store.current("grids").version == 1


def test_a_dry_run_answers_the_report_and_stores_nothing(client, editor, store, stored):
    g00, g10 = shared_edge_moved(STEP / 4)
    tags = {"g00": etag(client, "g00", editor), "g10": etag(client, "g10", editor)}
    fine = post(client, CHANGES + "?dry_run=1", {"type": "FeatureCollection", "features": [g00, g10],
                                                 "if_match": tags}, editor)
    assert fine.status_code == 200, fine.get_json()
    assert fine.get_json()["report"]["errors"] == [] and fine.get_json()["report"]["impact"]["changed"] == 2
    bad = post(client, CHANGES + "?dry_run=1", {"type": "FeatureCollection", "features": [g00],
                                                "if_match": tags}, editor)
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_upload"
    assert store.current("grids").version == 1


def test_a_split_is_one_version_that_keeps_the_key_and_adds_one(client, editor, store, stored):
    line = {"type": "LineString", "coordinates": [[X0 - 0.001, Y0 + STEP / 2], [X0 + STEP + 0.001, Y0 + STEP / 2]]}
    parts = post(client, "/api/collections/grids/split", {"geometry": mapping(square(0, 0)), "line": line}, editor)
    assert parts.status_code == 200, parts.get_json()
    halves = [f["geometry"] for f in parts.get_json()["features"]]
    assert len(halves) == 2 and sum(shape(h).area for h in halves) == pytest.approx(STEP * STEP)
    body = {"type": "FeatureCollection", "if_match": {"g00": etag(client, "g00", editor)},
            "features": [{"type": "Feature", "geometry": halves[0], "properties": grid_row("g00", population=60)},
                         {"type": "Feature", "geometry": halves[1], "properties": grid_row("g00b", population=40)}]}
    resp = post(client, CHANGES, body, editor)
    assert resp.status_code == 200, resp.get_json()
    changes = store.changes("grids", 1, 2)
    assert changes.changed == {"g00"} and changes.added == {"g00b"}


def test_a_line_that_does_not_cross_is_422(client, editor, stored):
    inside = {"type": "LineString", "coordinates": [[X0 + 0.002, Y0 + 0.005], [X0 + 0.008, Y0 + 0.005]]}
    resp = post(client, "/api/collections/grids/split", {"geometry": mapping(square(0, 0)), "line": inside}, editor)
    assert resp.status_code == 422 and "从边到边穿过" in resp.get_json()["error"]["message"]  # Chinese by default


def test_a_merge_is_one_version_with_the_union_and_the_other_removed(client, editor, store, stored):
    joined = post(client, "/api/collections/grids/union",
                  {"geometries": {"g00": mapping(square(0, 0)), "g10": mapping(square(1, 0))}}, editor)
    assert joined.status_code == 200, joined.get_json()
    geometry = joined.get_json()["geometry"]
    assert shape(geometry).symmetric_difference(box(X0, Y0, X0 + 2 * STEP, Y0 + STEP)).area < 1e-12
    body = {"type": "FeatureCollection", "removed": ["g10"],
            "if_match": {"g00": etag(client, "g00", editor), "g10": etag(client, "g10", editor)},
            "features": [{"type": "Feature", "geometry": geometry, "properties": grid_row("g00", population=300)}]}
    resp = post(client, CHANGES, body, editor)
    assert resp.status_code == 200, resp.get_json()
    changes = store.changes("grids", 1, 2)
    assert changes.changed == {"g00"} and changes.removed == {"g10"}
    assert store.current("grids").features == 5


def test_grids_that_do_not_meet_are_not_merged(client, editor, stored):
    resp = post(client, "/api/collections/grids/union",
                {"geometries": {"g00": mapping(square(0, 0)), "g20": mapping(square(2, 0))}}, editor)
    assert resp.status_code == 422


def test_removing_a_grid_alone_leaves_a_gap_and_is_refused(client, editor, store):
    keys = [f"n{col}{row}" for row in range(3) for col in range(3)]  # a block of nine: n11 in the middle
    store.write("grids", grids([grid_row(k) for k in keys], [square(int(k[1]), int(k[2])) for k in keys]),
                author="survey")
    body = {"type": "FeatureCollection", "removed": ["n11"], "if_match": {"n00": etag(client, "n00", editor)},
            "features": [feature("n00", square(0, 0), population=5)]}
    resp = post(client, CHANGES, body, editor)
    assert resp.status_code == 422, resp.get_json()
    assert store.current("grids").version == 1


def test_a_stale_etag_is_412(client, editor, store, stored):
    old = etag(client, "g00", editor)
    assert post(client, f"{ITEMS}/g00", {}, editor).status_code == 405  # (POST is not a feature's method)
    client.patch(f"{ITEMS}/g00", data=json.dumps({"properties": {"population": 1}}),
                 headers={**editor, "Content-Type": GEOJSON})
    g00, g10 = shared_edge_moved(STEP / 4)
    resp = post(client, CHANGES, {"type": "FeatureCollection", "features": [g00, g10],
                                  "if_match": {"g00": old, "g10": etag(client, "g10", editor)}}, editor)
    assert resp.status_code == 412 and "g00" in resp.get_json()["error"]["message"]
    assert store.current("grids").version == 2


def test_a_feature_sent_as_new_with_a_stored_key_is_409(client, editor, store, stored):
    g00, g10 = shared_edge_moved(STEP / 4)
    resp = post(client, CHANGES, {"type": "FeatureCollection", "features": [g00, g10],
                                  "if_match": {"g00": etag(client, "g00", editor)}}, editor)
    assert resp.status_code == 409 and "g10" in resp.get_json()["error"]["message"]


def test_a_viewer_is_refused(client, signed_in, store, stored):
    g00, g10 = shared_edge_moved(STEP / 4)
    body = {"type": "FeatureCollection", "features": [g00, g10]}
    assert post(client, CHANGES, body, {}).status_code == 401
    assert post(client, CHANGES, body, signed_in).status_code == 403
    assert post(client, "/api/collections/grids/split", {}, signed_in).status_code == 403
    assert store.current("grids").version == 1


def test_a_scoped_editor_is_refused_a_change_set_reaching_outside_the_scope(client, yuehu, store, stored):
    g00, g10 = shared_edge_moved(STEP / 4)  # g10 is 白云街道's
    resp = post(client, CHANGES, {"type": "FeatureCollection", "features": [g00, g10],
                                  "if_match": {"g00": etag(client, "g00", yuehu), "g10": etag(client, "g10", yuehu)}},
                yuehu)
    assert resp.status_code == 403 and "g10" in resp.get_json()["error"]["message"]
    assert store.current("grids").version == 1


def test_bad_change_sets_are_400(client, editor, stored):
    g00, _ = shared_edge_moved(0)
    for body in ({"type": "Feature"}, {"type": "FeatureCollection", "features": []},
                 {"type": "FeatureCollection", "features": [g00], "removed": ["g00"]},
                 {"type": "FeatureCollection", "features": [g00], "removed": "g10"},
                 {"type": "FeatureCollection", "features": [g00], "if_match": ["x"]}):
        assert post(client, CHANGES, body, editor).status_code == 400, body
    assert post(client, "/api/collections/coverage/changes", {"type": "FeatureCollection"}, editor).status_code == 405
    assert post(client, "/api/collections/centers/split", {}, editor).status_code == 400


def test_a_browser_needs_the_csrf_token(app, store, stored):
    app.extensions["gridmap_users"].add("web-editor", "editor", password="web-editor-pw")
    browser = app.test_client()
    sign_in(browser, "web-editor", "web-editor-pw")
    g00, g10 = shared_edge_moved(STEP / 4)
    body = {"type": "FeatureCollection", "features": [g00, g10]}
    forged = post(browser, CHANGES, body, {})
    assert forged.status_code == 400 and forged.get_json()["error"]["code"] == "csrf_failed"
    body["if_match"] = {"g00": etag(browser, "g00", {}), "g10": etag(browser, "g10", {})}
    resp = post(browser, CHANGES, body, {"X-CSRFToken": csrf_token(browser, "/dashboard")})
    assert resp.status_code == 200, resp.get_json()
    assert store.current("grids").author == "web-editor"


# --- the map page: editing tools for editors only ---------------------------------------------------

def edit_config(html: str) -> dict | None:
    found = re.search(r"gridmap\.editControl\(map_\w+, (\{.*?\})\);\n", html)
    return json.loads(found.group(1)) if found else None


def test_the_map_offers_editing_tools_to_editors_only(app, client, editor, signed_in, stored):
    assert edit_config(client.get("/").get_data(as_text=True)) is None
    viewer_page = client.get("/", headers=signed_in).get_data(as_text=True)
    assert edit_config(viewer_page) is None and "geoman" not in viewer_page
    page = client.get("/", headers=editor).get_data(as_text=True)
    config = edit_config(page)
    assert config["urls"]["changes"] == "/api/collections/{collection}/changes"
    assert "/assets/geoman/" in page and "gridmap-edit.js" in page  # served from node_modules, never a CDN
    grid_type = next(f for f in config["schemas"]["grids"]["fields"] if f["name"] == "grid_type")
    assert grid_type["kind"] == "enum" and "residential" in grid_type["choices"] and grid_type["required"]
    assert grid_type["label"] == "网格类型" and grid_type["choice_labels"]["residential"] != "residential"
    assert config["texts"]["save"] == "保存"


def test_the_editing_plugin_is_served_from_the_installed_package(client, editor):
    from server.assets import PACKAGES, asset_url

    if PACKAGES["geoman"].VERSION == "missing":
        pytest.skip("npm ci has not been run: node_modules/@geoman-io/leaflet-geoman-free is missing")
    with client.application.test_request_context():
        url = asset_url("geoman", "leaflet-geoman.min.js")
    resp = client.get(url)
    assert resp.status_code == 200 and b"pm" in resp.data
