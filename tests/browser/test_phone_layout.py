"""Observation 5 (issue 14): the pages at 390×844 — one-line navigation, no horizontal scroll,
the planning panel folded — and at 1440×900 as before."""

from __future__ import annotations

import pytest

from geodata.i18n import text

from .conftest import goto_ready
from .test_upload_page import editing_data, editing_server, sign_in_and_open_upload  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1440, "height": 900}
NAV = "nav.gridmap-nav"
SCROLL_WIDTH = "() => document.scrollingElement.scrollWidth"
# Whatever of the nav bar shows lies within its one line and within the window (its height is fixed,
# so text wrapping over three lines spills out of the bar rather than growing it).
NAV_SPILLS = """(selector) => {
  const nav = document.querySelector(selector), bar = nav.getBoundingClientRect();
  return [...nav.querySelectorAll("a, button, span")].filter((el) => el.getClientRects().length > 0)
    .map((el) => [el.textContent.trim(), el.getBoundingClientRect()])
    .filter(([, r]) => r.top < bar.top || r.bottom > bar.bottom || r.left < 0 || r.right > window.innerWidth)
    .map(([name, r]) => `${name}: ${r.left},${r.top} ${r.width}x${r.height}`);
}"""


def assert_phone_layout(page, name, tmp_path):
    nav = page.locator(NAV).bounding_box()
    assert nav["height"] <= 56, (name, nav)  # one line, not three
    assert page.evaluate(NAV_SPILLS, NAV) == [], name
    assert page.evaluate(SCROLL_WIDTH) <= PHONE["width"], name  # no horizontal scroll
    page.screenshot(path=str(tmp_path / f"gridmap-390-{name}.png"), full_page=True)


def test_phone_map_has_a_one_line_nav_and_a_folded_planning_panel(tab, demo_server, tmp_path):
    page = tab.page
    page.set_viewport_size(PHONE)
    goto_ready(tab, demo_server.url("/"))
    assert_phone_layout(page, "map", tmp_path)

    panel, toggle = page.locator(".gm-planning"), page.locator(".gm-planning-toggle")
    assert panel.is_visible() and not page.locator(".gm-planning-body").is_visible()
    assert toggle.get_attribute("aria-expanded") == "false"
    map_box, box = page.locator(".folium-map").bounding_box(), panel.bounding_box()
    assert box["width"] * box["height"] <= 0.25 * map_box["width"] * map_box["height"], (box, map_box)
    toggle.click()
    assert page.locator(".gm-planning-body").is_visible()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.evaluate(SCROLL_WIDTH) <= PHONE["width"]

    # the links are behind a real button that says whether it is open
    menu = page.locator(f"{NAV} button.nav-toggle")
    assert menu.get_attribute("aria-expanded") == "false"
    dashboard = page.locator(f"{NAV} a", has_text=text("nav.dashboard", "zh"))
    assert not dashboard.is_visible()
    menu.click()
    assert menu.get_attribute("aria-expanded") == "true" and dashboard.is_visible()
    assert page.evaluate(SCROLL_WIDTH) <= PHONE["width"]
    page.screenshot(path=str(tmp_path / "gridmap-390-map-menu-open.png"))
    dashboard.click()
    page.wait_for_url(demo_server.url("/dashboard"))
    assert tab.page_errors == []
    print(f"screenshots at 390×844: {tmp_path}")


@pytest.mark.parametrize("path", ["/dashboard", "/history/grids", "/dashboard?lang=en"])
def test_phone_pages_have_no_horizontal_scroll(tab, demo_server, tmp_path, path):
    page = tab.page
    page.set_viewport_size(PHONE)
    page.goto(demo_server.url(path))
    page.wait_for_load_state("load")
    assert_phone_layout(page, path.strip("/").replace("/", "-").replace("?", "-"), tmp_path)
    assert tab.page_errors == []


def test_phone_upload_page_for_a_signed_in_editor(tab, editing_server, tmp_path):
    tab.page.set_viewport_size(PHONE)
    sign_in_and_open_upload(tab, editing_server)
    assert_phone_layout(tab.page, "upload", tmp_path)
    tab.page.locator(f"{NAV} button.nav-toggle").click()  # the editor's own entries are in the menu
    assert tab.page.locator(f"{NAV} form.logout button").is_visible()
    assert tab.page.evaluate(SCROLL_WIDTH) <= PHONE["width"]
    tab.page.screenshot(path=str(tmp_path / "gridmap-390-upload-menu-open.png"))
    assert tab.page_errors == []


def test_wide_screen_shows_every_link_and_an_open_planning_panel(tab, demo_server, tmp_path):
    page = tab.page
    page.set_viewport_size(WIDE)
    goto_ready(tab, demo_server.url("/"))
    assert not page.locator(f"{NAV} button.nav-toggle").is_visible()
    for key in ("nav.map", "nav.dashboard", "nav.history", "nav.api", "nav.switch_language"):
        assert page.locator(f"{NAV} a", has_text=text(key, "zh")).first.is_visible(), key
    assert page.locator(NAV).bounding_box()["height"] <= 56
    assert page.evaluate(NAV_SPILLS, NAV) == []
    assert page.locator(".gm-planning-body").is_visible()
    page.screenshot(path=str(tmp_path / "gridmap-1440-map.png"))
    print(f"screenshot at 1440×900: {tmp_path}")
