"""The map's search box asks the server: codes, short names, repeated names told apart by their
parents; a chosen hit is zoomed to, outlined, and its popup opened."""

from __future__ import annotations

import pytest

from .conftest import goto_ready

pytestmark = pytest.mark.browser

HITS = ".gm-search-hit"


def search(page, text: str) -> list[str]:
    box = page.locator(".gm-search input")
    box.fill(text)
    page.wait_for_selector(HITS)
    return page.locator(HITS).all_inner_texts()


def test_a_short_name_lists_the_district_first_with_its_kind(tab, demo_server, tmp_path):
    page = tab.page
    goto_ready(tab, demo_server.url("/"))
    hits = search(page, "海曙")
    assert hits[0].startswith("海曙区") and hits[0].endswith("区县")
    page.screenshot(path=str(tmp_path / "gridmap-search.png"))
    assert tab.console_errors == [] and tab.page_errors == []


def test_repeated_community_names_show_their_parents(tab, demo_server):
    page = tab.page
    goto_ready(tab, demo_server.url("/"))
    hits = [h for h in search(page, "桃苑社区") if h.endswith("社区") and "网格" not in h]
    assert any("庄桥街道 · 江北区" in h for h in hits) and any("南门街道 · 海曙区" in h for h in hits), hits


def test_a_grid_code_and_enter_zoom_outline_and_open_its_popup(tab, demo_server):
    page = tab.page
    goto_ready(tab, demo_server.url("/"))
    before = page.evaluate("window.gridmap.maps[0].getZoom()")
    page.locator(".gm-search input").fill("330203-01-001-01")
    page.locator(".gm-search input").press("Enter")
    page.wait_for_selector('.gm-search[data-outlined="330203-01-001-01"]')
    page.wait_for_selector(".leaflet-popup-content")
    assert "桃苑社区第1网格" in page.locator(".leaflet-popup-content").inner_text()
    assert page.evaluate("window.gridmap.maps[0].getZoom()") > before
    assert tab.console_errors == [] and tab.page_errors == []


def test_choosing_a_community_outlines_that_one(tab, demo_server):
    page = tab.page
    goto_ready(tab, demo_server.url("/"))
    search(page, "桃苑社区")
    page.locator(HITS, has_text="庄桥街道 · 江北区").first.dispatch_event("mousedown")
    page.wait_for_selector('.gm-search[data-outlined="江北区/庄桥街道/桃苑社区"]')
    centre = page.evaluate("(() => { const c = window.gridmap.maps[0].getCenter(); return [c.lng, c.lat]; })()")
    assert 121.45 < centre[0] < 121.65 and 29.85 < centre[1] < 30.0, centre  # 江北区, north of the old town


def test_nothing_found_says_so(tab, demo_server):
    page = tab.page
    goto_ready(tab, demo_server.url("/"))
    page.locator(".gm-search input").fill("不存在的地方")
    page.wait_for_function("document.querySelector('.gm-search-message').textContent.length > 0")
    assert page.locator(".gm-search-message").inner_text() == "未找到"
