"""The dashboard at 390×844: no page-wide sideways scroll; every table fits the window or scrolls inside
its own box (which fits); the coverage-over-time table fills in from the API."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}

# Each visible table that is wider than the window, unless it sits in a box of its own that scrolls
# sideways and itself fits the window: [class, table width, box width or null].
SPILLING_TABLES = """() => [...document.querySelectorAll("main table")].filter((t) => t.getClientRects().length)
  .map((t) => {
    let box = t.parentElement;
    while (box && box !== document.body && !/(auto|scroll)/.test(getComputedStyle(box).overflowX)) {
      box = box.parentElement;
    }
    const scrolls = box && box !== document.body;
    return [t.className, Math.round(t.getBoundingClientRect().right),
            scrolls ? Math.round(box.getBoundingClientRect().right) : null];
  })
  .filter(([, right, boxRight]) => right > window.innerWidth && (boxRight === null || boxRight > window.innerWidth))"""


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard?lang=en"])
def test_phone_dashboard_tables_scroll_in_their_own_box(tab, demo_server, path):
    page = tab.page
    page.set_viewport_size(PHONE)
    page.goto(demo_server.url(path))
    page.wait_for_selector('section.history[data-state="loaded"]', timeout=120_000)
    page.evaluate("() => document.querySelectorAll('main details').forEach((d) => { d.open = true; })")
    assert page.evaluate(SPILLING_TABLES) == []
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
    rows = page.locator("section.history tbody tr")
    assert rows.count() >= 1 and page.locator("section.history td.history-whole").first.get_attribute("data-share")
    # the version's time as the server shows it, in GRIDMAP_TIMEZONE (Asia/Shanghai), not the browser's zone
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d \(UTC\+8\)", rows.first.locator("td").first.inner_text())
    assert tab.page_errors == []
