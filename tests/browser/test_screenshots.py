"""Screenshots of the pages planners and staff meet (issue 14), at 1440×900 and 390×844: the city map,
a unit map, the dashboard, the upload report after a rejected upload, and a grid page.

Saved into ``GRIDMAP_SCREENSHOT_DIR`` when set (made if missing), else a temp folder; the folder is
printed (``pytest -s``).  Each test asserts something visible on its page before the picture is taken:
they are artefacts for a person to look at, not pixel comparisons.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import factories

from .conftest import goto_ready
from .test_upload_page import (check, editing_data, editing_server, geojson_file,  # noqa: F401 (fixtures)
                               sign_in_and_open_upload)

pytestmark = pytest.mark.browser

SIZES = {"1440": {"width": 1440, "height": 900}, "390": {"width": 390, "height": 844}}
GRID = "330203-01-001-01"
READY_GRIDS = "() => window.gridmap.tileFeatures('网格覆盖状态').length > 0"


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    chosen = os.environ.get("GRIDMAP_SCREENSHOT_DIR", "").strip()
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page, folder: Path, name: str, size: str, full_page: bool = False) -> Path:
    page.mouse.move(0, 0)  # no tooltip in the picture
    path = folder / f"{name}-{size}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 5_000, path  # something was drawn
    print(f"screenshot: {path}")
    return path


@pytest.mark.parametrize("size", SIZES)
def test_screenshot_of_the_city_map(tab, demo_server, screenshot_dir, size):
    page = tab.page
    page.set_viewport_size(SIZES[size])
    goto_ready(tab, demo_server.url("/"))
    page.wait_for_function(READY_GRIDS)
    assert page.locator(".gridmap-legend").is_visible() and page.locator(".folium-map").is_visible()
    assert page.locator(".gm-planning").is_visible()
    shoot(page, screenshot_dir, "map", size)
    assert tab.page_errors == []


@pytest.mark.parametrize("size", SIZES)
def test_screenshot_of_a_unit_map(tab, demo_server, screenshot_dir, size):
    page = tab.page
    page.set_viewport_size(SIZES[size])
    goto_ready(tab, demo_server.url("/map?district=海曙区"))
    page.wait_for_function(READY_GRIDS)
    title = page.locator(".gm-map-title")
    assert title.is_visible() and title.inner_text() == "海曙区"  # the Ningbo demo names no city
    shoot(page, screenshot_dir, "unit-map", size)
    assert tab.page_errors == []


@pytest.mark.parametrize("size", SIZES)
def test_screenshot_of_the_dashboard(tab, demo_server, screenshot_dir, size):
    page = tab.page
    page.set_viewport_size(SIZES[size])
    page.goto(demo_server.url("/dashboard"))
    page.wait_for_selector('section.history[data-state="loaded"]', timeout=120_000)
    assert page.locator("h1").is_visible() and page.locator(".cards .card").first.is_visible()
    assert page.locator("section.history tbody tr").count() >= 1
    shoot(page, screenshot_dir, "dashboard", size, full_page=True)
    assert tab.page_errors == []


@pytest.mark.parametrize("size", SIZES)
def test_screenshot_of_the_upload_report_after_a_rejected_upload(tab, editing_server, screenshot_dir, size,
                                                                tmp_path):
    page = tab.page
    page.set_viewport_size(SIZES[size])
    sign_in_and_open_upload(tab, editing_server)
    bad = factories.six_grids()
    bad.loc[3, "grid_id"] = "g00"  # a duplicate key: refused
    check(page, geojson_file(tmp_path, "bad.geojson", bad), "invalid")
    assert page.locator("#upload-problems tbody tr[data-kind]").first.is_visible()
    page.locator("#upload-problems").scroll_into_view_if_needed()
    shoot(page, screenshot_dir, "upload-report", size, full_page=True)
    assert tab.page_errors == []


@pytest.mark.parametrize("size", SIZES)
def test_screenshot_of_a_grid_page(tab, demo_server, screenshot_dir, size):
    page = tab.page
    page.set_viewport_size(SIZES[size])
    page.goto(demo_server.url(f"/grids/{GRID}"))
    assert page.locator("main h1").is_visible() and GRID in page.locator("main").inner_text()
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= SIZES[size]["width"]
    shoot(page, screenshot_dir, "grid-page", size, full_page=True)
    assert tab.page_errors == []
