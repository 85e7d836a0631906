"""Planning on the map, in Chromium: recommended sites, centres proposed by a click, what they would cover.

A hand-made city worked out by hand: three 0.01° grids five cells apart (no 1 km disc
reaches a neighbour), one community centre in the middle of the first.

    grid  community                population  centre
    p1    青石社区                     1,000       yes  -> covered
    p2    <img … window.__xss=1>         800       no   -> the first recommended site
    p3    白云社区                       300       no   -> the second

So the city's covered share is 1,000 / 2,100 now, and a centre proposed in the middle
of p3 covers it whole (its corners are 736 m away): 1,300 / 2,100.
"""

from __future__ import annotations

import pytest
import requests
from shapely import Point

from tests import factories

from .conftest import XSS_IMG, _serve, goto_ready

pytestmark = pytest.mark.browser

PASSWORD = "planner-test-pw"
LAYER = "推荐选址"
STEP = factories.STEP


def middle(col: int) -> tuple[float, float]:
    """(lat, lon) of the middle of the grid in column ``col`` of the factories' block."""
    return factories.Y0 + STEP / 2, factories.X0 + STEP * col + STEP / 2


P1, P2, P3 = middle(0), middle(5), middle(10)


@pytest.fixture(scope="module")
def planning_server(tmp_path_factory):
    from geodata.store import open_store
    from geodata.validate import validate
    from server.users import UserStore

    data_dir = tmp_path_factory.mktemp("planning-data")
    (data_dir / "locks").mkdir()
    UserStore(data_dir).add("planner1", "viewer", password=PASSWORD)
    rows = [factories.grid_row("p1", community="青石社区", population=1000),
            factories.grid_row("p2", street="白云街道", community=XSS_IMG, population=800),
            factories.grid_row("p3", street="白云街道", community="白云社区", population=300)]
    grids = factories.grids(rows, [factories.square(col, 0) for col in (0, 5, 10)])
    centers = factories.centers([factories.center_row("c1", "community")], [Point(P1[1], P1[0])])
    store = open_store(data_dir)
    for layer, gdf in (("grids", grids), ("centers", centers)):
        report = validate(gdf, layer)
        assert report.ok, report.errors
        store.write(layer, report.data, author="browser-tests")
    yield from _serve(data_dir, tmp_path_factory.mktemp("logs") / "planning-server.log", demo=False)


def api(server, path):
    session = requests.Session()
    session.trust_env = False
    resp = session.get(server.url(path), timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def show_recommendations(page):
    """Switch the layer on in the layer control, as a planner would, and wait for its sites."""
    control = page.locator(".leaflet-control-layers")
    control.hover()  # a collapsed control opens on hover
    page.locator(".leaflet-control-layers-overlays label", has_text=LAYER).locator("input").check()
    page.wait_for_selector('.gm-recommendations[data-state="loaded"]')


def marker(page, rank: int):
    return page.locator(".leaflet-marker-pane .gm-rec", has=page.get_by_text(str(rank), exact=True))


# Whether every planning marker is drawn where its position puts it: after a zoom, the marker
# clusters' animation glides every marker icon of the map into place for a moment.
SETTLED_JS = """() => {
  const map = window.gridmap.map, box = map.getContainer().getBoundingClientRect();
  const layers = [...Object.values(window.gridmap.layers), window.gridmap.proposals];
  return layers.every((group) => !group.getLayers || group.getLayers().every((l) => {
    if (!l._icon || !l.getLatLng) { return true; }
    const p = map.latLngToContainerPoint(l.getLatLng()), r = l._icon.getBoundingClientRect();
    return Math.abs(r.left + r.width / 2 - box.left - p.x) < 1 && Math.abs(r.top + r.height / 2 - box.top - p.y) < 1;
  }));
}"""


def click_map_at(page, latlng: tuple[float, float], zoom: int = 16):
    """Centre the map on ``latlng`` and click there with the mouse; the spot must be bare map."""
    page.evaluate("([lat, lng, zoom]) => window.gridmap.map.setView([lat, lng], zoom, {animate: false})",
                  [*latlng, zoom])
    page.wait_for_function(SETTLED_JS)
    point = page.evaluate("""([lat, lng]) => {
      const map = window.gridmap.map;
      const p = map.latLngToContainerPoint([lat, lng]), box = map.getContainer().getBoundingClientRect();
      const x = box.left + p.x, y = box.top + p.y, under = document.elementFromPoint(x, y);
      return {x: x, y: y, marker: Boolean(under.closest('.leaflet-marker-icon, .leaflet-control'))};
    }""", list(latlng))
    assert not point["marker"], "the spot to click is under a marker or a control"
    page.mouse.click(point["x"], point["y"])


def sign_in(tab, server, next_path: str = "/") -> None:
    """Sign in as the planner through the login form, landing on ``next_path`` ready."""
    page = tab.page
    page.goto(server.url(f"/login?next={next_path}"))
    page.fill('input[name="name"]', "planner1")
    page.fill('input[name="password"]', PASSWORD)
    page.click('form.login button[type="submit"]')
    page.wait_for_url(server.url(next_path))
    page.wait_for_selector("body[data-gridmap-ready]", state="attached")


def percent(share: float) -> str:
    return f"{share * 100:.1f}%"  # as the page's formatValue shows a share


NOTHING_RAN_JS = """() => ({xss: typeof window.__xss, imgX: document.querySelectorAll('img[src="x"]').length})"""


def outside(server, tab) -> list[str]:
    return [url for url in tab.requests if not url.startswith((server.base + "/", "data:", "blob:"))]


def test_recommended_sites_are_numbered_markers_listed_in_the_panel(tab, planning_server):
    page = tab.page
    goto_ready(tab, planning_server.url("/"))
    panel = page.locator(".gm-planning")
    assert panel.is_visible() and not page.locator(".gm-recommendations").is_visible()  # hidden at start
    assert not any("/api/recommendations" in url for url in tab.requests)  # fetched only when shown

    show_recommendations(page)
    expected = api(planning_server, "/api/recommendations?level=community&k=10")
    ranks = [f["properties"]["rank"] for f in expected["features"]]
    assert ranks == [1, 2]
    assert page.locator(".leaflet-marker-pane .gm-rec").all_inner_texts() == ["1", "2"]
    rows = page.locator(".gm-rec-row")
    assert [rows.nth(i).get_attribute("data-rank") for i in range(rows.count())] == ["1", "2"]
    gains = page.locator(".gm-rec-row .gm-rec-gain").all_inner_texts()
    assert gains == [f"+{f['properties']['new_population']:,}" for f in expected["features"]] == ["+800", "+300"]
    # each site names its district and street too: community names repeat across streets
    assert page.locator(".gm-rec-row .gm-rec-unit").all_inner_texts() == [
        f"海曙区 / 白云街道 / {XSS_IMG}", "海曙区 / 白云街道 / 白云社区"]
    status = page.locator(".gm-recommendations .gm-planning-status").inner_text()
    assert {"greedy": "贪心算法", "mclp": "最大覆盖模型（精确解）"}[expected["solver"]] in status
    assert "只有 2 个选址能新增覆盖人口" in status  # why fewer than the ten asked for, in the page's language

    # a click on a row zooms to its site
    page.locator('.gm-rec-row[data-rank="2"]').click()
    site = expected["features"][1]["geometry"]["coordinates"]
    page.wait_for_function("""([lng, lat]) => {  // the site in the middle, once the zoom's animation ends
      const map = window.gridmap.map, p = map.latLngToContainerPoint([lat, lng]), size = map.getSize();
      return Math.abs(p.x - size.x / 2) <= 1 && Math.abs(p.y - size.y / 2) <= 1 && map.getZoom() >= 15;
    }""", arg=site)
    assert page.locator(".leaflet-tooltip", has_text="白云社区").is_visible()

    # switched off: markers and their list go
    page.locator(".leaflet-control-layers").hover()
    page.locator(".leaflet-control-layers-overlays label", has_text=LAYER).locator("input").uncheck()
    assert page.locator(".leaflet-marker-pane .gm-rec").count() == 0
    assert not page.locator(".gm-recommendations").is_visible()
    assert tab.console_errors == [] and tab.page_errors == []
    assert outside(planning_server, tab) == []


def test_a_hostile_community_name_shows_as_text_in_the_tooltip(tab, planning_server):
    page = tab.page
    goto_ready(tab, planning_server.url("/"))
    show_recommendations(page)
    marker(page, 1).hover()
    tooltip = page.locator(".leaflet-tooltip", has_text="排名")
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    for label in ("排名: 1", "新增覆盖人口: 800", "累计覆盖率:", "所在单元: 海曙区 / 白云街道 / " + XSS_IMG, "求解方法:"):
        assert label in text, (label, text)
    assert page.evaluate(NOTHING_RAN_JS) == {"xss": "undefined", "imgX": 0}
    assert not any(url.endswith("/x") for url in tab.requests)  # no <img src=x> was ever made
    assert tab.console_errors == [] and tab.page_errors == []


def test_a_visitor_is_asked_to_sign_in_before_placing_centres(tab, planning_server):
    page = tab.page
    goto_ready(tab, planning_server.url("/"))
    note = page.locator(".gm-whatif .gm-whatif-sign-in")
    assert note.is_visible() and "登录后可放置拟建中心" in note.inner_text()
    assert page.locator(".gm-whatif-place").count() == 0  # nothing to click that would only be refused
    show_recommendations(page)  # recommendations with the settings' radii stay open to everyone
    note.locator("a").click()
    page.wait_for_url("**/login?next=/")
    sign_in(tab, planning_server)  # back on the map, now with the button
    assert page.locator(".gm-whatif-place").is_visible() and page.locator(".gm-whatif-sign-in").count() == 0
    assert tab.page_errors == []


def test_placing_centres_shows_the_coverage_they_would_add(tab, planning_server, tmp_path):
    page = tab.page
    sign_in(tab, planning_server)
    show_recommendations(page)
    place = page.locator(".gm-whatif-place")
    assert place.inner_text() == "放置拟建中心" and place.get_attribute("aria-pressed") == "false"
    place.click()
    assert place.get_attribute("aria-pressed") == "true"
    assert page.locator(".gm-whatif .gm-planning-hint").is_visible()

    with page.expect_response(lambda r: "/api/whatif" in r.url) as answer:
        click_map_at(page, P3)  # the middle of p3: 300 people, none covered
    request = answer.value.request
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    [proposal] = request.post_data_json["features"]
    assert proposal["properties"] == {"level": "community"}
    assert proposal["geometry"]["coordinates"] == pytest.approx([P3[1], P3[0]], abs=1e-4)
    body = answer.value.json()

    result = page.locator('.gm-whatif-result[data-state="done"]')
    result.wait_for()
    before, after = float(result.get_attribute("data-before")), float(result.get_attribute("data-after"))
    assert after >= before and (before, after) == (body["before"]["covered_share"], body["after"]["covered_share"])
    assert body["before"]["covered_population"] == 1000 and body["after"]["covered_population"] == 1300
    text = result.inner_text()
    assert f"{percent(before)} → {percent(after)}" in text and "47.6% → 61.9%" in text
    assert "覆盖人口变化: +300" in text and "拟建中心 1 个" in text
    assert page.locator(".leaflet-popup").count() == 0  # the click placed a centre, it opened no grid
    circles = page.evaluate("() => window.gridmap.proposals.getLayers().filter((l) => l.getRadius)"
                            ".map((l) => l.getRadius())")
    assert circles == [1000]  # its community catchment
    assert page.locator(".leaflet-marker-pane .gm-proposed").count() == 1

    # a second proposal: both are sent, and the share grows again
    with page.expect_response(lambda r: "/api/whatif" in r.url) as second:
        click_map_at(page, P2)
    assert len(second.value.request.post_data_json["features"]) == 2
    page.wait_for_selector('.gm-whatif-result[data-state="done"]:has-text("拟建中心 2 个")')
    assert float(result.get_attribute("data-after")) > after
    page.mouse.move(5, 5)  # off the map: no tooltip in the picture
    page.evaluate("""() => new Promise((done) => {
      window.gridmap.map.fitBounds([[29.795, 121.495], [29.815, 121.615]], {animate: false});
      requestAnimationFrame(() => requestAnimationFrame(done));  // the canvas redraws on the next frame
    })""")
    page.wait_for_function(SETTLED_JS)
    shot = tmp_path / "gridmap-planning.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot of recommendations and proposed centres: {shot}")

    page.keyboard.press("Escape")  # placing ends; the proposals stay
    assert place.get_attribute("aria-pressed") == "false"
    assert page.locator(".leaflet-marker-pane .gm-proposed").count() == 2
    page.locator(".gm-whatif-clear").click()
    assert page.locator(".leaflet-marker-pane .gm-proposed").count() == 0
    assert page.evaluate("() => window.gridmap.proposed.length") == 0
    assert page.locator(".gm-whatif-result").inner_text() == ""
    assert tab.console_errors == [] and tab.page_errors == []
    assert outside(planning_server, tab) == []
    from geodata.store import open_store

    assert open_store(planning_server.data_dir).current("centers").features == 1  # nothing was stored


def test_a_whatif_error_shows_the_api_message(tab, planning_server):
    page = tab.page
    message = "at most 200 proposed centres at a time"
    page.route("**/api/whatif*", lambda route: route.fulfill(
        status=413, content_type="application/json",
        body='{"error": {"code": "too_large", "message": "%s", "details": []}}' % message))
    sign_in(tab, planning_server)
    page.locator(".gm-whatif-place").click()
    click_map_at(page, P3)
    error = page.locator('.gm-whatif-result[data-state="error"]')
    error.wait_for()
    assert error.inner_text() == f"请求失败: {message}"
    assert tab.page_errors == []


def test_a_signed_in_planner_sends_the_csrf_token(tab, planning_server):
    page = tab.page
    sign_in(tab, planning_server)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token

    page.locator(".gm-whatif-place").click()
    with page.expect_response(lambda r: "/api/whatif" in r.url) as answer:
        click_map_at(page, P3)
    assert answer.value.request.headers.get("x-csrftoken") == token
    assert answer.value.status == 200  # a cookie-signed POST without it is refused (csrf_failed)
    page.wait_for_selector('.gm-whatif-result[data-state="done"]')
    assert "+300" in page.locator(".gm-whatif-result").inner_text()
    assert tab.console_errors == [] and tab.page_errors == []


def test_english_planning_panel(tab, planning_server):
    page = tab.page
    goto_ready(tab, planning_server.url("/?lang=en"))
    show_recommendations_en = page.locator(".leaflet-control-layers-overlays label", has_text="Recommended sites")
    page.locator(".leaflet-control-layers").hover()
    show_recommendations_en.locator("input").check()
    page.wait_for_selector('.gm-recommendations[data-state="loaded"]')
    assert page.locator(".gm-planning-title").inner_text() == "Site planning"
    assert page.locator(".gm-whatif-sign-in").inner_text().startswith("Sign in to place proposed centres")
    assert "Solver:" in page.locator(".gm-recommendations .gm-planning-status").inner_text()


def test_a_street_centre_shows_its_effect_on_the_city_district_and_street(tab, planning_server):
    """A street centre (2.5 km) in the middle of p3 covers p3 whole and reaches no other grid:
    the city and 海曙区 1,000 → 1,300 of 2,100; 白云街道 (p2 and p3: 1,100 people) 0 → 300."""
    page = tab.page
    sign_in(tab, planning_server)
    levels = page.locator(".gm-whatif-level")
    assert levels.input_value() == "community"  # at first, as before
    assert [o.strip() for o in levels.locator("option").all_inner_texts()] == [
        "区级党群服务中心", "街道（镇）党群服务中心", "社区（村）党群服务中心"]
    levels.select_option("street")
    page.locator(".gm-whatif-place").click()
    with page.expect_response(lambda r: "/api/whatif" in r.url) as answer:
        click_map_at(page, P3, zoom=14)
    [proposal] = answer.value.request.post_data_json["features"]
    assert proposal["properties"] == {"level": "street"}
    circles = page.evaluate("() => window.gridmap.proposals.getLayers().filter((l) => l.getRadius)"
                            ".map((l) => l.getRadius())")
    assert circles == [2500]  # the street level's catchment
    page.wait_for_selector('.gm-whatif-result[data-state="done"]')
    rows = page.locator(".gm-whatif-effects tr.gm-effect")
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    assert cells == [["全市", "47.6% → 61.9%", "+300"], ["海曙区", "47.6% → 61.9%", "+300"],
                     ["白云街道 · 海曙区", "0.0% → 27.3%", "+300"]]
    assert [rows.nth(i).get_attribute("data-level") for i in range(3)] == ["city", "district", "street"]

    # a district centre next: its own radius; both are sent with their levels
    levels.select_option("district")
    with page.expect_response(lambda r: "/api/whatif" in r.url) as second:
        click_map_at(page, P1, zoom=14)
    assert [f["properties"]["level"] for f in second.value.request.post_data_json["features"]] == [
        "street", "district"]
    circles = page.evaluate("() => window.gridmap.proposals.getLayers().filter((l) => l.getRadius)"
                            ".map((l) => l.getRadius())")
    assert circles == [2500, 5000]
    page.wait_for_selector('.gm-whatif-result[data-state="done"]:has-text("拟建中心 2 个")')
    assert tab.console_errors == [] and tab.page_errors == []


def test_english_whatif_effects(tab, planning_server):
    page = tab.page
    sign_in(tab, planning_server, "/?lang=en")
    page.locator(".gm-whatif-level").select_option("street")
    page.locator(".gm-whatif-place").click()
    click_map_at(page, P3, zoom=14)
    page.wait_for_selector('.gm-whatif-result[data-state="done"]')
    assert page.locator(".gm-whatif-effects th").all_inner_texts() == ["Unit", "Covered share", "Newly covered"]
    assert page.locator(".gm-whatif-effects td.gm-effect-unit").first.inner_text() == "Whole city"
