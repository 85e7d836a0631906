"""The editing pages: /upload for editors, /history/<layer> for readers, restore for editors."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from geodata.i18n import text
from server import create_app
from geodata.validate import validate
from tests.factories import grid_row, grids, six_grids

XSS_MESSAGE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def users(app):
    store = app.extensions["gridmap_users"]
    for role in ("viewer", "editor"):
        store.add(f"{role}1", role, password=f"{role}-pw")
    return store


def form_token(page: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)


def sign_in(client, name):
    token = form_token(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"name": name, "password": name[:-1] + "-pw", "csrf_token": token})
    assert resp.status_code == 302, f"{name} could not sign in"


@pytest.fixture
def editor(client, users):
    sign_in(client, "editor1")
    return client


@pytest.fixture
def viewer(client, users):
    sign_in(client, "viewer1")
    return client


def write(store, gdf, message, author="editor1"):
    report = validate(gdf, "grids")
    assert report.ok, report.errors
    return store.write("grids", report.data, author=author, message=message)


@pytest.fixture
def three_versions(store):
    write(store, six_grids(), "first survey")
    write(store, grids([grid_row("only")]), XSS_MESSAGE)
    write(store, six_grids(), "back to six", author=None)
    return store


def version_rows(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-version="(\d+)"', page)]


def restore_actions(page: str) -> list[str]:
    return re.findall(r'<form class="restore" method="post" action="([^"]+)"', page)


# --- /upload ---------------------------------------------------------------------------------

def test_upload_sends_anonymous_readers_to_sign_in_and_back(client, users):
    resp = client.get("/upload")
    assert resp.status_code == 302
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/login" and parse_qs(location.query)["next"] == ["/upload"]
    resp = client.get("/upload?layer=centers")
    assert parse_qs(urlsplit(resp.headers["Location"]).query)["next"] == ["/upload?layer=centers"]


def test_signing_in_from_the_redirect_lands_on_the_upload_page(client, users):
    login = client.get("/upload").headers["Location"]
    token = form_token(client.get(login).get_data(as_text=True))
    resp = client.post(login, data={"name": "editor1", "password": "editor-pw", "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"] == "/upload"
    assert client.get("/upload").status_code == 200


def test_upload_is_forbidden_to_viewers(viewer):
    resp = viewer.get("/upload")
    assert resp.status_code == 403
    page = resp.get_data(as_text=True)
    assert "<h1>403" in page and "editor" in page and 'id="upload-form"' not in page


def test_upload_page_for_editors(editor):
    resp = editor.get("/upload")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    form = re.search(r'<form id="upload-form".*?</form>', page, re.S).group(0)
    # the CSRF token the API will check, inside the form upload.js sends
    assert re.search(r'<input type="hidden" name="csrf_token" value="[^"]{20,}">', form)
    assert re.findall(r'<option value="(\w+)" data-key="(\w+)"', form)[:3] == [
        ("grids", "grid_id"), ("centers", "center_id"), ("districts", "adcode")]
    assert 'accept=".geojson,.json,.zip,.gpkg,.kml"' in form and 'name="file"' in form
    def choices(select_id):
        return re.findall(r'<option value="(\w+)"', re.search(f'<select id="{select_id}".*?</select>', form, re.S)[0])

    assert choices("upload-mode") == ["replace", "merge"]
    assert choices("upload-coordinates") == ["wgs84", "gcj02", "bd09"]
    for name in ("message", "source_crs", "encoding"):
        assert f'name="{name}"' in form
    assert 'data-api="/api/uploads/__layer__"' in form  # the real API, which upload.js fills in
    assert 'data-history="/history/__layer__"' in form
    assert text("editing.check") in form and text("editing.store") in form
    for layer in ("grids", "centers", "districts"):
        assert f'href="/history/{layer}"' in page


def test_upload_page_loads_only_local_assets(editor):
    page = editor.get("/upload").get_data(as_text=True)
    sources = re.findall(r'<script[^>]+src="([^"]+)"', page) + re.findall(r'<link[^>]+href="([^"]+)"', page)
    assert any(re.fullmatch(r"/assets/leaflet/[^/]+/leaflet\.js", s) for s in sources)
    assert any(re.fullmatch(r"/assets/leaflet/[^/]+/leaflet\.css", s) for s in sources)
    assert "/static/upload.js" in sources and "/static/editing.css" in sources
    assert all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    for source in sources:
        assert editor.get(source).status_code == 200, source


def test_upload_page_speaks_english_when_asked(editor):
    page = editor.get("/upload?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Store as new version" in page and ">Check<" in page and "Service centres" in page
    texts = re.search(r'<script type="application/json" id="editing-texts">(.*?)</script>', page, re.S).group(1)
    assert '"editing.conflict": "Someone else uploaded a new version meanwhile. Check again."' in texts


def test_upload_page_preselects_a_layer(editor):
    page = editor.get("/upload?layer=centers").get_data(as_text=True)
    assert re.search(r'<option value="centers" data-key="center_id" selected>', page)
    assert not re.search(r'<option value="grids" data-key="grid_id" selected>', page)


# --- /history/<layer> ------------------------------------------------------------------------

def test_history_lists_versions_newest_first_with_downloads(viewer_client, three_versions):
    client = viewer_client  # a signed-in reader: restricted fields included
    resp = client.get("/history/grids")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert version_rows(page) == [3, 2, 1]
    downloads = re.findall(r'<a class="download" href="([^"]+)"', page)
    assert downloads == [f"/api/download/grids.geojson?version={n}" for n in (3, 2, 1)]
    body = client.get(downloads[1]).get_json(force=True)  # version 2 had one grid
    assert [f["properties"]["grid_id"] for f in body["features"]] == ["only"]
    assert "first survey" in page and "editor1" in page and "—" in page  # version 3 has no author
    row = re.search(r'<tr data-version="1".*?</tr>', page, re.S).group(0)
    assert re.search(r'<td class="num">6</td>', row)


def test_history_messages_are_escaped(client, three_versions):
    page = client.get("/history/grids").get_data(as_text=True)
    assert XSS_MESSAGE not in page
    assert html.escape(XSS_MESSAGE, quote=False) in page


def test_restore_buttons_only_for_editors(client, users, three_versions):
    assert restore_actions(client.get("/history/grids").get_data(as_text=True)) == []
    sign_in(client, "viewer1")
    assert restore_actions(client.get("/history/grids").get_data(as_text=True)) == []
    sign_in(client, "editor1")
    page = client.get("/history/grids").get_data(as_text=True)
    # every version but the current one, each posting to the restore API with the form's CSRF token
    assert restore_actions(page) == [f"/api/collections/grids/versions/{n}/restore" for n in (2, 1)]
    form = re.search(r'<form class="restore".*?</form>', page, re.S).group(0)
    assert 'data-if-match="3"' in form and form_token(form)
    assert "/static/upload.js" in page


def test_a_restore_form_restores(client, users, three_versions):
    sign_in(client, "editor1")
    page = client.get("/history/grids").get_data(as_text=True)
    form = re.search(r'<form class="restore"[^>]*data-version="2".*?</form>', page, re.S).group(0)
    action = re.search(r'action="([^"]+)"', form).group(1)
    if_match = re.search(r'data-if-match="(\d+)"', form).group(1)
    # what upload.js sends
    resp = client.post(action, data={"csrf_token": form_token(form)},
                       headers={"If-Match": f'"{if_match}"', "Accept": "application/json"})
    assert resp.status_code == 201 and resp.get_json()["restored"] == 2
    page = client.get("/history/grids").get_data(as_text=True)
    assert version_rows(page) == [4, 3, 2, 1]
    assert "restored version 2" in page
    stale = client.post(action, data={"csrf_token": form_token(form)}, headers={"If-Match": f'"{if_match}"'})
    assert stale.status_code == 412  # the page was out of date: nothing restored
    assert version_rows(client.get("/history/grids").get_data(as_text=True)) == [4, 3, 2, 1]


def test_history_of_an_empty_layer(client, users):
    sign_in(client, "editor1")
    page = client.get("/history/centers").get_data(as_text=True)
    assert text("editing.no_versions") in page and version_rows(page) == []
    assert 'href="/upload?layer=centers"' in page


def test_history_in_english(client, three_versions):
    page = client.get("/history/grids?lang=en").get_data(as_text=True)
    assert "Version history: Grids" in page and ">Download<" in page


@pytest.mark.parametrize("layer", ["nosuch", "coverage", "gaps"])
def test_unknown_layer_history_is_404(client, layer):
    resp = client.get(f"/history/{layer}")
    assert resp.status_code == 404
    page = resp.get_data(as_text=True)
    assert "<h1>404" in page and 'id="versions"' not in page


# --- times in GRIDMAP_TIMEZONE ---------------------------------------------------------------

class _At1358Utc(datetime):
    """The clock the store reads: 2026-12-01 13:58 UTC (21:58 in Shanghai)."""

    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 12, 1, 13, 58, tzinfo=timezone.utc).astimezone(tz)


def _version_time_shown(app, monkeypatch) -> tuple[str, str]:
    monkeypatch.setattr("geodata.store.sqlite.datetime", _At1358Utc)
    write(app.extensions["gridmap"].store, six_grids(), "first survey")
    client = app.test_client()
    shown = re.search(r'<time datetime="([^"]+)">([^<]+)</time>', client.get("/history/grids").get_data(as_text=True))
    return shown.group(1), shown.group(2)


def test_history_shows_times_in_shanghai_by_default(app, monkeypatch):
    machine, shown = _version_time_shown(app, monkeypatch)
    assert machine == "2026-12-01T13:58:00+00:00"  # the stored UTC time, for machines
    assert shown == "2026-12-01 21:58 (UTC+8)"


@pytest.mark.parametrize(("zone", "shown"), [("UTC", "2026-12-01 13:58 (UTC+0)"),
                                              ("America/New_York", "2026-12-01 08:58 (UTC-5)"),
                                              ("Asia/Kolkata", "2026-12-01 19:28 (UTC+5:30)")])
def test_the_timezone_setting_changes_the_times_shown(data_dir, monkeypatch, zone, shown):
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "TIMEZONE": zone})
    assert _version_time_shown(app, monkeypatch)[1] == shown


def test_the_api_keeps_utc(client, store, monkeypatch):
    monkeypatch.setattr("geodata.store.sqlite.datetime", _At1358Utc)
    write(store, six_grids(), "first survey")
    [version] = client.get("/api/collections/grids/versions").get_json()["versions"]
    assert version["time"] == "2026-12-01T13:58:00+00:00"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "UTC+8", ""])
def test_an_unknown_timezone_stops_the_start(data_dir, monkeypatch, zone):
    monkeypatch.setenv("GRIDMAP_TIMEZONE", zone)
    with pytest.raises(ValueError, match="GRIDMAP_TIMEZONE must be an IANA time zone"):
        create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})


def test_python_m_server_names_an_unknown_timezone_and_does_not_start(data_dir, monkeypatch, capsys):
    from server import __main__ as cli

    monkeypatch.setenv("GRIDMAP_TIMEZONE", "Asia/Shanghia")
    monkeypatch.setenv("GRIDMAP_DEMO", "0")
    assert cli.main(["--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "GRIDMAP_TIMEZONE" in err and "'Asia/Shanghia'" in err and "Traceback" not in err
