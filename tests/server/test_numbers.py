"""Every numeric parameter of every route takes ASCII digits only: other text is a 400 (412 for If-Match), not 500."""

import io

import pytest
from werkzeug.test import EnvironBuilder

from tests.factories import center_row, centers, six_grids

BAD = {"superscript two": "²", "arabic-indic three": "٣", "5,000 digits": "9" * 5000, "minus one": "-1"}

QUERY_PARAMETERS = [
    "/api/collections/grids/items?version={}",
    "/api/collections/grids/items?limit={}",
    "/api/collections/grids/items?offset={}",
    "/api/collections/grids/items?f=html&limit={}",
    "/api/collections/coverage/items?offset={}",
    "/api/collections/grids/items/g00?version={}",
    "/api/download/grids.geojson?version={}",
    "/api/download/grids.csv?version={}",
    "/api/collections/grids/diff?from={}",
    "/api/collections/grids/diff?to={}",
    "/history/grids/diff?from={}",
    "/history/grids/diff?to={}",
]


@pytest.fixture
def loaded(app, store):
    store.write("grids", six_grids(), author="t")
    store.write("grids", six_grids(), author="t")
    store.write("centers", centers([center_row("c1", "community")]), author="t")
    return {"Authorization": "Bearer " + app.extensions["gridmap_users"].add("ed", "editor")[1]}


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
@pytest.mark.parametrize("url", QUERY_PARAMETERS)
def test_query_parameters(client, loaded, url, bad):
    resp = client.get(url.format(bad))
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    if url.startswith("/api") and "f=html" not in url:
        assert resp.get_json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_restore_path_number(client, loaded, store, bad):
    resp = client.post(f"/api/collections/grids/versions/{bad}/restore", headers=loaded)
    assert resp.status_code == 400
    assert store.current("grids").version == 2  # nothing restored: '٣' is not 3


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
@pytest.mark.parametrize("url", ["/api/collections/grids/versions/1/restore", "/api/uploads/grids"])
def test_if_match(client, loaded, store, url, bad):
    file = {"file": (io.BytesIO(six_grids().to_json().encode()), "g.geojson")} if "uploads" in url else None
    resp = client.post(url, headers={**loaded, "If-Match": f'"{bad}"'}, data=file)
    assert resp.status_code == 412, resp.get_json()
    assert store.current("grids").version == 2


def test_if_match_with_a_raw_non_ascii_byte(client, loaded):
    environ = EnvironBuilder(path="/api/collections/grids/versions/1/restore", method="POST",
                             headers=loaded).get_environ()
    environ["HTTP_IF_MATCH"] = '"\xb2"'  # the byte 0xB2 as WSGI hands it over (latin-1)
    assert client.open(environ).status_code == 412
