"""The map over a PostGIS store, in Chromium: the stored layers' tiles are cut by the database (``ST_AsMVT``),
the derived ones in the app, and both draw."""

from __future__ import annotations

import mapbox_vector_tile
import pytest
import requests
from shapely import Point

from geodata import tiles
from tests import factories
from tests.live import live_server

from .conftest import Server, goto_ready, grid_where, pointer_at
from .test_map import PIXEL_JS

pytestmark = pytest.mark.browser

COVERAGE, CENTRES = "网格覆盖状态", "党群服务中心"


@pytest.fixture
def postgis_server(postgis_url, tmp_path):
    from geodata.store import open_store
    from geodata.validate import validate

    store = open_store(postgis_url)
    x0, y0 = factories.X0, factories.Y0
    centres = factories.centers([factories.center_row("c1", "community"), factories.center_row("c2", "street")],
                                points=[Point(x0 + 0.009, y0 + 0.009), Point(x0 + 0.019, y0 + 0.009)])
    for layer, gdf in (("grids", factories.six_grids()), ("centers", centres)):
        report = validate(gdf, layer)
        assert report.ok, report.errors
        store.write(layer, report.data, author="browser-tests")
    with live_server(tmp_path / "data", tmp_path / "server.log", demo=False, DATABASE_URL=postgis_url) as base:
        yield Server(base, tmp_path / "data")


def test_the_map_draws_the_tiles_postgis_cuts(tab, postgis_server):
    page = tab.page
    answered = []
    page.on("response", lambda response: "/tiles/WebMercatorQuad/" in response.url and answered.append(response))
    goto_ready(tab, postgis_server.url("/"))
    grid = grid_where(postgis_server, grid_id="g11")
    pointer_at(tab, grid["point"], zoom=15, layer=COVERAGE)  # a grid drawn where it is, from the coverage tiles
    page.wait_for_function(f"(a) => ({PIXEL_JS})(a) && ({PIXEL_JS})(a)[3] > 0", arg=[COVERAGE, *grid["point"]])
    page.wait_for_function(f"() => window.gridmap.tileFeatures('{CENTRES}').some((p) => p.center_id === 'c1')")

    centre_tiles = [r for r in answered if "/collections/centers/tiles/" in r.url and r.status == 200]
    assert centre_tiles, [(r.url, r.status) for r in answered]  # the centres' tiles: ST_AsMVT's
    assert all(r.headers["content-type"] == tiles.MVT for r in centre_tiles)
    # (a response's body is not kept for the test: the same tiles asked for again)
    bodies = [requests.get(r.url, timeout=60).content for r in centre_tiles]
    drawn = {f["properties"]["center_id"] for body in bodies
             for f in mapbox_vector_tile.decode(body).get("centers", {"features": []})["features"]}
    assert {"c1", "c2"} <= drawn
    assert all(r.status in (200, 204, 304) for r in answered), [(r.url, r.status) for r in answered]
    assert tab.console_errors == [] and tab.page_errors == []
