"""Uploads through the API: stored whole or not at all, reported, versioned, restorable, audited."""

import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import shapely
import shapely.affinity
from shapely import Polygon, box

from geodata.validate import validate
from server.audit import read as read_audit
from tests.factories import city_grids, grid_row, grids, six_grids, square


def geojson_file(gdf, name="grids.geojson"):
    return io.BytesIO(gdf.to_json(drop_id=True).encode()), name


def post(client, headers, gdf=None, layer="grids", file=None, **form):
    data = {**form, "file": file or geojson_file(gdf if gdf is not None else six_grids())}
    return client.post(f"/api/uploads/{layer}", data=data, headers=headers, content_type="multipart/form-data")


def test_an_upload_becomes_a_new_version(client, editor, store):
    resp = post(client, editor, message="first survey")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["version"], body["features"]) == (1, 6)
    assert body["report"]["errors"] == [] and body["report"]["format"] == "geojson"
    assert resp.headers["ETag"] == '"1"'
    v = store.current("grids")
    assert (v.author, v.message, v.features) == ("editor1", "first survey", 6)
    assert client.get("/api/collections/grids/items/g21").get_json(force=True)["properties"]["population"] == 600


def test_a_dry_run_reports_and_stores_nothing(client, editor, store):
    resp = post(client, editor, dry_run="1")
    assert resp.status_code == 200 and resp.get_json()["version"] is None
    assert store.current("grids") is None


def test_a_bad_file_is_refused_whole_with_its_report(client, editor, store, data_dir):
    post(client, editor)
    bad = grids([grid_row("a"), grid_row("a"), grid_row("b", grid_type="park")])
    resp = post(client, editor, bad)
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["error"]["code"] == "invalid_upload"
    problems = {(p["index"], p["field"]) for p in body["report"]["errors"]}
    assert problems == {(1, "grid_id"), (2, "grid_type")}
    assert store.current("grids").version == 1  # nothing stored
    assert [e["outcome"] for e in read_audit(data_dir)] == ["stored", "rejected"]


def test_if_match_makes_the_upload_conditional(client, editor, store):
    post(client, editor)
    stale = client.post("/api/uploads/grids", data={"file": geojson_file(six_grids())},
                        headers={**editor, "If-Match": '"0"'}, content_type="multipart/form-data")
    assert stale.status_code == 412 and stale.get_json()["error"]["code"] == "precondition_failed"
    fresh = client.post("/api/uploads/grids", data={"file": geojson_file(six_grids())},
                        headers={**editor, "If-Match": '"1"'}, content_type="multipart/form-data")
    assert fresh.status_code == 201 and fresh.get_json()["version"] == 2
    assert store.current("grids").version == 2


def test_concurrent_uploads_with_the_same_if_match_one_wins(data_dir, editor, store):
    from server import create_app

    # room for all twenty at once, checked in four job processes: they race in the store itself
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "THREADS": 22, "JOB_QUEUE": 20,
                      "JOB_PROCESSES": 4})
    post(app.test_client(), editor)
    statuses = []
    barrier = threading.Barrier(20)

    def attempt():
        client = app.test_client()
        barrier.wait()
        resp = client.post("/api/uploads/grids", data={"file": geojson_file(six_grids())},
                           headers={**editor, "If-Match": '"1"'}, content_type="multipart/form-data")
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    app.extensions["gridmap"].jobs.close()
    assert sorted(statuses) == [201] + [412] * 19
    assert store.current("grids").version == 2


def test_merge_replaces_only_the_features_it_names(client, editor, store):
    post(client, editor)
    change = grids([grid_row("g00", population=5), grid_row("new1")], [box(121.5, 29.8, 121.51, 29.81),
                                                                         box(121.6, 29.9, 121.61, 29.91)])
    resp = post(client, editor, change, mode="merge")
    assert resp.status_code == 201 and resp.get_json()["features"] == 7
    stored = store.read("grids").set_index("grid_id")
    assert stored.loc["g00", "population"] == 5 and stored.loc["g21", "population"] == 600
    assert "new1" in stored.index


def test_overlapping_grids_are_stored_with_a_warning(client, editor):
    overlapping = grids([grid_row("a"), grid_row("b")], [box(121.5, 29.8, 121.51, 29.81),
                                                         box(121.505, 29.8, 121.515, 29.81)])
    resp = post(client, editor, overlapping)
    assert resp.status_code == 201
    warnings = resp.get_json()["report"]["warnings"]
    assert any("同时属于两个网格" in w["message"] and w["key"] == "a" for w in warnings)  # Chinese by default


@pytest.mark.parametrize("form,status", [({"mode": "append"}, 400), ({"coordinates": "mars"}, 400)])
def test_bad_options_are_400(client, editor, form, status):
    assert post(client, editor, **form).status_code == status


def test_missing_file_and_unknown_layer(client, editor):
    resp = client.post("/api/uploads/grids", data={}, headers=editor, content_type="multipart/form-data")
    assert resp.status_code == 400 and "file" in resp.get_json()["error"]["message"]
    assert post(client, editor, layer="coverage").status_code in (400, 404)


def test_too_large_is_413(data_dir):
    from server import create_app

    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "MAX_UPLOAD_MB": 1})
    token = app.extensions["gridmap_users"].add("e", "editor")[1]
    big = io.BytesIO(b'{"type": "FeatureCollection", "features": []}' + b" " * (2 * 2**20)), "big.geojson"
    resp = app.test_client().post("/api/uploads/grids", data={"file": big}, content_type="multipart/form-data",
                                  headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "too_large"


def test_versions_and_restore(client, editor, store, data_dir):
    post(client, editor, message="six")
    post(client, editor, grids([grid_row("only")]), message="one", confirm="replace")
    listing = client.get("/api/collections/grids/versions").get_json()["versions"]
    assert [(v["version"], v["features"], v["message"]) for v in listing] == [(2, 1, "one"), (1, 6, "six")]
    assert "version=1" in listing[1]["links"][0]["href"]
    resp = client.post("/api/collections/grids/versions/1/restore", headers=editor)
    assert resp.status_code == 201 and resp.get_json() == {"version": 3, "features": 6, "restored": 1}
    assert store.read("grids")["grid_id"].tolist() == store.read("grids", 1)["grid_id"].tolist()
    assert store.current("grids").message == "restored version 1: six"
    assert client.post("/api/collections/grids/versions/9/restore", headers=editor).status_code == 404
    assert client.get("/api/collections/gaps/versions").status_code == 400
    assert read_audit(data_dir)[-2]["action"] == "restore"


def test_every_write_is_audited_with_who_and_from_where(client, editor, data_dir):
    post(client, editor)
    client.post("/api/uploads/grids", data={"file": (io.BytesIO(b"not json"), "x.geojson")}, headers=editor,
                content_type="multipart/form-data")
    entries = read_audit(data_dir)
    assert [(e["user"], e["action"], e["outcome"][:7]) for e in entries] == [
        ("editor1", "upload", "stored"), ("editor1", "upload", "refused")]
    assert entries[0]["remote_addr"] == "127.0.0.1" and entries[0]["version"] == 1


def test_merge_problems_point_into_the_uploaded_file(client, editor):
    post(client, editor)
    # the file's second feature (index 1) is bad; in the merged layer it would be the 7th
    change = grids([grid_row("g00"), grid_row("new1", grid_type="park")])
    errors = post(client, editor, change, mode="merge").get_json()["report"]["errors"]
    assert [(e["index"], e["key"]) for e in errors] == [(1, "new1")]



@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_a_repaired_bow_tie_is_reported_in_merge_and_replace(client, editor, store, mode):
    post(client, editor)
    # g21's square as a bow-tie: two triangles, half the square's area
    bowtie = Polygon([(121.52, 29.81), (121.53, 29.82), (121.53, 29.81), (121.52, 29.82), (121.52, 29.81)])
    change = six_grids() if mode == "replace" else grids([grid_row("g00", population=5), grid_row("g21")])
    change.geometry = [*change.geometry.iloc[:-1], bowtie]
    resp = post(client, editor, change, mode=mode, lang="en")
    assert resp.status_code == 201, resp.get_json()
    repaired = [(w["index"], w["key"]) for w in resp.get_json()["report"]["warnings"]
                if w["message"].startswith("invalid geometry repaired: Self-intersection")]
    assert repaired == [(len(change) - 1, "g21")]
    g21 = store.read("grids").set_index("grid_id").geometry["g21"]
    assert g21.is_valid and g21.area == pytest.approx(square(2, 1).area / 2)

def test_diff_between_versions_as_json_geojson_and_a_page(client, editor):
    post(client, editor)
    smaller = six_grids()
    smaller = smaller[smaller.grid_id != "g21"].assign(population=lambda d: d.population.where(d.grid_id != "g00", 7))
    post(client, editor, smaller, confirm="replace")  # one of six removed: 17 %
    body = client.get("/api/collections/grids/diff").get_json()  # the current version against the one before
    assert body["counts"] == {"added": 0, "removed": 1, "changed": 1, "unchanged": 4}
    assert body["removed"] == ["g21"] and body["changed"][0]["fields"] == ["population"]
    assert client.get("/api/collections/grids/diff?from=2&to=1").get_json()["added"] == ["g21"]
    features = client.get("/api/collections/grids/diff?f=geojson").get_json(force=True)["features"]
    assert {f["properties"]["status"] for f in features} == {"removed", "changed"}
    page = client.get("/history/grids/diff?to=2")
    assert page.status_code == 200 and 'data-status="removed"' in page.get_data(as_text=True)
    assert "/history/grids/diff?to=2" in client.get("/history/grids").get_data(as_text=True)


def _surveyed_grids(n: int):
    """``n`` grids g00.. with irregular, full-precision corners, as a survey delivers them."""
    rng = np.random.default_rng(7)
    shapes = [Polygon([(121.5 + 0.01 * i + dx, 29.8 + dy) for dx, dy in rng.uniform(0, 0.009, (6, 2))]).convex_hull
              for i in range(n)]
    return grids([grid_row(f"g{i:02d}") for i in range(n)], shapes)


def test_a_merge_that_edits_3_of_50_grids_diffs_as_3_changed_and_47_unchanged(client, editor):
    first = _surveyed_grids(50)
    post(client, editor, first)
    # the same 50 as another GIS writes them back: 7 decimals (~1 cm) and clockwise rings; 3 really edited
    again = first.set_geometry(shapely.reverse(shapely.set_precision(first.geometry.values, 1e-7)))
    again.loc[again.grid_id == "g03", "population"] = 1234
    again.loc[again.grid_id == "g17", "geometry"] = shapely.affinity.translate(first.geometry[17], xoff=0.0001)
    again.loc[again.grid_id == "g42", "geometry"] = first.geometry[42].buffer(0.0005)
    resp = post(client, editor, again, mode="merge")
    assert resp.status_code == 201, resp.get_json()
    impact = resp.get_json()["report"]["impact"]
    assert (impact["changed"], impact["unchanged"]) == (3, 47)
    body = client.get("/api/collections/grids/diff").get_json()
    assert body["counts"] == {"added": 0, "removed": 0, "changed": 3, "unchanged": 47}
    assert {c["key"]: (c["fields"], c["geometry_change"]) for c in body["changed"]} == {
        "g03": (["population"], None), "g17": ([], "moved"), "g42": ([], "reshaped")}
    moved = next(c for c in body["changed"] if c["key"] == "g17")
    assert moved["area_delta_m2"] == 0.0
    page = client.get("/history/grids/diff?lang=en").get_data(as_text=True)
    assert 'data-status="unchanged">Unchanged: 47<' in page
    assert "geometry moved" in page and "geometry reshaped" in page


@pytest.mark.parametrize("query,status", [("from=x", 400), ("from=9", 404), ("to=1", 400)])
def test_bad_diff_requests(client, editor, query, status):
    post(client, editor)
    assert client.get(f"/api/collections/grids/diff?{query}").status_code == status


def test_the_report_speaks_the_readers_language(client, editor):
    bad = grids([grid_row("a", grid_type="park")])
    zh = post(client, editor, bad).get_json()["report"]["errors"][0]["message"]
    assert zh.startswith("'park' 不是以下之一")
    en = client.post("/api/uploads/grids?lang=en", data={"file": geojson_file(bad)}, headers=editor,
                     content_type="multipart/form-data").get_json()["report"]["errors"][0]["message"]
    assert en.startswith("'park' is not one of")


# --- the replace guard (SPEC §4) ---------------------------------------------------------------

def test_one_streets_grids_replacing_a_city_need_confirmation(client, editor, store, data_dir):
    city = city_grids()  # 4 districts × 2 streets × 50 grids
    assert post(client, editor, city).status_code == 201
    one_street = city[city.street == "海曙区0号街道"]
    check = post(client, editor, one_street, dry_run="1")  # the check says what storing would do
    assert check.status_code == 200
    impact = check.get_json()["report"]["impact"]
    assert (impact["removed"], impact["added"], impact["changed"], impact["unchanged"]) == (350, 0, 0, 50)
    assert impact["needs_confirmation"] and impact["emptied_districts"] == ["北仑区", "江北区", "鄞州区"]

    refused = post(client, editor, one_street)
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["error"]["code"] == "replace_needs_confirmation"
    assert "350" in body["error"]["message"] and "北仑区、江北区、鄞州区" in body["error"]["message"]
    assert {d["district"]: d["removed"] for d in body["error"]["details"]} == {
        "北仑区": 100, "江北区": 100, "海曙区": 50, "鄞州区": 100}
    assert body["report"]["impact"]["removed"] == 350 and body["version"] == 1
    assert store.current("grids").version == 1 and len(store.read("grids")) == 400  # nothing stored
    entry = read_audit(data_dir)[-1]
    assert entry["outcome"] == "refused 409" and "350" in entry["error"]

    stored = post(client, editor, one_street, confirm="replace")
    assert stored.status_code == 201 and stored.get_json()["version"] == 2
    assert stored.get_json()["report"]["impact"]["confirmed"] is True
    assert len(store.read("grids")) == 50
    assert [e["outcome"] for e in read_audit(data_dir)] == ["stored", "dry run", "refused 409", "stored"]


@pytest.mark.parametrize("removed,status", [(2, 409), (1, 201)])
def test_the_guard_starts_at_ten_percent(client, editor, store, removed, status):
    rows = [grid_row(f"g{i:02d}") for i in range(20)]
    post(client, editor, grids(rows))
    resp = post(client, editor, grids(rows[removed:]))
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["report"]["impact"]["removed_percent"] == removed * 5
    assert store.current("grids").version == (1 if status == 409 else 2)


def test_a_district_losing_all_its_grids_needs_confirmation_below_ten_percent(client, editor, store):
    rows = [grid_row(f"g{i:02d}", district="江北区" if i == 19 else "海曙区") for i in range(20)]
    post(client, editor, grids(rows))
    resp = client.post("/api/uploads/grids?lang=en", data={"file": geojson_file(grids(rows[:19]))}, headers=editor,
                       content_type="multipart/form-data")
    assert resp.status_code == 409
    assert "1 district loses all its grids: 江北区" in resp.get_json()["error"]["message"]
    assert store.current("grids").version == 1


def test_merge_and_first_uploads_never_ask(client, editor, store):
    assert post(client, editor, grids([grid_row("only")])).status_code == 201  # from nothing
    post(client, editor, confirm="replace")  # six grids
    merged = post(client, editor, grids([grid_row("new")]), mode="merge")
    assert merged.status_code == 201
    impact = merged.get_json()["report"]["impact"]
    assert (impact["removed"], impact["added"], impact["needs_confirmation"]) == (0, 1, False)


def test_confirm_is_one_word(client, editor):
    post(client, editor)
    resp = post(client, editor, grids([grid_row("only")]), confirm="yes")
    assert resp.status_code == 400 and "confirm" in resp.get_json()["error"]["message"]


def test_source_crs_naming_a_server_file_is_400(client, editor, store):
    resp = post(client, editor, dry_run="1", source_crs="+proj=longlat +nadgrids=/etc/passwd")
    assert resp.status_code == 400
    assert "引用了文件或格网" in resp.get_json()["error"]["message"]  # Chinese by default


def test_upload_limits_come_from_the_settings(data_dir):
    from server import create_app

    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True,
                      "MAX_FEATURE_VERTICES": 4, "MAX_TEXT_CHARS": 11})
    headers = {"Authorization": "Bearer " + app.extensions["gridmap_users"].add("editor1", "editor")[1]}
    resp = post(app.test_client(), headers, dry_run="1")
    assert resp.status_code == 413
    assert resp.get_json()["error"]["message"] == "第 1 个要素（g00）有 5 个顶点（另有 5 个）；每个要素的上限为 4 个顶点"
    app.config["MAX_FEATURE_VERTICES"] = 5
    resp = post(app.test_client(), headers, dry_run="1")
    assert resp.status_code == 413 and resp.get_json()["error"]["details"][0]["field"] == "grid_type"  # industrial_park


def test_shapefile_whose_dbf_says_no_records_is_422_not_an_empty_layer(client, editor, store, tmp_path):
    import struct
    import zipfile

    six_grids().to_file(tmp_path / "grids.shp", engine="pyogrio")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        for part in ("shp", "shx", "dbf", "prj"):
            content = (tmp_path / f"grids.{part}").read_bytes()
            out.writestr(f"grids.{part}", content[:4] + struct.pack("<I", 0) + content[8:] if part == "dbf" else content)
    resp = post(client, editor, file=(io.BytesIO(archive.getvalue()), "grids.zip"))
    assert resp.status_code == 422 and "grids.dbf 有 0 条记录" in resp.get_json()["error"]["message"]
    assert store.current("grids") is None


def test_text_with_a_nul_is_422_naming_feature_and_field(client, editor, store):
    gdf = six_grids()
    gdf.loc[4, "instructor"] = "rt\x00x"
    resp = post(client, editor, gdf)
    assert resp.status_code == 422
    [error] = resp.get_json()["report"]["errors"]
    assert (error["index"], error["key"], error["field"]) == (4, "g11", "instructor")
    assert "U+0000" in error["message"]
    assert store.current("grids") is None


def hungry_upload(*args, **kwargs):
    return bytearray(64 * 2**30)  # what a hostile file's parsing might ask for


def test_an_upload_is_checked_in_a_job_within_its_memory_limit(client, editor, store, data_dir, monkeypatch):
    from server import uploads

    with monkeypatch.context() as patch:
        patch.setattr(uploads, "upload_to", hungry_upload)
        resp = post(client, editor)
    assert resp.status_code == 422 and "JOB_MEMORY_MB" in resp.get_json()["error"]["message"]
    assert store.current("grids") is None and read_audit(data_dir)[-1]["outcome"] == "refused 422"
    assert post(client, editor).status_code == 201  # the pool is still there for the next one
