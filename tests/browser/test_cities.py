"""Two cities with namesake units (tests/geodata/test_cities.py), in Chromium: a grid's "show on map" link
names its city, the unit map it opens draws, and the dashboard's city table sorts."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import _serve, click_popup, goto_ready, grid_where, pointer_at

pytestmark = pytest.mark.browser

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
    grid = grid_where(two_cities_server, name="b1网格")
    content = click_popup(tab, pointer_at(tab, grid["point"]), grid["properties"]["grid_id"])
    links = [a.get_attribute("href") for a in content.locator(".gm-links a").all()]
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
