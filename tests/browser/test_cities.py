"""Two cities with namesake units (tests/geodata/test_cities.py), in Chromium: a grid's "show on map" link
names its city, the unit map it opens draws, and the dashboard's city table sorts."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import _serve, goto_ready
from .test_escaping import FIND_GRID_JS

pytestmark = pytest.mark.browser

# The href of the "show on map" link in the popup of the grid named ``name`` (the second link of the popup).
MAP_LINK_JS = f"""
(name) => {{
  const item = ({FIND_GRID_JS})(name), map = item._map;
  map.closePopup();
  item.fire('click', {{latlng: item.getCenter()}}, true);
  const owner = [item, ...Object.values(item._eventParents || {{}})].find((l) => l.getPopup && l.getPopup());
  const popup = owner && owner.getPopup();
  if (!popup || !popup.isOpen()) {{ return null; }}
  return [...popup.getElement().querySelectorAll('.gm-links a')].map((a) => a.getAttribute('href'));
}}
"""


@pytest.fixture(scope="module")
def two_cities_server(tmp_path_factory):
    from geodata.store import open_store
    from tests.geodata.test_cities import layout

    data_dir = tmp_path_factory.mktemp("two-cities-data")
    store = open_store(data_dir)
    grids, centers = layout()
    store.write("grids", grids, author="browser-tests")
    store.write("centers", centers, author="browser-tests")
    yield from _serve(data_dir, tmp_path_factory.mktemp("logs") / "two-cities-server.log", demo=False)


def test_a_grids_map_link_names_its_city_and_opens_that_unit(tab, two_cities_server):
    page = tab.page
    goto_ready(tab, two_cities_server.url("/"))
    links = page.evaluate(MAP_LINK_JS, "b1网格")
    assert links is not None, "no popup opened"
    [unit] = [href for href in links if urlsplit(href).path == "/map"]
    assert {k: v for k, [v] in parse_qs(urlsplit(unit).query).items()} == {
        "city": "乙市", "district": "市辖区", "street": "中山街道", "community": "东门社区"}
    goto_ready(tab, two_cities_server.url(unit))
    assert "东门社区" in page.title()
    assert tab.page_errors == [] and tab.console_errors == []


def test_the_dashboard_city_table_sorts_by_population(tab, two_cities_server):
    page = tab.page
    page.goto(two_cities_server.url("/dashboard"))
    table = 'table.sortable[data-level="city"]'
    cities = lambda: page.locator(f"{table} tbody tr td:first-child").all_inner_texts()  # noqa: E731
    assert cities() == ["甲市", "乙市"]
    page.locator(f'{table} th[data-sort="population"] button').click()
    first = cities()
    page.locator(f'{table} th[data-sort="population"] button').click()
    assert {tuple(first), tuple(cities())} == {("甲市", "乙市"), ("乙市", "甲市")}  # one way, then the other
    assert tab.page_errors == []
