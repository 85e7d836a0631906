"""The map at province scale (GRIDMAP_DEMO=zhejiang: 85,004 grids), in Chromium: it opens on tiles of the
grids dissolved by district and status, draws each grid closer in, and its popups, search and place names
work as on a city's map.  Slow: the demo is built and analysed first (a minute or more)."""

from __future__ import annotations

import pytest

from tests.live import live_server

from .conftest import Server, click_popup, goto_ready, grid_where, pointer_at
from .test_map import labels_at, overlapping

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COVERAGE = "网格覆盖状态"


@pytest.fixture(scope="module")
def province_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("province-data")
    with live_server(data_dir, tmp_path_factory.mktemp("logs") / "province-server.log", demo=False,
                     DEMO="zhejiang") as base:
        yield Server(base, data_dir)


def test_the_province_opens_on_tiles_and_draws_each_grid_closer_in(tab, province_server, tmp_path):
    page = tab.page
    goto_ready(tab, province_server.url("/"), timeout_ms=600_000)
    assert not any(url.endswith(".geojson") for url in tab.requests)  # no layer downloaded whole
    first = page.evaluate(f"() => window.gridmap.tileFeatures('{COVERAGE}')")
    assert {p["coverage_status"] for p in first} == {"covered", "partial", "uncovered"}
    assert len({p["city"] for p in first}) == 11 and not any("grid_id" in p for p in first)  # dissolved
    assert len(page.evaluate("() => window.gridmap.tileFeatures('区县界')")) >= 90
    page.screenshot(path=str(tmp_path / "gridmap-province.png"))

    grid = grid_where(province_server, city="杭州市", coverage_status="uncovered")
    key = grid["properties"]["grid_id"]
    content = click_popup(tab, pointer_at(tab, grid["point"], layer=COVERAGE), key)
    assert grid["properties"]["name"] in content.inner_text() and "杭州市" in content.inner_text()
    labels = labels_at(tab, 14, *grid["point"])
    assert {label["level"] for label in labels} >= {"community"} and overlapping(labels) == []
    assert tab.console_errors == [] and tab.page_errors == []


def test_a_grid_code_found_outlined_and_opened_at_province_scale(tab, province_server):
    page = tab.page
    goto_ready(tab, province_server.url("/"), timeout_ms=600_000)
    grid = grid_where(province_server, city="温州市")
    key = grid["properties"]["grid_id"]
    page.locator(".gm-search input").fill(key)
    page.locator(".gm-search input").press("Enter")
    page.wait_for_selector(f'.gm-search[data-outlined="{key}"]')
    assert grid["properties"]["name"] in page.locator(".leaflet-popup-content").inner_text()
    assert page.evaluate("window.gridmap.map.getZoom()") >= 14
    assert tab.console_errors == [] and tab.page_errors == []
