"""Restricted fields and version authors: shown to signed-in readers only, in every route; private files 0600.

The layout: six grids, each with the factories' instructor 王建国, branch 青石社区第一党支部 and 40
party members.  Version 2 gives g00 another instructor (张三, a change only signed-in readers see)
and renames g01 (a change everyone sees).
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile

import pytest

from geodata.validate import validate
from server import create_app
from tests.factories import center_row, centers, six_grids

RESTRICTED = ("instructor", "party_branch", "party_members")
SECRETS = ("王建国", "张三", "第一党支部")  # restricted values in the layout
AUTHOR = "surveyor7"
FORMATS = ("geojson", "gpkg", "zip", "csv", "kml")


@pytest.fixture
def loaded(store):
    first = six_grids()
    store.write("grids", validate(first, "grids").data, author=AUTHOR, message="first survey")
    second = first.copy()
    second.loc[second.grid_id == "g00", "instructor"] = "张三"
    second.loc[second.grid_id == "g01", "name"] = "新名字"
    store.write("grids", validate(second, "grids").data, author=AUTHOR, message="second survey")
    store.write("centers", validate(centers([center_row("c1", "community")]), "centers").data, author=AUTHOR)
    return store


def leaks(body: bytes | str, names=RESTRICTED, values=SECRETS) -> list[str]:
    """The restricted names (or their 10-byte Shapefile cuts) and values found in ``body``."""
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    return [w for w in {*names, *(n[:10] for n in names), *values} if w in text]


def file_text(data: bytes, fmt: str) -> str:
    """What a downloaded file says, as text: a zip's parts unpacked, a GeoPackage's bytes as they are."""
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            data = b"".join(archive.read(name) for name in archive.namelist())
    return data.decode("utf-8", "replace")


# --- features: items, single features, derived collections -----------------------------------

@pytest.mark.parametrize("url", [
    "/api/collections/grids/items", "/api/collections/grids/items?version=1",
    "/api/collections/grids/items?f=html", "/api/collections/grids/items/g00",
    "/api/collections/grids/items/g00?version=1", "/api/collections/grids/items/g00?f=html",
    "/api/collections/coverage/items", "/api/collections/coverage/items/g00",
    "/api/collections/coverage/items?f=html", "/api/collections/streets/items",
    "/api/collections/communities/items", "/api/collections/communities/items?f=html",
])
def test_anonymous_readers_get_no_restricted_field(client, viewer_client, loaded, url):
    resp = client.get(url)
    assert resp.status_code == 200
    assert leaks(resp.data) == []
    signed_in = viewer_client.get(url)
    assert "party_members" in signed_in.get_data(as_text=True)  # (streets and communities: their sums)
    if "grids" in url or "coverage" in url:
        assert "青石社区第一党支部" in signed_in.get_data(as_text=True)


def test_a_signed_in_browser_sees_them_too(client, loaded, app):
    app.extensions["gridmap_users"].add("li", "viewer", password="li-pw")
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"name": "li", "password": "li-pw", "csrf_token": token}).status_code == 302
    props = client.get("/api/collections/grids/items/g00").get_json(force=True)["properties"]
    assert (props["instructor"], props["party_members"]) == ("张三", 40)


@pytest.mark.parametrize("param", ["instructor=王建国", "instructor=nobody", "party_members=40"])
def test_filtering_by_a_restricted_field_tells_an_anonymous_reader_nothing(client, viewer_client, loaded, param):
    """Unknown parameter, whatever the value: the answer says nothing of the values."""
    for url in (f"/api/collections/grids/items?{param}", f"/api/download/grids.csv?{param}"):
        resp = client.get(url)
        assert resp.status_code == 400 and leaks(resp.data, names=()) == []
        assert resp.get_json()["error"]["message"].startswith(f"未知参数 '{param.split('=')[0]}'")  # Chinese by default
        assert "instructor" not in resp.get_json()["error"]["message"].split("；")[1]  # not offered either
    assert viewer_client.get(f"/api/collections/grids/items?{param}").status_code == 200


# --- downloads -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("query", ["", "?version=1", "?street=月湖街道"])
def test_downloads_in_every_format_and_version_leave_them_out(client, viewer_client, loaded, fmt, query):
    resp = client.get(f"/api/download/grids.{fmt}{query}")
    assert resp.status_code == 200
    assert leaks(file_text(resp.data, fmt)) == []
    signed_in = viewer_client.get(f"/api/download/grids.{fmt}{query}")
    assert "王建国" in file_text(signed_in.data, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_derived_downloads_leave_them_out(client, loaded, fmt):
    for collection in ("coverage", "streets", "communities"):
        assert leaks(file_text(client.get(f"/api/download/{collection}.{fmt}").data, fmt)) == [], collection


# --- describing the data: queryables, OpenAPI, collection pages --------------------------------

def test_queryables_and_the_api_description_leave_them_out(client, viewer_client, loaded):
    for c, expected in ((client, False), (viewer_client, True)):
        queryables = c.get("/api/collections/grids/queryables").get_json(force=True)
        assert ("instructor" in queryables["properties"]) is expected
        assert ("instructor" in c.get("/api/collections/grids/queryables?f=html").get_data(as_text=True)) is expected
        assert ("<code>party_members</code>" in c.get("/api/collections/grids?f=html").get_data(as_text=True)) \
            is expected
        doc = c.get("/api/openapi").get_json(force=True)
        filters = [p["$ref"].rsplit("/", 1)[1] for p in doc["paths"]["/collections/grids/items"]["get"]["parameters"]
                   if "$ref" in p]
        assert ("grids.instructor" in filters) is expected
        assert ("party_members" in doc["components"]["schemas"]["streets.properties"]["properties"]) is expected
    assert leaks(json.dumps(client.get("/api/openapi").get_json(force=True), ensure_ascii=False), values=()) == []


# --- the map ---------------------------------------------------------------------------------

@pytest.mark.parametrize("layer", ["coverage", "streets", "staffing", "centers"])
def test_map_layers_leave_them_out(client, loaded, layer):
    resp = client.get(f"/map/data/{layer}.geojson", headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200 and leaks(resp.data) == []


def test_a_map_layer_with_a_restricted_field_has_a_variant_per_audience(app, client, viewer_client, loaded,
                                                                        monkeypatch):
    from maps import coverage_map

    spec = coverage_map.MAP_DATA["streets"]
    monkeypatch.setitem(coverage_map.MAP_DATA, "streets", spec.__class__(
        spec.collection, (*spec.fields, "party_members"), spec.tolerance, spec.kinds))
    plain = {"Accept-Encoding": "identity"}
    signed_in = viewer_client.get("/map/data/streets.geojson", headers=plain)  # cached first
    assert "party_members" in signed_in.get_data(as_text=True)
    anonymous = client.get("/map/data/streets.geojson", headers={**plain, "If-None-Match": signed_in.headers["ETag"]})
    assert anonymous.status_code == 200 and leaks(anonymous.data) == []
    assert anonymous.headers["ETag"] != signed_in.headers["ETag"]
    assert {"Cookie", "Authorization"} <= set(anonymous.vary)


# --- caches and ETags never cross audiences ----------------------------------------------------

@pytest.mark.parametrize("url", ["/api/collections/grids/items", "/api/collections/grids/items/g00",
                                 "/api/collections/coverage/items?limit=3", "/api/download/grids.csv",
                                 "/api/download/grids.geojson", "/api/download/grids.kml?version=1",
                                 "/api/collections/grids/queryables", "/api/collections/grids",
                                 "/api/collections/grids/versions"])
def test_a_signed_in_answer_is_never_served_to_an_anonymous_reader(client, viewer_client, loaded, url):
    """The signed-in reader asks first (filling every cache); the anonymous one then sends its ETag."""
    signed_in = viewer_client.get(url)
    assert signed_in.status_code == 200
    etag = signed_in.headers.get("ETag")
    anonymous = client.get(url, headers={"If-None-Match": etag} if etag else {})
    assert anonymous.status_code == 200, "a 304 would tell the reader to keep the signed-in copy"
    assert leaks(anonymous.data) == [] and AUTHOR not in anonymous.get_data(as_text=True)
    assert anonymous.headers.get("ETag") != etag
    for resp in (signed_in, anonymous):
        assert {"Cookie", "Authorization"} <= set(resp.vary), url


# --- versions: authors and the diff ----------------------------------------------------------

def test_version_authors_are_for_signed_in_readers(client, viewer_client, loaded):
    anonymous = client.get("/api/collections/grids/versions").get_json()
    assert all("author" not in v for v in anonymous["versions"]) and len(anonymous["versions"]) == 2
    assert AUTHOR not in client.get("/history/grids").get_data(as_text=True)
    signed_in = viewer_client.get("/api/collections/grids/versions").get_json()
    assert [v["author"] for v in signed_in["versions"]] == [AUTHOR, AUTHOR]
    assert AUTHOR in viewer_client.get("/history/grids").get_data(as_text=True)


def test_the_diff_shows_no_change_to_a_restricted_field(client, viewer_client, loaded):
    anonymous = client.get("/api/collections/grids/diff?from=1&to=2").get_json()
    assert [c["key"] for c in anonymous["changed"]] == ["g01"]  # g00 changed only its instructor
    assert leaks(json.dumps(anonymous)) == []
    assert leaks(client.get("/api/collections/grids/diff?from=1&to=2&f=geojson").data) == []
    page = client.get("/history/grids/diff?from=1&to=2").get_data(as_text=True)
    assert leaks(page) == [] and AUTHOR not in page
    signed_in = viewer_client.get("/api/collections/grids/diff?from=1&to=2").get_json()
    assert {c["key"]: c["fields"] for c in signed_in["changed"]} == {"g00": ["instructor"], "g01": ["name"]}


# --- the setting -----------------------------------------------------------------------------

def test_the_restricted_fields_are_a_setting(data_dir, loaded):
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "RESTRICTED_FIELDS": "name"})
    props = app.test_client().get("/api/collections/grids/items/g00").get_json(force=True)["properties"]
    assert "name" not in props and props["instructor"] == "张三"
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "RESTRICTED_FIELDS": ""})
    assert "instructor" in app.test_client().get("/api/collections/grids/items/g00").get_json(force=True)["properties"]


# --- private files ---------------------------------------------------------------------------

def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # what most services run with: new files readable by everyone
    yield
    os.umask(old)


def test_audit_log_secret_key_and_users_are_the_services_alone(data_dir, open_umask):
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})
    token = app.extensions["gridmap_users"].add("e", "editor")[1]
    resp = app.test_client().post("/api/uploads/grids", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 400  # refused, and audited
    for name in ("audit.log", "secret_key", "users.json"):
        assert mode(data_dir / name) == 0o600, name


def test_private_files_made_before_are_tightened_at_start(data_dir, open_umask):
    create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})  # makes the secret key
    (data_dir / "users.json").write_text('{"users": []}')
    (data_dir / "audit.log").write_text("")
    for name in ("audit.log", "secret_key", "users.json"):
        (data_dir / name).chmod(0o644)
    create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})
    for name in ("audit.log", "secret_key", "users.json"):
        assert mode(data_dir / name) == 0o600, name
