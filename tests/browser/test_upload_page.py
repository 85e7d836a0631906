"""The upload page in a real browser: sign in, check a file, read its report and map, store it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from shapely import box

from geodata.i18n import text
from tests import factories

from .conftest import XSS_IMG, _serve

pytestmark = pytest.mark.browser

PASSWORD = "upload-test-pw"
COLOURS = {"error": "#d62728", "warning": "#ff7f0e", "ok": "#1f77b4"}


@pytest.fixture(scope="module")
def editing_data(tmp_path_factory):
    """No grids yet; one district, 海曙区, exactly under the six test grids; an editor with a password.

    Returns the data directory and the editor's API token (for uploads "by someone else")."""
    import geopandas as gpd

    from geodata.store import open_store
    from geodata.validate import validate
    from server.users import UserStore

    data_dir = tmp_path_factory.mktemp("editing-data")
    (data_dir / "locks").mkdir()
    _, token = UserStore(data_dir).add("editor1", "editor", password=PASSWORD)
    x0, y0, step = factories.X0, factories.Y0, factories.STEP
    districts = gpd.GeoDataFrame({"adcode": ["330203"], "name": ["海曙区"]},
                                 geometry=[box(x0, y0, x0 + 3 * step, y0 + 2 * step)], crs="EPSG:4326")
    report = validate(districts, "districts")
    assert report.ok, report.errors
    open_store(data_dir).write("districts", report.data, author="browser-tests")
    return data_dir, token


@pytest.fixture(scope="module")
def editing_server(editing_data, tmp_path_factory):
    yield from _serve(editing_data[0], tmp_path_factory.mktemp("logs") / "editing-server.log", demo=False)


def upload_by_script(server, token, path, **form):
    """Another editor's upload, through the API with a token."""
    session = requests.Session()
    session.trust_env = False
    with open(path, "rb") as f:
        return session.post(server.url("/api/uploads/grids"), files={"file": (path.name, f)}, data=form,
                            headers={"Authorization": f"Bearer {token}"}, timeout=60)


def api(server, path, token=None):
    session = requests.Session()
    session.trust_env = False
    headers = {"Authorization": f"Bearer {token}"} if token else {}  # signed in: authors are shown
    return session.get(server.url(path), headers=headers, timeout=30).json()


def geojson_file(tmp_path, name, gdf):
    path = tmp_path / name
    path.write_text(gdf.to_json(drop_id=True), encoding="utf-8")
    return path


def sign_in_and_open_upload(tab, server):
    page = tab.page
    page.goto(server.url("/upload"))
    assert page.url.startswith(server.url("/login?next="))  # sent to sign in first
    page.fill('input[name="name"]', "editor1")
    page.fill('input[name="password"]', PASSWORD)
    page.click('form.login button[type="submit"]')
    page.wait_for_url(server.url("/upload"))
    page.wait_for_selector("#upload-form")


def check(page, path, state):
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-check")
    page.wait_for_selector(f'#upload-status[data-state="{state}"]')


def problem_rows(page) -> list[list[str]]:
    return page.eval_on_selector_all(
        "#upload-problems tbody tr[data-kind]",
        "rows => rows.map(r => [r.dataset.kind, ...Array.from(r.cells, c => c.textContent)])")


def stroke_colours(page) -> list[str]:
    return page.eval_on_selector_all("#preview-map path.leaflet-interactive",
                                     "paths => paths.map(p => p.getAttribute('stroke'))")


def assert_quiet(tab, *answered: int):
    """No page errors, no console errors but Chromium's own line for each API answer ``answered`` expects
    (it logs every 4xx a fetch gets, e.g. the 422 of a dry run that found errors), nothing fetched from afar."""
    logged = re.compile(r"Failed to load resource: the server responded with a status of (\d+) .*/api/uploads/")
    unexpected = [e for e in tab.console_errors if not ((m := logged.match(e)) and int(m.group(1)) in answered)]
    assert unexpected == [] and tab.page_errors == [], (tab.console_errors, tab.page_errors)
    assert [url for url in tab.requests if not url.startswith("http://127.0.0.1:")] == []


def test_check_reports_errors_then_a_fixed_file_is_stored(tab, editing_server, editing_data, tmp_path):
    page = tab.page
    sign_in_and_open_upload(tab, editing_server)
    assert page.is_hidden("#upload-store")

    bad = factories.six_grids()
    bad.loc[3, "grid_id"] = "g00"  # a duplicate key
    check(page, geojson_file(tmp_path, "bad.geojson", bad), "invalid")
    assert page.text_content("#upload-status") == text("editing.has_errors")
    rows = problem_rows(page)
    # the fourth feature (index 3 in the report) is numbered from 1 for people, and names the first by its number
    assert [r[:5] for r in rows] == [["error", text("editing.error"), "4", "g00", "grid_id"]]
    assert "grid_id 'g00' 重复（第 1 个要素已使用）" in rows[0][5]  # the report speaks the page's language
    assert page.is_hidden("#upload-store")  # nothing to store
    assert page.text_content('dd[data-field="features"]') == "6"
    assert page.text_content('dd[data-field="errors"]') == "1"

    # the map shows the six parsed features, the duplicate in red, the others blue
    preview = page.locator("#preview-map")
    assert preview.get_attribute("data-features") == "6" and preview.get_attribute("data-error-features") == "1"
    assert sorted(stroke_colours(page)) == sorted([COLOURS["error"]] + [COLOURS["ok"]] * 5)
    assert page.evaluate("() => window.gridmapUpload.preview.map.getBounds().contains("
                         "window.gridmapUpload.preview.group.getBounds())")

    # clicking the row zooms to that feature: it fills the view
    zoom_before = page.evaluate("() => window.gridmapUpload.preview.map.getZoom()")
    page.click("#upload-problems tbody tr[data-index='3']")
    page.wait_for_function("z => window.gridmapUpload.preview.map.getZoom() > z", arg=zoom_before)
    assert page.evaluate("""() => {
      const p = window.gridmapUpload.preview, target = p.byIndex[3].layer;
      return p.map.getBounds().contains(target.getBounds()) && !p.map.getBounds().contains(p.byIndex[5].layer.getBounds());
    }""")
    assert page.get_attribute("#upload-problems tbody tr[data-index='3']", "class").split().count("selected") == 1

    # a corrected file: no errors, stored as a new version the API then reports
    check(page, geojson_file(tmp_path, "good.geojson", factories.six_grids()), "ok")
    assert problem_rows(page) == []  # the districts match the grids exactly: not even a warning
    assert page.text_content("#upload-problems tbody") == text("editing.no_problems")
    assert stroke_colours(page) == [COLOURS["ok"]] * 6
    page.fill("#upload-message", "六个网格")
    page.click("#upload-store")
    page.wait_for_selector('#upload-status[data-state="stored"]')
    version = int(page.get_attribute("#upload-status", "data-version"))
    assert text("editing.stored").replace("{n}", str(version)) in page.text_content("#upload-status")
    assert page.is_hidden("#upload-store")
    collection = api(editing_server, "/api/collections/grids")
    assert collection["version"] == version and collection["numberOfFeatures"] == 6
    newest = api(editing_server, "/api/collections/grids/versions", editing_data[1])["versions"][0]
    assert (newest["version"], newest["author"], newest["message"]) == (version, "editor1", "六个网格")

    # the link after "stored" opens the history, which lists the new version first
    page.click("#upload-status a")
    page.wait_for_url(editing_server.url("/history/grids"))
    assert page.get_attribute("#versions tbody tr", "data-version") == str(version)
    assert_quiet(tab, 422)


def test_someone_else_uploading_meanwhile_is_a_clear_conflict(tab, editing_server, editing_data, tmp_path):
    page = tab.page
    sign_in_and_open_upload(tab, editing_server)
    path = geojson_file(tmp_path, "grids.geojson", factories.six_grids())
    seen = api(editing_server, "/api/collections/grids").get("version", 0)
    check(page, path, "ok")
    assert page.text_content('dd[data-field="version"]') == (str(seen) if seen else text("editing.no_version"))

    other = upload_by_script(editing_server, editing_data[1], path)  # between the check and the store
    assert other.status_code == 201 and other.json()["version"] == seen + 1

    page.click("#upload-store")
    page.wait_for_selector('#upload-status[data-state="conflict"]')
    assert page.text_content("#upload-status") == text("editing.conflict")
    assert page.is_hidden("#upload-store")
    assert api(editing_server, "/api/collections/grids")["version"] == seen + 1  # not stored over it

    check(page, path, "ok")  # checking again sees the new version and may store
    page.click("#upload-store")
    page.wait_for_selector('#upload-status[data-state="stored"]')
    assert page.get_attribute("#upload-status", "data-version") == str(seen + 2)
    assert_quiet(tab, 412)


def test_a_changed_file_must_be_checked_again(tab, editing_server, tmp_path):
    page = tab.page
    sign_in_and_open_upload(tab, editing_server)
    check(page, geojson_file(tmp_path, "a.geojson", factories.six_grids()), "ok")
    assert page.is_visible("#upload-store")
    page.set_input_files("#upload-file", str(geojson_file(tmp_path, "b.geojson", factories.six_grids())))
    page.wait_for_selector('#upload-status[data-state="changed"]')
    assert page.is_hidden("#upload-store")
    assert_quiet(tab)


def test_an_unreadable_file_shows_the_servers_message(tab, editing_server, editing_data, tmp_path):
    page = tab.page
    sign_in_and_open_upload(tab, editing_server)
    check(page, geojson_file(tmp_path, "ok.geojson", factories.six_grids()), "ok")  # a report on show
    path = tmp_path / "broken.geojson"
    path.write_text("not json at all", encoding="utf-8")
    answer = upload_by_script(editing_server, editing_data[1], path, dry_run="1")
    assert answer.status_code == 415
    check(page, path, "error")
    assert page.text_content("#upload-status") == answer.json()["error"]["message"]
    assert page.is_hidden("#upload-result") and page.is_hidden("#upload-store")  # no stale report, nothing to store
    assert_quiet(tab, 415)


NOTHING_RAN_JS = """() => ({xss: typeof window.__xss, img: document.querySelectorAll('img[src="x"]').length})"""


def test_names_and_keys_in_the_report_are_text(tab, editing_server, tmp_path):
    page = tab.page
    sign_in_and_open_upload(tab, editing_server)

    # errors: a bad key and a bad grid type, both the payload; the key also labels the map feature
    bad = factories.grids([factories.grid_row("g00"), factories.grid_row(XSS_IMG, grid_type=XSS_IMG)])
    check(page, geojson_file(tmp_path, "xss-errors.geojson", bad), "invalid")
    rows = problem_rows(page)
    assert {(r[0], r[2], r[4]) for r in rows} == {("error", "2", "grid_id"), ("error", "2", "grid_type")}
    assert all(r[3] == XSS_IMG for r in rows)  # the key column, verbatim
    assert all(XSS_IMG in r[5] for r in rows)  # and inside the messages
    tooltip = page.evaluate("""() => {
      const layer = window.gridmapUpload.preview.byIndex[1].layer;
      layer.openTooltip(layer.getBounds().getCenter());
      return layer.getTooltip().getElement().textContent;
    }""")
    assert tooltip == f"#2 · {XSS_IMG}"  # the second feature, counted from 1
    assert page.evaluate(NOTHING_RAN_JS) == {"xss": "undefined", "img": 0}

    # a warning that quotes a grid's name: the grid lies outside its district
    x0, y0, step = factories.X0, factories.Y0, factories.STEP
    outside = factories.grids([factories.grid_row("g00"), factories.grid_row("g40", name=XSS_IMG)],
                              [factories.square(0, 0), box(x0 + 4 * step, y0, x0 + 5 * step, y0 + step)])
    check(page, geojson_file(tmp_path, "xss-warning.geojson", outside), "ok")
    warning = [r for r in problem_rows(page) if r[3] == "g40"]
    assert len(warning) == 1 and warning[0][0] == "warning" and warning[0][2] == "2"
    assert warning[0][5].startswith(XSS_IMG + "：") and "超出所属区县" in warning[0][5]  # the page is in Chinese
    assert page.locator("#preview-map").get_attribute("data-warning-features") == "1"
    assert COLOURS["warning"] in stroke_colours(page)
    assert page.evaluate(NOTHING_RAN_JS) == {"xss": "undefined", "img": 0}
    assert_quiet(tab, 422)


def test_history_restore_asks_then_makes_a_new_version(tab, editing_server, editing_data, tmp_path):
    page = tab.page
    six = upload_by_script(editing_server, editing_data[1], geojson_file(tmp_path, "six.geojson",
                                                                          factories.six_grids()))
    assert six.status_code == 201
    sign_in_and_open_upload(tab, editing_server)
    check(page, geojson_file(tmp_path, "one.geojson", factories.grids([factories.grid_row("only")])), "ok")
    page.check("#upload-confirm")  # one grid replacing six: the page asks first
    page.click("#upload-store")
    page.wait_for_selector('#upload-status[data-state="stored"]')
    latest = int(page.get_attribute("#upload-status", "data-version"))
    assert latest == six.json()["version"] + 1

    page.goto(editing_server.url("/history/grids"))
    target = latest - 1
    dialogs = []

    def answer(dialog):
        dialogs.append(dialog.message)
        if len(dialogs) == 1:
            dialog.dismiss()
        else:
            dialog.accept()

    page.on("dialog", answer)
    button = page.locator(f"form.restore[data-version='{target}'] button")
    button.click()  # dismissed: nothing happens
    assert dialogs == [text("editing.restore_confirm").replace("{n}", str(target))]
    assert api(editing_server, "/api/collections/grids")["version"] == latest
    with page.expect_navigation():
        button.click()  # accepted: restored, and the page reloads
    assert len(dialogs) == 2
    assert page.get_attribute("#versions tbody tr", "data-version") == str(latest + 1)
    assert f"restored version {target}" in page.text_content("#versions tbody tr")
    assert api(editing_server, "/api/collections/grids")["version"] == latest + 1
    assert api(editing_server, "/api/collections/grids")["numberOfFeatures"] == 6  # version latest-1: six
    assert_quiet(tab)


SCREENSHOTS = os.environ.get("SCREENSHOT_DIR")  # set it to look at the page at 1440×900 and 390×844


def test_a_replace_that_empties_districts_must_be_confirmed(tab, editing_server, editing_data, tmp_path):
    """Observation 16: one street's grids checked as "no errors" replaced a whole city when stored."""
    page = tab.page
    city = factories.city_grids(districts=("海曙区", "江北区", XSS_IMG), streets=2, per_street=5)
    before = upload_by_script(editing_server, editing_data[1], geojson_file(tmp_path, "city.geojson", city),
                              confirm="replace")
    assert before.status_code == 201
    version = before.json()["version"]
    one_street = city[city.street == "海曙区0号街道"]
    path = geojson_file(tmp_path, "one-street.geojson", one_street)

    sign_in_and_open_upload(tab, editing_server)
    assert page.input_value("#upload-mode") == "replace"  # the default
    check(page, path, "ok")
    impact = page.locator("#upload-impact")
    assert impact.is_visible() and impact.get_attribute("data-needs-confirmation") == "true"
    assert page.get_attribute("#upload-status", "data-confirm") == "needed"
    assert page.text_content("#upload-status") == text("editing.confirm_needed")
    summary = page.text_content("#upload-impact .impact-summary")
    assert summary == f"将删除 25 个网格（83.3%），新增 0，修改 0；2 个区县将失去全部网格：{XSS_IMG}、江北区"
    rows = page.eval_on_selector_all("#upload-impact tbody tr",
                                     "rows => rows.map(r => [r.className, ...Array.from(r.cells, c => c.textContent)])")
    tag = text("editing.impact_emptied")
    assert rows == [["emptied", f"{XSS_IMG} {tag}", "10", "0", "10", "0", "0"],
                    ["emptied", f"江北区 {tag}", "10", "0", "10", "0", "0"],
                    ["", "海曙区", "10", "5", "5", "0", "0"]]
    assert page.evaluate(NOTHING_RAN_JS) == {"xss": "undefined", "img": 0}  # names went in as text

    # unconfirmed, "Store" cannot send: disabled, and its handler refuses even if it is enabled by force
    assert page.is_visible("#upload-store") and page.is_disabled("#upload-store")
    assert page.is_visible("#upload-confirm") and not page.is_checked("#upload-confirm")
    for width, height in ((1440, 900), (390, 844)):  # the impact, the box and the button fit a desk and a phone
        page.set_viewport_size({"width": width, "height": height})
        for selector in ("#upload-impact", "#upload-confirm", "#upload-store"):
            box_ = page.locator(selector).bounding_box()
            assert box_["x"] >= 0 and box_["x"] + box_["width"] <= width, (selector, width, box_)
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / f"gridmap-upload-confirm-{width}.png"), full_page=True)
    page.evaluate("() => { const b = document.getElementById('upload-store'); b.disabled = false; b.click(); }")
    assert page.get_attribute("#upload-status", "data-state") == "ok"  # not "storing"
    assert api(editing_server, "/api/collections/grids")["version"] == version  # nothing stored

    # ticked: stored, the one street as the new version
    page.check("#upload-confirm")
    assert page.is_enabled("#upload-store")
    page.uncheck("#upload-confirm")
    assert page.is_disabled("#upload-store")
    page.check("#upload-confirm")
    page.click("#upload-store")
    page.wait_for_selector('#upload-status[data-state="stored"]')
    assert page.get_attribute("#upload-status", "data-version") == str(version + 1)
    assert page.is_hidden("#upload-impact") and page.is_hidden("#upload-store")
    collection = api(editing_server, "/api/collections/grids")
    assert (collection["version"], collection["numberOfFeatures"]) == (version + 1, 5)
    assert_quiet(tab)


def test_a_small_replace_shows_its_impact_without_asking(tab, editing_server, editing_data, tmp_path):
    page = tab.page
    rows = [factories.grid_row(f"s{i:02d}") for i in range(20)]
    path = geojson_file(tmp_path, "twenty.geojson", factories.grids(rows))
    assert upload_by_script(editing_server, editing_data[1], path, confirm="replace").status_code == 201
    sign_in_and_open_upload(tab, editing_server)
    nineteen = factories.grids(rows[:18] + [factories.grid_row("s19", population=5)])
    check(page, geojson_file(tmp_path, "nineteen.geojson", nineteen), "ok")  # 1 of 20 removed: 5 %
    assert page.get_attribute("#upload-impact", "data-needs-confirmation") == "false"
    assert page.text_content("#upload-impact .impact-summary") == "将删除 1 个网格（5%），新增 0，修改 1"
    assert page.is_hidden("#upload-confirm") and page.is_enabled("#upload-store")
    assert page.text_content("#upload-status") == text("editing.ok_to_store")
    page.click("#upload-store")
    page.wait_for_selector('#upload-status[data-state="stored"]')
    assert api(editing_server, "/api/collections/grids")["numberOfFeatures"] == 19
    assert_quiet(tab)
