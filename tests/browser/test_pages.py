"""Pages around the map, in Chromium on the demo: the language switch and the dashboard's sortable table."""

from __future__ import annotations

import re

import pytest

from geodata.i18n import text

pytestmark = pytest.mark.browser

NAV = ".gridmap-nav"


def _nav_page(tab, server, query: str = "") -> None:
    """Open the map; pages extend the base template (with its nav bar), the map may not yet.

    While ``/`` has no ``.gridmap-nav`` (the map page is being moved onto the base template),
    the nav bar is checked on ``/dashboard``, which extends it.  Once ``/`` has the nav bar
    this checks ``/`` itself.
    """
    tab.page.goto(server.url("/" + query))
    if tab.page.locator(NAV).count() == 0:
        tab.page.goto(server.url("/dashboard" + query))


def test_lang_en_shows_english_navigation(tab, demo_server):
    _nav_page(tab, demo_server, "?lang=en")
    nav = tab.page.locator(NAV)
    nav.wait_for(state="visible")
    for key in ("nav.map", "nav.dashboard", "nav.api"):
        assert text(key, "en") in nav.inner_text(), (key, nav.inner_text())
        assert text(key, "zh") not in nav.inner_text()
    assert tab.page.locator("html").get_attribute("lang") == "en"
    assert tab.page_errors == []


def test_chinese_by_default_and_english_is_remembered(tab, demo_server):
    _nav_page(tab, demo_server)
    nav = tab.page.locator(NAV)
    assert text("nav.dashboard", "zh") in nav.inner_text()
    assert tab.page.locator("html").get_attribute("lang") == "zh-CN"

    _nav_page(tab, demo_server, "?lang=en")
    _nav_page(tab, demo_server)  # no ?lang: the cookie remembers English
    assert text("nav.dashboard", "en") in tab.page.locator(NAV).inner_text()


# Each body row of the table: its first cell's text and its value in column ``col``
# (a data-value attribute when the cell has one, else its text).
ROWS_JS = """
([table, col]) => [...document.querySelector(table).tBodies].flatMap((body) => [...body.rows]).map((row) => {
  const cell = row.cells[col];
  return [row.cells[0].textContent.trim(),
          cell.getAttribute('data-value') ?? cell.getAttribute('data-sort-value') ?? cell.textContent.trim()];
})
"""


def _number(value: str) -> float:
    digits = re.sub(r"[^\d.\-]", "", value)
    assert digits, f"no number in {value!r}"
    return float(digits)


def test_dashboard_table_sorts_by_population_both_ways(tab, demo_server):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = tab.page
    page.goto(demo_server.url("/dashboard"))
    table = 'table.sortable[data-level="district"]'
    try:
        page.locator(f"{table} tbody tr").first.wait_for(state="visible", timeout=15_000)
        missing = False
    except PlaywrightTimeout:
        missing = True
    if missing:
        pytest.fail(f"/dashboard shows no {table} with body rows within 15 s", pytrace=False)
    heading = page.locator(f'{table} th[data-sort="population"]')
    assert heading.get_attribute("data-type") == "number"
    col = heading.evaluate("th => th.cellIndex")
    before = page.evaluate(ROWS_JS, [table, col])
    population = {name: _number(value) for name, value in before}
    assert len(before) >= 2 and len(set(population.values())) == len(before), before  # distinct: one right order

    heading.click()
    first = heading.get_attribute("aria-sort")
    assert first in ("ascending", "descending")
    names = [name for name, _ in page.evaluate(ROWS_JS, [table, col])]
    assert names == sorted(population, key=population.get, reverse=first == "descending")

    heading.click()
    second = heading.get_attribute("aria-sort")
    assert {first, second} == {"ascending", "descending"}
    assert [name for name, _ in page.evaluate(ROWS_JS, [table, col])] == names[::-1]
    # the rows moved whole: every name still has its own population
    assert {name: _number(value) for name, value in page.evaluate(ROWS_JS, [table, col])} == population
    assert tab.page_errors == []
