"""A grid's and a centre's popup link to their own pages (/grids/<id>, /centers/<id>), as text links."""

from __future__ import annotations

import pytest

from tests import factories

from .conftest import XSS_IMG, XSS_SCRIPT, click_popup, goto_ready, grid_where, pointer_at

pytestmark = pytest.mark.browser

CENTRES = "党群服务中心"


def test_a_grid_popup_links_to_the_grid_page(tab, handmade_server):
    page = tab.page
    goto_ready(tab, handmade_server.url("/"))
    grid = grid_where(handmade_server, name=XSS_SCRIPT)
    key = grid["properties"]["grid_id"]
    content = click_popup(tab, pointer_at(tab, grid["point"], layer="网格覆盖状态"), key)
    link = content.locator(".gm-links a", has_text="详情")
    assert link.get_attribute("href") == f"/grids/{key}"
    link.click()
    page.wait_for_url(handmade_server.url(f"/grids/{key}"))
    assert XSS_SCRIPT in page.locator("main").inner_text()  # the grid's own page, its name as text
    assert page.evaluate("() => typeof window.__xss") == "undefined"
    assert tab.page_errors == []


def test_a_centre_popup_links_to_the_centre_page(tab, handmade_server):
    page = tab.page
    goto_ready(tab, handmade_server.url("/"))
    centre = (factories.Y0 + 0.009, factories.X0 + 0.009)  # c1, a community centre named XSS_IMG
    content = click_popup(tab, pointer_at(tab, centre, zoom=16, layer=CENTRES), "c1")
    assert XSS_IMG in content.inner_text()
    link = content.locator(".gm-links a", has_text="详情")
    assert link.get_attribute("href") == "/centers/c1"
    link.click()
    page.wait_for_url(handmade_server.url("/centers/c1"))
    assert XSS_IMG in page.locator("main").inner_text()
    assert page.evaluate("() => [typeof window.__xss, document.querySelectorAll('img[src=\"x\"]').length]") == [
        "undefined", 0]
    assert tab.page_errors == []


def test_english_popups_say_details(tab, handmade_server):
    goto_ready(tab, handmade_server.url("/?lang=en"))
    grid = grid_where(handmade_server, grid_id="g20")
    content = click_popup(tab, pointer_at(tab, grid["point"]), "g20")
    assert content.locator(".gm-links a").first.inner_text() == "Details"
