"""Editing on the map, in Chromium: an editor moves a shared edge, draws a grid, splits one, moves a centre;
each save is one version the history, the diff and the coverage show; a viewer sees no editing tools; a
refused edit shows the report.

The city is factories' 3 × 2 block of 0.01° grids (g00 … g21, columns then rows) and one community
centre, c1, in the middle of g00.  Each test edits its own grids, so their order does not matter.
"""

from __future__ import annotations

import pytest
import requests
from shapely import Point
from shapely.geometry import shape

from tests import factories

from .conftest import XSS_IMG, _serve, goto_ready

pytestmark = pytest.mark.browser

PASSWORD = "editing-test-pw"
X0, Y0, S = factories.X0, factories.Y0, factories.STEP
C1 = (Y0 + S / 2, X0 + S / 2)  # (lat, lon)


@pytest.fixture(scope="module")
def editing_server(tmp_path_factory):
    from geodata.store import open_store
    from geodata.validate import validate
    from server.users import UserStore

    data_dir = tmp_path_factory.mktemp("editing-data")
    (data_dir / "locks").mkdir()
    users = UserStore(data_dir)
    users.add("editor1", "editor", password=PASSWORD)
    users.add("viewer1", "viewer", password=PASSWORD)
    store = open_store(data_dir)
    centers = factories.centers([factories.center_row("c1", "community")], [Point(C1[1], C1[0])])
    grids = factories.six_grids()
    grids.loc[grids["grid_id"] == "g11", "name"] = XSS_IMG  # the form shows it as a value, never as markup
    for layer, gdf in (("grids", grids), ("centers", centers)):
        report = validate(gdf, layer)
        assert report.ok, report.errors
        store.write(layer, report.data, author="browser-tests")
    yield from _serve(data_dir, tmp_path_factory.mktemp("logs") / "editing-server.log", demo=False)


def api(server, path: str, **params):
    session = requests.Session()
    session.trust_env = False
    resp = session.get(server.url(path), params=params, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def versions(server, layer: str) -> list[dict]:
    return api(server, f"/api/collections/{layer}/versions")["versions"]


def sign_in(tab, server, name: str) -> None:
    page = tab.page
    page.goto(server.url("/login?next=/"))
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('form.login button[type="submit"]')
    page.wait_for_url(server.url("/"))
    page.wait_for_selector("body[data-gridmap-ready]", state="attached")


def start_editing(tab, server, at=(Y0 + S, X0 + 1.5 * S), zoom: int = 16) -> None:
    sign_in(tab, server, "editor1")
    tab.page.evaluate("([lat, lng, zoom]) => window.gridmap.map.setView([lat, lng], zoom, {animate: false})",
                      [*at, zoom])
    tab.page.click(".gm-edit-toggle")
    tab.page.wait_for_selector(".gm-edit-panel:not([hidden])")


def xy(tab, latlng) -> tuple[float, float]:
    """Where ``latlng`` is on the page now."""
    return tuple(tab.page.evaluate("""([lat, lng]) => {
      const map = window.gridmap.map, p = map.latLngToContainerPoint([lat, lng]);
      const box = map.getContainer().getBoundingClientRect();
      return [box.left + p.x, box.top + p.y];
    }""", list(latlng)))


def centre(tab, points) -> None:
    """Centre the map on the middle of ``points`` (away from the panels in the map's corners)."""
    lat = sum(p[0] for p in points) / len(points)
    lng = sum(p[1] for p in points) / len(points)
    tab.page.evaluate("([lat, lng]) => window.gridmap.map.setView([lat, lng], window.gridmap.map.getZoom(), "
                      "{animate: false})", [lat, lng])


def pick(tab, latlng, key: str) -> None:
    """Click the grid (or centre) at ``latlng`` with the edit tool, and wait until it is loaded with its
    neighbours.  What the click would pick is checked first: a centre drawn over the grid is picked instead."""
    page = tab.page
    centre(tab, [latlng])
    found = page.wait_for_function("""([lat, lng]) => {
      const hit = window.gridmap.featureAt(window.gridmap.map, L.latLng(lat, lng), window.gridmap.edit.pickable);
      return hit && String(hit.props[hit.entry.opts.idField]);
    }""", arg=list(latlng)).json_value()
    assert found == key, f"a click at {latlng} picks {found}, not {key}"
    page.mouse.click(*xy(tab, latlng))
    page.wait_for_selector(f'.gm-edit-form[data-key="{key}"]')
    page.wait_for_function("() => !document.querySelector('.gm-edit-report[data-state=\"loading\"]')")


def drag(tab, start, end) -> None:
    page = tab.page
    centre(tab, [start, end])
    page.mouse.move(*xy(tab, start))
    page.mouse.down()
    a, b = xy(tab, start), xy(tab, end)
    for i in range(1, 6):
        page.mouse.move(a[0] + (b[0] - a[0]) * i / 5, a[1] + (b[1] - a[1]) * i / 5)
    page.mouse.up()


# While drawing, geoman puts a vertex where its cursor marker is, and the marker follows the map's mouse moves.
# Over the grids' canvas, Leaflet passes a move on to the map at most once in 32 ms and drops the rest: a click
# straight after a jump would put the vertex where the marker was left (the last vertex, which ends the shape).
# A hand keeps moving; the test moves until the marker has come (snapped, or under the mouse).
CURSOR_MARKER_AT = """([x, y]) => { const map = window.gridmap.map;
  if (!map.pm.globalDrawModeEnabled()) { return true; }
  const marker = map.pm.Draw[map.pm.Draw.getActiveShape()]._hintMarker;
  const box = map.getContainer().getBoundingClientRect(), p = map.latLngToContainerPoint(marker.getLatLng());
  return Math.hypot(box.left + p.x - x, box.top + p.y - y) < (marker._snapped ? 16 : 1.5); }"""


def click_points(tab, points) -> None:
    centre(tab, points)
    for point in points:
        x, y = xy(tab, point)
        for _ in range(1000):
            tab.page.mouse.move(x, y + 1)
            tab.page.mouse.move(x, y)
            if tab.page.evaluate(CURSOR_MARKER_AT, [x, y]):
                break
        else:
            raise AssertionError(f"the drawing's cursor marker never came to {point}")
        tab.page.mouse.click(x, y)


def fill_form(tab, values: dict[str, str]) -> None:
    """Type each value into its field of the form (the key first: a new feature is renamed by it)."""
    for name, value in values.items():
        field = tab.page.locator(f'.gm-edit-form input[name="{name}"]')
        field.fill(value)
        field.dispatch_event("change")
    tab.page.select_option('.gm-edit-form select[name="grid_type"]', "residential")


def check_and_save(tab, message: str) -> None:
    page = tab.page
    page.click(".gm-edit-check")
    page.wait_for_selector('.gm-edit-report[data-state="ok"]')
    page.fill(".gm-edit-message", message)
    page.click(".gm-edit-save")
    page.wait_for_selector('.gm-edit-report[data-state="saved"]')


def changes(server, layer: str, before: int, after: int) -> dict:
    diff = api(server, f"/api/collections/{layer}/diff", **{"from": before, "to": after})
    return {kind: sorted(item if isinstance(item, str) else item["key"] for item in diff[kind])
            for kind in ("added", "removed", "changed")}


def saved_as_one_version(tab, server, layer: str, before: int, message: str) -> int:
    """The save made exactly one version, with its author and message, which the history page lists."""
    after = versions(server, layer)
    assert len(after) == before + 1
    newest = max(after, key=lambda v: v["version"])
    assert newest["message"] == message
    tab.page.goto(server.url(f"/history/{layer}"))  # as the editor sees it: with its author
    row = tab.page.locator("tr", has_text=message)
    assert row.count() == 1 and "editor1" in row.inner_text()
    return newest["version"]


# the form's controls and buttons that must be in reach, each: not under another panel, inside the window
NOT_IN_REACH = """els => els.map(el => {
  el.scrollIntoView({block: "nearest", inline: "nearest"});  // within the panel, which scrolls
  const r = el.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
  const top = document.elementFromPoint(x, y);
  return top === el || el.contains(top) ? null
    : `${el.name || el.className} at (${Math.round(x)}, ${Math.round(y)}) under ${top ? top.className : "nothing"}`;
}).filter(Boolean)"""
SAVE_IN_VIEW = """() => { const el = document.querySelector(".gm-edit-save"), r = el.getBoundingClientRect();
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return top === el || el.contains(top); }"""
REACHED = ".gm-edit-save, .gm-edit-check, .gm-edit-message, .gm-edit-form input, .gm-edit-form select"


def planning_open(tab) -> bool:
    return tab.page.get_attribute(".gm-planning-toggle", "aria-expanded") == "true"


def test_the_form_is_labelled_in_the_readers_language(tab, editing_server):
    start_editing(tab, editing_server)  # first thing on a fresh page, before any other test has edited
    pick(tab, (Y0 + 0.25 * S, X0 + 0.25 * S), "g00")
    label = tab.page.locator('.gm-edit-form label.gm-edit-field:has(select[name="grid_type"]) > span')
    assert label.inner_text() == "网格类型 *" and label.get_attribute("title") == "grid_type"
    chosen = tab.page.locator('.gm-edit-form select[name="grid_type"] option:checked')
    assert chosen.inner_text() == "居民小区" and chosen.get_attribute("value") == "residential"
    population = tab.page.locator('.gm-edit-form label.gm-edit-field:has(input[name="population"]) > span')
    assert population.inner_text() == "人口" and population.get_attribute("title") == "population"
    assert not tab.page_errors


@pytest.mark.parametrize("width,height", [(1280, 800), (1280, 640), (390, 844)])  # (640: a laptop's window)
def test_the_edit_panel_stays_in_reach_and_the_planning_panel_folds_while_editing(tab, editing_server, width,
                                                                                    height):
    tab.page.set_viewport_size({"width": width, "height": height})
    sign_in(tab, editing_server, "editor1")
    was_open = planning_open(tab)
    assert was_open == (width > 600)  # open at first on a wide screen, folded on a phone
    tab.page.evaluate("([lat, lng]) => window.gridmap.map.setView([lat, lng], 16, {animate: false})", [*C1])
    tab.page.click(".gm-edit-toggle")
    spot = (Y0 + 0.25 * S, X0 + 0.25 * S)
    pick(tab, spot, "g00")
    assert tab.page.eval_on_selector_all(REACHED, NOT_IN_REACH) == []
    # the form scrolled to its last field (above), the buttons have stayed in view without scrolling back
    assert tab.page.evaluate(SAVE_IN_VIEW)
    assert not planning_open(tab)
    # the picked grid stays in view beside (or above) the panel
    at = tab.page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('.gm-edit, .leaflet-container')"
                           ".className", list(xy(tab, spot)))
    assert "leaflet-container" in at
    tab.page.click(".gm-edit-toggle")  # done: the planning panel is as it was
    assert planning_open(tab) == was_open
    assert not tab.page_errors


def test_on_a_phone_a_grid_picked_low_on_the_screen_is_moved_above_the_panel(tab, editing_server):
    tab.page.set_viewport_size({"width": 390, "height": 844})
    start_editing(tab, editing_server, at=(Y0 + 0.5 * S, X0 + 0.5 * S))
    low = tab.page.evaluate("""() => { const map = window.gridmap.map, size = map.getSize();
      const at = map.containerPointToLatLng([size.x / 2, size.y / 2 + 200]); /* under the panel-to-be */
      return [at.lat, at.lng]; }""")
    tab.page.wait_for_function("""([lat, lng]) => {
      const hit = window.gridmap.featureAt(window.gridmap.map, L.latLng(lat, lng), window.gridmap.edit.pickable);
      return hit && hit.props.grid_id === "g00";
    }""", arg=low)
    tab.page.mouse.click(*xy(tab, low))
    tab.page.wait_for_selector('.gm-edit-form[data-key="g00"]')
    panel = tab.page.locator(".gm-edit-panel").bounding_box()
    x, y = xy(tab, low)  # where the tapped place is now: in view, above the panel
    assert 0 < y < panel["y"] and 0 < x < 390
    assert tab.page.evaluate("([x, y]) => !document.elementFromPoint(x, y).closest('.gm-edit')", [x, y])
    assert not tab.page_errors


def test_editing_and_placing_what_if_centres_take_turns(tab, editing_server):
    sign_in(tab, editing_server, "editor1")
    place, toggle = tab.page.locator(".gm-whatif-place"), tab.page.locator(".gm-edit-toggle")
    place.click()
    assert place.get_attribute("aria-pressed") == "true"
    toggle.click()  # editing ends placing (a click on the map would do both otherwise)
    assert toggle.get_attribute("aria-pressed") == "true" and place.get_attribute("aria-pressed") == "false"
    tab.page.click(".gm-planning-toggle")  # unfolded by hand while editing
    place.click()  # placing ends editing
    assert place.get_attribute("aria-pressed") == "true" and toggle.get_attribute("aria-pressed") == "false"
    assert tab.page.locator(".gm-edit-panel").is_hidden() and planning_open(tab)
    assert "gm-placing" in tab.page.get_attribute(".leaflet-container", "class")
    assert not tab.page_errors


def test_a_click_on_a_grids_edge_under_an_outline_picks_the_grid(tab, editing_server):
    start_editing(tab, editing_server, at=(Y0 + 0.5 * S, X0))
    # a pixel inside g00's west edge, which is its street's and district's: they have no centre, and the
    # dashed outline of the units missing one lies over the grid there
    edge = tab.page.evaluate("""([lat, lng]) => { const map = window.gridmap.map;
      const p = map.latLngToContainerPoint([lat, lng]).add([1, 0]), at = map.containerPointToLatLng(p);
      return [at.lat, at.lng]; }""", [Y0 + 0.5 * S, X0])
    tab.page.wait_for_function("""([lat, lng]) => {
      const hit = window.gridmap.featureAt(window.gridmap.map, L.latLng(lat, lng));
      return hit && hit.entry.opts.layer === "gaps" && hit.props.kind === "missing_center";
    }""", arg=edge)  # what a viewer's click there opens: the outline's popup
    tab.page.mouse.click(*xy(tab, edge))
    tab.page.wait_for_selector('.gm-edit-form[data-key="g00"]')
    assert not tab.page_errors


def test_a_viewer_and_a_visitor_see_no_editing_tools(tab, editing_server):
    goto_ready(tab, editing_server.url("/"))
    assert tab.page.locator(".gm-edit").count() == 0
    sign_in(tab, editing_server, "viewer1")
    assert tab.page.locator(".gm-edit").count() == 0
    assert not any("geoman" in url or "gridmap-edit" in url for url in tab.requests)
    assert not tab.page_errors


def test_an_editor_moves_a_shared_edge_and_both_neighbours_move_in_one_version(tab, editing_server):
    before = len(versions(editing_server, "grids"))
    old_area = shape(api(editing_server, "/api/collections/coverage/items/g00")["geometry"]).area
    start_editing(tab, editing_server)
    pick(tab, (Y0 + 0.25 * S, X0 + 0.25 * S), "g00")  # (c1 is in its middle)
    corner, moved = (Y0, X0 + S), (Y0, X0 + 1.25 * S)  # g00's corner it shares with g10, along the block's edge
    drag(tab, corner, moved)
    tab.page.wait_for_selector('.gm-edit-changes[data-changed="g00,g10"]')
    check_and_save(tab, "月湖与白云的边界东移")
    version = saved_as_one_version(tab, editing_server, "grids", before, "月湖与白云的边界东移")
    assert changes(editing_server, "grids", version - 1, version)["changed"] == ["g00", "g10"]
    g00 = shape(api(editing_server, "/api/collections/grids/items/g00")["geometry"])
    g10 = shape(api(editing_server, "/api/collections/grids/items/g10")["geometry"])
    assert g00.intersection(g10).area < 1e-12 and g00.touches(g10)  # still neighbours: no sliver, no overlap
    assert g00.area + g10.area == pytest.approx(2 * S * S)
    coverage = api(editing_server, "/api/collections/coverage/items/g00")["properties"]
    assert shape(api(editing_server, "/api/collections/coverage/items/g00")["geometry"]).area > old_area
    assert coverage["coverage_status"] in ("covered", "partial") and coverage["coverage_ratio"] > 0
    assert not tab.page_errors


def test_an_editor_draws_a_grid_snapped_to_its_neighbour(tab, editing_server):
    before = len(versions(editing_server, "grids"))
    start_editing(tab, editing_server, at=(Y0 + 2 * S, X0 + S / 2))
    tab.page.click(".gm-edit-draw-grid")
    tab.page.wait_for_function("() => window.gridmap.map.pm.globalDrawModeEnabled()")
    corners = [(Y0 + 2 * S, X0), (Y0 + 2 * S, X0 + S), (Y0 + 2.6 * S, X0 + S), (Y0 + 2.6 * S, X0)]
    click_points(tab, [*corners, corners[0]])
    form = tab.page.locator('.gm-edit-form[data-key="new-grid"]')
    form.wait_for()
    fill_form(tab, {"grid_id": "g02", "name": "新建网格", "district": "海曙区", "street": "月湖街道",
                    "community": "青石社区", "population": "300"})
    tab.page.wait_for_selector('.gm-edit-changes[data-changed="g02"]')
    check_and_save(tab, "新增网格 g02")
    version = saved_as_one_version(tab, editing_server, "grids", before, "新增网格 g02")
    assert changes(editing_server, "grids", version - 1, version) == {"added": ["g02"], "removed": [],
                                                                       "changed": []}
    g02 = shape(api(editing_server, "/api/collections/grids/items/g02")["geometry"])
    g01 = shape(api(editing_server, "/api/collections/grids/items/g01")["geometry"])
    assert g02.intersection(g01).area < 1e-12 and g02.intersection(g01).length == pytest.approx(S)  # snapped
    coverage = api(editing_server, "/api/collections/coverage/items/g02")["properties"]
    assert coverage["population"] == 300 and coverage["coverage_status"] in ("covered", "partial", "uncovered")
    assert not tab.page_errors


def test_an_editor_splits_a_grid_along_a_line(tab, editing_server):
    before = len(versions(editing_server, "grids"))
    start_editing(tab, editing_server, at=(Y0 + 1.5 * S, X0 + 2.5 * S))
    pick(tab, (Y0 + 1.5 * S, X0 + 2.5 * S), "g21")
    tab.page.click(".gm-edit-split")
    tab.page.wait_for_function("() => window.gridmap.map.pm.globalDrawModeEnabled()")
    line = [(Y0 + 1.9 * S, X0 + 1.9 * S), (Y0 + 1.1 * S, X0 + 3.1 * S)]
    click_points(tab, [*line, line[-1]])  # the last point again ends the line
    tab.page.wait_for_selector('.gm-edit-changes[data-changed="g21,g21-2"]')
    check_and_save(tab, "g21 一分为二")
    version = saved_as_one_version(tab, editing_server, "grids", before, "g21 一分为二")
    assert changes(editing_server, "grids", version - 1, version) == {"added": ["g21-2"], "removed": [],
                                                                       "changed": ["g21"]}
    parts = [api(editing_server, f"/api/collections/grids/items/{k}") for k in ("g21", "g21-2")]
    assert sum(shape(p["geometry"]).area for p in parts) == pytest.approx(S * S)
    assert sum(p["properties"]["population"] for p in parts) == 600  # the population shared out by area
    for key in ("g21", "g21-2"):
        assert api(editing_server, f"/api/collections/coverage/items/{key}")["properties"]["coverage_status"]
    assert not tab.page_errors


def test_an_editor_moves_a_centre(tab, editing_server):
    before = len(versions(editing_server, "centers"))
    start_editing(tab, editing_server, at=C1)
    pick(tab, C1, "c1")
    target = (C1[0] + 0.3 * S, C1[1] + 0.3 * S)
    drag(tab, C1, target)
    tab.page.wait_for_selector('.gm-edit-changes[data-changed="c1"]')
    check_and_save(tab, "中心搬迁")
    version = saved_as_one_version(tab, editing_server, "centers", before, "中心搬迁")
    assert changes(editing_server, "centers", version - 1, version)["changed"] == ["c1"]
    where = shape(api(editing_server, "/api/collections/centers/items/c1")["geometry"])
    assert where.distance(Point(target[1], target[0])) < S / 50  # where it was dropped (to a pixel or so)
    assert not tab.page_errors


def test_a_refused_edit_shows_the_report_and_outlines_the_grids(tab, editing_server):
    before = len(versions(editing_server, "grids"))
    start_editing(tab, editing_server, at=(Y0 + S / 2, X0 + 1.5 * S))
    tab.page.click(".gm-edit-draw-grid")
    tab.page.wait_for_function("() => window.gridmap.map.pm.globalDrawModeEnabled()")
    corners = [(Y0 + 0.3 * S, X0 + 1.3 * S), (Y0 + 0.3 * S, X0 + 1.7 * S), (Y0 + 0.7 * S, X0 + 1.7 * S),
               (Y0 + 0.7 * S, X0 + 1.3 * S)]  # inside g10: an overlap
    click_points(tab, [*corners, corners[0]])
    tab.page.locator('.gm-edit-form[data-key="new-grid"]').wait_for()
    fill_form(tab, {"grid_id": "g99", "name": "重叠", "district": "海曙区", "street": "白云街道",
                    "community": "白云社区"})
    tab.page.click(".gm-edit-check")
    tab.page.locator('.gm-edit-report[data-state="refused"]').wait_for()
    keys = tab.page.eval_on_selector_all(".gm-edit-errors li[data-key]", "rows => rows.map(r => r.dataset.key)")
    assert keys and set(keys) <= {"g99", "g10"}  # the overlap alone: the form's fields are fine
    outlined = tab.page.evaluate("""() => { const out = []; window.gridmap.map.eachLayer(l => {
      if (l.gmKey && l.options.color === '#ff00ff') { out.push(l.gmKey); } }); return out.sort(); }""")
    assert outlined and set(outlined) <= {"g99", "g10"} and set(outlined) & set(keys)
    drawn_areas = tab.page.evaluate("""() => { let n = 0; window.gridmap.map.eachLayer(l => {
      if (l.options && l.options.className === 'gm-edit-problem-area') { n++; } }); return n; }""")
    assert drawn_areas >= 1  # the overlap itself, from the report
    tab.page.fill(".gm-edit-message", "不该保存")
    tab.page.click(".gm-edit-save")  # saving it anyway is refused with the same report
    tab.page.locator('.gm-edit-report[data-state="refused"] .gm-edit-errors li').first.wait_for()
    assert len(versions(editing_server, "grids")) == before  # nothing stored
    assert not tab.page_errors


def test_an_editor_merges_two_grids_undoes_and_merges_again(tab, editing_server):
    before = len(versions(editing_server, "grids"))
    both = sum(shape(api(editing_server, f"/api/collections/grids/items/{k}")["geometry"]).area for k in ("g10", "g11"))
    start_editing(tab, editing_server, at=(Y0 + S, X0 + 1.5 * S))
    pick(tab, (Y0 + 1.5 * S, X0 + 1.5 * S), "g11")
    assert tab.page.input_value('.gm-edit-form input[name="name"]') == XSS_IMG

    def merge_g10():
        tab.page.click(".gm-edit-merge")
        click_points(tab, [(Y0 + 0.5 * S, X0 + 1.6 * S)])  # in g10, loaded as g11's neighbour
        tab.page.wait_for_selector('.gm-edit-changes[data-changed="g11"][data-removed="g10"]', state="attached")

    merge_g10()
    tab.page.click(".gm-edit-undo")
    tab.page.wait_for_selector('.gm-edit-changes[data-changed=""][data-removed=""]', state="attached")
    merge_g10()
    check_and_save(tab, "合并 g10 入 g11")
    version = saved_as_one_version(tab, editing_server, "grids", before, "合并 g10 入 g11")
    assert changes(editing_server, "grids", version - 1, version) == {"added": [], "removed": ["g10"],
                                                                       "changed": ["g11"]}
    g11 = api(editing_server, "/api/collections/coverage/items/g11")
    assert shape(g11["geometry"]).area == pytest.approx(both)  # (g10 may have lent g00 a strip before)
    assert g11["properties"]["population"] == 200 + 500  # the two grids' people
    assert tab.page.evaluate("typeof window.__xss") == "undefined"
    assert not tab.page_errors


def test_an_editor_places_a_new_centre(tab, editing_server):
    before = len(versions(editing_server, "centers"))
    spot = (Y0 + 1.5 * S, X0 + 0.3 * S)  # in g01, off c1
    start_editing(tab, editing_server, at=spot)
    tab.page.click(".gm-edit-add-center")
    tab.page.wait_for_function("() => window.gridmap.map.pm.globalDrawModeEnabled()")
    click_points(tab, [spot])
    tab.page.locator('.gm-edit-form[data-key="new-center"]').wait_for()
    for name, value in (("center_id", "c2"), ("name", "新中心"), ("district", "海曙区"), ("street", "月湖街道"),
                        ("community", "青石社区")):
        field = tab.page.locator(f'.gm-edit-form input[name="{name}"]')
        field.fill(value)
        field.dispatch_event("change")
    tab.page.select_option('.gm-edit-form select[name="level"]', "community")
    check_and_save(tab, "新建中心 c2")
    version = saved_as_one_version(tab, editing_server, "centers", before, "新建中心 c2")
    assert changes(editing_server, "centers", version - 1, version)["added"] == ["c2"]
    where = shape(api(editing_server, "/api/collections/centers/items/c2")["geometry"])
    assert where.distance(Point(spot[1], spot[0])) < S / 50
    assert not tab.page_errors
