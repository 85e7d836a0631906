"""Share and print: a unit's map titled by its unit, saved as a PNG of the view (its legend and title
in it), and printed without the navigation or the panels."""

from __future__ import annotations

import struct
from urllib.parse import quote

import pytest

from .conftest import XSS_IMG, goto_ready

pytestmark = pytest.mark.browser

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOTHING_RAN_JS = "() => [typeof window.__xss, document.querySelectorAll('img[src=\"x\"]').length]"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE, data[:16]
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_a_unit_map_shows_its_title_as_text(tab, handmade_server):
    page = tab.page
    goto_ready(tab, handmade_server.url("/map?district=海曙区"))
    title = page.locator(".gm-map-title")
    assert title.is_visible() and title.inner_text() == "海曙区"
    goto_ready(tab, handmade_server.url("/map?community=" + quote(XSS_IMG)))
    assert title.inner_text() == f"{XSS_IMG} · 月湖街道 · 海曙区"  # its names as text: nothing ran
    assert page.evaluate(NOTHING_RAN_JS) == ["undefined", 0]
    goto_ready(tab, handmade_server.url("/"))
    assert not title.is_visible()  # the city map's title is for print and export only
    assert tab.page_errors == []


def test_the_map_saves_as_a_png_of_its_view_with_title_and_legend(tab, handmade_server, tmp_path):
    page = tab.page
    goto_ready(tab, handmade_server.url("/map?district=海曙区"))
    width, height = page.evaluate("""() => {
      const box = window.gridmap.map.getContainer().getBoundingClientRect();
      return [Math.round(box.width), Math.round(box.height)];
    }""")
    with page.expect_download() as download:
        page.locator(".gm-export").click()
    assert download.value.suggested_filename == "海曙区.png"
    path = tmp_path / "map.png"
    download.value.save_as(path)
    data = path.read_bytes()
    assert png_size(data) == (width, height)  # the map's size
    assert len(data) > 5_000  # drawn, not blank

    from PIL import Image

    image = Image.open(path).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 24)
    from maps.palette import STATUS_COLOURS

    assert len(colours) > 50  # grids, outlines, the legend's text: not one flat colour
    legend = page.locator(".gridmap-legend").bounding_box()
    box = page.evaluate("() => window.gridmap.map.getContainer().getBoundingClientRect().toJSON()")
    # the legend's swatch of covered grids is in the picture where the legend is on the page
    swatch = page.locator(".gridmap-legend .gridmap-swatch").first.bounding_box()
    x, y = int(swatch["x"] - box["x"] + swatch["width"] / 2), int(swatch["y"] - box["y"] + swatch["height"] / 2)
    assert legend["x"] >= box["x"]
    expected = tuple(int(STATUS_COLOURS["covered"][i:i + 2], 16) for i in (1, 3, 5))
    assert max(abs(a - b) for a, b in zip(image.getpixel((x, y)), expected)) <= 8, image.getpixel((x, y))
    assert not page.locator("body.gm-exporting").count()  # the page is as it was
    assert tab.console_errors == [] and tab.page_errors == []


def test_printing_leaves_the_map_its_title_and_legend(tab, handmade_server):
    page = tab.page
    page.set_viewport_size({"width": 390, "height": 844})
    goto_ready(tab, handmade_server.url("/map?district=海曙区"))
    assert page.locator(".gridmap-nav").is_visible()
    page.emulate_media(media="print")
    assert not page.locator(".gridmap-nav").is_visible()
    assert not page.locator(".gm-planning").is_visible() and not page.locator(".gm-export").is_visible()
    assert not page.locator(".leaflet-control-zoom").is_visible()
    assert page.locator(".gm-map-title").is_visible() and page.locator(".gridmap-legend").is_visible()
    assert page.locator(".folium-map").is_visible()
    page.emulate_media(media="screen")
    assert page.locator(".gridmap-nav").is_visible()
    pdf = page.pdf()  # the browser's print, as a PDF
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
