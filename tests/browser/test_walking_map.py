"""The city map with walking catchments (GRIDMAP_CATCHMENT=network, the demo's roads), in Chromium (issue #16):
the walking catchments, the life-circle rings and the walk gaps are layers drawn from vector tiles, off at
first, listed in the layer control and the legend."""

from __future__ import annotations

import time

import pytest
import requests

from tests.live import live_server

from .conftest import Server, goto_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WALK, RINGS, WALK_GAPS = "步行服务范围", "生活圈（步行距离）", "半径内步行不可达"


@pytest.fixture(scope="module")
def walking_server(demo_data_dir, tmp_path_factory):
    with live_server(demo_data_dir, tmp_path_factory.mktemp("logs") / "walking-server.log", demo=True,
                     CATCHMENT="network") as base:
        wait_warm(base)
        # the catchments collection is made when first asked for (the layers are off at first): made here
        assert requests.get(f"{base}/api/collections/catchments/items?limit=1", timeout=900).status_code == 200
        yield Server(base, demo_data_dir)


def wait_warm(base: str, seconds: float = 600) -> None:
    """Until the worker has made its (walking) analysis: a cold walk of the demo takes a while on a busy machine."""
    deadline = time.monotonic() + seconds
    while not requests.get(f"{base}/healthz", timeout=60).json().get("warm"):
        assert time.monotonic() < deadline, "the walking server never warmed up"
        time.sleep(1)


def test_walking_catchments_rings_and_walk_gaps_draw_from_tiles(tab, walking_server):
    page = tab.page
    goto_ready(tab, walking_server.url("/"))
    overlays = page.evaluate("""() => [...document.querySelectorAll('.leaflet-control-layers-overlays input')]
        .map((input) => [input.closest('label').textContent.trim(), input.checked])""")
    shown = dict(overlays)
    for name in (WALK, RINGS, WALK_GAPS):
        assert shown.get(name) is False, overlays  # listed, off at first
    legend = page.locator(".gridmap-legend").inner_text()
    for text in ("步行服务范围", "步行300米", "步行500米", "步行1000米", "步行不可达"):
        assert text in legend, legend

    gap = requests.get(walking_server.url("/api/collections/gaps/items"), params={"kind": "walk_gap", "limit": 1},
                       timeout=120).json()["features"][0]
    lon, lat = gap["geometry"]["coordinates"][0][0][0] if gap["geometry"]["type"] == "MultiPolygon" \
        else gap["geometry"]["coordinates"][0][0]
    page.goto("about:blank")  # a new load: the page follows its view into the fragment, and would keep its own
    # (the fragment takes at most 12 decimals)
    page.goto(walking_server.url(f"/#z=14&lat={lat:.5f}&lon={lon:.5f}"
                                 "&layers=grids,walk_catchments,life_circles,walk_gaps"))
    page.wait_for_selector("body[data-gridmap-ready]", state="attached", timeout=120_000)
    for name in (WALK, RINGS, WALK_GAPS):
        try:  # (a busy machine cuts the first tiles of 50,000 catchment polygons slowly)
            page.wait_for_function("(name) => window.gridmap.tileFeatures(name).length > 0", arg=name,
                                   timeout=600_000)
        except Exception:
            pytest.fail(f"{name}: no features drawn; requests {[u for u in tab.requests if '/tiles/' in u][-5:]}")
    kinds = page.evaluate("(name) => [...new Set(window.gridmap.tileFeatures(name).map((p) => p.kind))]", WALK)
    assert kinds == ["walk"], kinds
    rings = page.evaluate("(name) => [...new Set(window.gridmap.tileFeatures(name).map((p) => p.distance_m))]", RINGS)
    assert set(rings) <= {300, 500, 1000} and rings, rings
    gaps = page.evaluate("(name) => [...new Set(window.gridmap.tileFeatures(name).map((p) => p.kind))]", WALK_GAPS)
    assert gaps == ["walk_gap"], gaps
    assert tab.page_errors == []
