"""The city map (``/``) on the Ningbo demo, in Chromium: it draws, stays offline, layers toggle, legend."""

from __future__ import annotations

import pytest

from .conftest import click_popup, goto_ready, grid_where, pointer_at

pytestmark = pytest.mark.browser

# The RGBA of the pixel a tile layer's canvas painted at a map point (null when no tile is there).
PIXEL_JS = """
([name, lat, lng]) => {
  const map = window.gridmap.map, layer = window.gridmap.layers[name], z = map.getZoom();
  const size = layer.getTileSize(), point = map.project(L.latLng(lat, lng), z);
  const coords = point.unscaleBy(size).floor(), tile = layer._tiles[coords.x + ':' + coords.y + ':' + z];
  if (!tile || !tile.el.getContext) { return null; }
  const local = point.subtract(coords.scaleBy(size)).round();
  return [...tile.el.getContext('2d').getImageData(local.x, local.y, 1, 1).data];
}
"""


def hex_rgb(colour: str) -> list[int]:
    return [int(colour[i:i + 2], 16) for i in (1, 3, 5)]


def test_city_map_draws_grids_from_tiles_in_their_status_colours(tab, demo_server, tmp_path):
    """The map asks for tiles, never for whole layers, and paints each grid where it is, in its status's colour."""
    from maps.palette import STATUS_COLOURS

    page = tab.page
    goto_ready(tab, demo_server.url("/"))
    assert any("/api/collections/coverage/tiles/WebMercatorQuad/" in url for url in tab.requests), tab.requests
    assert not any(url.endswith(".geojson") for url in tab.requests), tab.requests  # no layer downloaded whole
    # at the city's zoom, the grids come dissolved by district and status: a few shapes, every status drawn
    statuses = page.evaluate("() => [...new Set(window.gridmap.tileFeatures('网格覆盖状态').map((p) => p.coverage_status))]")
    assert set(statuses) == set(STATUS_COLOURS), statuses

    for status in STATUS_COLOURS:  # closer in: each grid; the pixel at a point inside it has its colour
        grid = grid_where(demo_server, coverage_status=status)
        pointer_at(tab, grid["point"], zoom=15, layer="网格覆盖状态")
        hit = page.evaluate("([lat, lng]) => window.gridmap.featureAt(window.gridmap.map, L.latLng(lat, lng)).props",
                            grid["point"])
        assert hit["grid_id"] == grid["properties"]["grid_id"] and hit["coverage_status"] == status, hit
        page.wait_for_function(f"(a) => ({PIXEL_JS})(a) && ({PIXEL_JS})(a)[3] > 0", arg=["网格覆盖状态", *grid["point"]])
        r, g, b, alpha = page.evaluate(PIXEL_JS, ["网格覆盖状态", *grid["point"]])
        assert max(abs(c - e) for c, e in zip((r, g, b), hex_rgb(STATUS_COLOURS[status]))) <= 12, (status, r, g, b)
        assert 90 <= alpha <= 140, alpha  # fillOpacity 0.45
    assert tab.console_errors == [] and tab.page_errors == []

    shot = tmp_path / "gridmap-city.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # a blank page compresses to far less
    print(f"screenshot of / on the demo: {shot}")


def test_a_grid_popup_shows_the_clicked_grid_fetched_by_its_key(tab, demo_server):
    goto_ready(tab, demo_server.url("/"))
    grid = grid_where(demo_server, grid_id="330203-01-001-01")
    content = click_popup(tab, pointer_at(tab, grid["point"], layer="网格覆盖状态"), "330203-01-001-01")
    text = content.inner_text()
    props = grid["properties"]
    for value in (props["name"], props["grid_id"], props["community"], f"{props['population']:,}"):
        assert value in text, (value, text)
    assert any(url.endswith("/api/collections/coverage/items/330203-01-001-01") for url in tab.requests)
    assert tab.console_errors == [] and tab.page_errors == []


def test_city_map_makes_no_request_beyond_the_app(tab, demo_server):
    goto_ready(tab, demo_server.url("/"))
    tab.page.wait_for_load_state("load")
    assert demo_server.url("/") in tab.requests  # the recorder sees the page itself ...
    assert any("/tiles/WebMercatorQuad/" in url for url in tab.requests), tab.requests  # ... and its tiles
    outside = [url for url in tab.requests
               if not url.startswith((demo_server.base + "/", "data:", "blob:"))]
    assert outside == []


# The overlays in the layer control that are gridmap layers: their index, label and state.
OVERLAYS_JS = """
() => {
  const registry = window.gridmap;
  const known = [...Object.values(registry.shown || {}), ...Object.values(registry.layers)];
  return [...document.querySelectorAll('.leaflet-control-layers-overlays input')].map((input, index) => ({
    index: index,
    label: input.closest('label').textContent.trim(),
    checked: input.checked,
    ours: known.some((layer) => L.stamp(layer) === input.layerId),
  }));
}
"""

# Whether the layer behind overlay checkbox ``index`` is on the map.
ON_MAP_JS = """
(index) => {
  const registry = window.gridmap;
  const input = document.querySelectorAll('.leaflet-control-layers-overlays input')[index];
  const known = [...Object.values(registry.shown || {}), ...Object.values(registry.layers)];
  const layer = known.find((l) => L.stamp(l) === input.layerId);
  return registry.map ? registry.map.hasLayer(layer) : Boolean(layer._map);
}
"""


def test_layer_control_lists_layers_and_switches_them(tab, demo_server):
    page = tab.page
    goto_ready(tab, demo_server.url("/"))
    control = page.locator(".leaflet-control-layers")
    control.hover()  # a collapsed control opens on hover

    overlays = page.evaluate(OVERLAYS_JS)
    labels = [o["label"] for o in overlays]
    for name in page.evaluate("Object.keys(window.gridmap.layers)"):
        assert name in labels, (name, labels)
    ours = [o for o in overlays if o["ours"]]
    assert len(ours) >= 2, overlays
    assert any(o["checked"] for o in ours), overlays

    checkboxes = page.locator(".leaflet-control-layers-overlays input")
    for overlay in ours:
        box, index = checkboxes.nth(overlay["index"]), overlay["index"]
        assert page.evaluate(ON_MAP_JS, index) == overlay["checked"], overlay
        for _ in range(2):  # off and on again (or on and off, for a layer hidden at start)
            control.hover()
            before = box.is_checked()
            box.set_checked(not before)
            assert page.evaluate(ON_MAP_JS, index) is (not before), (overlay["label"], "after", not before)
    assert page.evaluate("() => window.gridmap.tileFeatures('网格覆盖状态').length") > 0  # drawn again
    assert tab.page_errors == []


def test_legend_is_visible_and_lists_entries(tab, demo_server):
    page = tab.page
    goto_ready(tab, demo_server.url("/"))
    legend = page.locator(".gridmap-legend")
    assert legend.is_visible()
    box = legend.bounding_box()
    assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= 1280 and box["y"] + box["height"] <= 800
    rows = legend.locator(".gridmap-legend-row")
    assert rows.count() >= 3
    for text in rows.all_inner_texts():
        assert text.strip(), rows.all_inner_texts()
    assert legend.locator(".gridmap-legend-row .gridmap-swatch").count() == rows.count()


# The tile layers, bottom to top as the page stacks them, each named by what its tiles hold.
DRAW_ORDER_JS = """
() => [...document.querySelectorAll('.leaflet-gridmap-tiles-pane > .leaflet-layer')]
  .sort((a, b) => Number(a.style.zIndex) - Number(b.style.zIndex))
  .map((el) => Object.values(window.gridmap.layers).find((l) => l.getContainer && l.getContainer() === el))
  .map((l) => l.gridmapOptions.kinds ? l.gridmapOptions.kinds.join('+') : l.gridmapOptions.layer)
"""


def test_layers_draw_in_a_fixed_order_whatever_order_their_tiles_arrive(tab, demo_server):
    """Observation 6 (missing-centre outlines drew over the grids in some loads, under them in others): each
    tile layer has its place in the stack, held while the grids' tiles come last."""
    page = tab.page
    waiting = []
    page.route("**/api/collections/coverage/tiles/**", lambda route: waiting.append(route))
    page.goto(demo_server.url("/#z=13&lat=29.87&lon=121.55&layers=grids,gaps,tiling,missing,streets,districts,centers"),
              wait_until="commit")
    page.wait_for_function("() => window.gridmap && window.gridmap.map")
    for _ in range(600):  # (routes are handled while Playwright waits)
        if waiting:
            break
        page.wait_for_timeout(50)
    assert waiting, "the grids' tiles were never asked for"
    for route in waiting:
        route.continue_()
    page.unroute("**/api/collections/coverage/tiles/**")
    page.wait_for_selector("body[data-gridmap-ready]", state="attached", timeout=90_000)
    assert page.evaluate(DRAW_ORDER_JS) == ["coverage", "service_gap", "tiling_gap+overlap", "missing_center",
                                            "streets", "districts", "centers"]
    assert tab.page_errors == []


def test_legend_folds_on_a_phone_and_opens_on_demand(tab, demo_server, tmp_path):
    """Observation 5: at 390×844 the legend could not be folded and covered 40 % of the map."""
    page = tab.page
    page.set_viewport_size({"width": 390, "height": 844})
    goto_ready(tab, demo_server.url("/"))
    legend, map_box = page.locator(".gridmap-legend"), page.locator(".folium-map").bounding_box()
    map_area = map_box["width"] * map_box["height"]

    assert legend.is_visible()
    assert page.evaluate("() => document.querySelector('.gridmap-legend').open") is False
    folded = legend.bounding_box()
    assert folded["width"] * folded["height"] <= 0.25 * map_area, (folded, map_box)
    assert not legend.locator(".gridmap-legend-row").first.is_visible()
    page.screenshot(path=str(tmp_path / "gridmap-390-legend-folded.png"))

    legend.locator("summary").click()
    assert legend.locator(".gridmap-legend-row").first.is_visible()
    opened = legend.bounding_box()
    assert opened["x"] >= 0 and opened["x"] + opened["width"] <= 390  # no horizontal scroll
    page.screenshot(path=str(tmp_path / "gridmap-390-legend-open.png"))
    legend.locator("summary").click()
    assert not legend.locator(".gridmap-legend-row").first.is_visible()
    print(f"screenshots of / at 390×844: {tmp_path}")


def test_legend_starts_open_on_a_wide_screen(tab, demo_server, tmp_path):
    page = tab.page
    page.set_viewport_size({"width": 1440, "height": 900})
    goto_ready(tab, demo_server.url("/"))
    assert page.evaluate("() => document.querySelector('.gridmap-legend').open") is True
    assert page.locator(".gridmap-legend .gridmap-legend-row").first.is_visible()
    page.screenshot(path=str(tmp_path / "gridmap-1440.png"))
    print(f"screenshot of / at 1440×900: {tmp_path}")


# --- the URL follows the view (observation 10: nothing could be shared) --------------------------

VIEW_JS = """
() => {
  const g = window.gridmap, c = g.map.getCenter();
  return {zoom: g.map.getZoom(), lat: c.lat, lon: c.lng,
          layers: Object.keys(g.keyed).filter((k) => g.map.hasLayer(g.keyed[k].layer)).sort()};
}
"""


def _fragment(page) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit
    return dict(parse_qsl(urlsplit(page.url).fragment, keep_blank_values=True))


def _toggle_overlay(page, key: str) -> None:
    """Click the layer control's checkbox of the layer with this URL key."""
    page.locator(".leaflet-control-layers").hover()
    index = page.evaluate("""(key) => [...document.querySelectorAll('.leaflet-control-layers-overlays input')]
        .findIndex((input) => input.layerId === L.stamp(window.gridmap.keyed[key].layer))""", key)
    assert index >= 0, key
    page.locator(".leaflet-control-layers-overlays input").nth(index).click()


def test_the_url_follows_the_view_and_restores_it(tab, browser, demo_server, tmp_path):
    """Observation 10: the URL did not follow the view, so a view could not be shared."""
    page = tab.page
    page.set_viewport_size({"width": 1440, "height": 900})
    goto_ready(tab, demo_server.url("/?lang=en"))
    start = page.evaluate(VIEW_JS)
    assert "gaps" not in start["layers"] and "grids" in start["layers"], start

    entries = page.evaluate("history.length")
    page.evaluate("() => window.gridmap.map.setView([29.87, 121.55], 13, {animate: false})")
    _toggle_overlay(page, "gaps")  # on: hidden at start
    _toggle_overlay(page, "centers")  # off: shown at start
    # the URL catches up with the view (writes are throttled)
    page.wait_for_function("""() => { const layers = new URLSearchParams(location.hash.slice(1)).get('layers');
        return layers !== null && layers.split(',').includes('gaps') && !layers.split(',').includes('centers'); }""")
    fragment = _fragment(page)
    assert fragment["z"] == "13", fragment
    assert abs(float(fragment["lat"]) - 29.87) < 1e-4 and abs(float(fragment["lon"]) - 121.55) < 1e-4, fragment
    shared = page.evaluate(VIEW_JS)
    assert sorted(fragment["layers"].split(",")) == shared["layers"], (fragment, shared)
    assert "gaps" in shared["layers"] and "centers" not in shared["layers"], shared
    assert "?lang=en#" in page.url, page.url  # the query is kept
    assert page.evaluate("history.length") == entries  # replaced, not pushed: Back leaves the map

    # the shared URL, opened in a new browser, shows the same view and layers (not the default ones)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN", service_workers="block")
    try:
        other = context.new_page()
        other.goto(page.url)
        other.wait_for_selector("body[data-gridmap-ready]", state="attached", timeout=90_000)
        restored = other.evaluate(VIEW_JS)
        assert restored["zoom"] == 13, restored
        assert abs(restored["lat"] - 29.87) < 1e-3 and abs(restored["lon"] - 121.55) < 1e-3, restored
        assert restored["layers"] == shared["layers"], (restored, shared)
        assert "?lang=en#" in other.url
        shot = tmp_path / "gridmap-restored-view.png"
        other.wait_for_timeout(500)  # the canvas paints on the next frames; a picture for a person to look at
        other.screenshot(path=str(shot))
        print(f"screenshot of a restored view: {shot}")
    finally:
        context.close()
    assert tab.page_errors == []


HOSTILE = "#z=<img src=x onerror=alert(1)>&lat=<script>&lon=1e999&layers=<script>alert(2)</script>"


def test_a_hostile_fragment_changes_nothing(tab, demo_server):
    page = tab.page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    goto_ready(tab, demo_server.url("/"))
    default = page.evaluate(VIEW_JS)

    for bad in (HOSTILE, "#z=99&lat=29.87&lon=121.55", "#z=13&lat=95&lon=121.55", "#z=13&lat=29.87&lon=abc",
                "#z=13.5&lat=29.87&lon=121.55", "#layers=nosuchlayer,__proto__,constructor"):
        page.goto("about:blank")  # a full load, not a fragment-only navigation
        goto_ready(tab, demo_server.url("/") + bad)
        assert page.evaluate(VIEW_JS) == default, bad
        assert page.evaluate("() => window.__xss === undefined && !document.querySelector('img[src=\"x\"]')"), bad
    assert dialogs == []
    assert tab.page_errors == []


def test_a_unit_map_restores_the_shared_view_over_its_own_bounds(tab, demo_server):
    page = tab.page
    unit = demo_server.url("/map?district=%E6%B5%B7%E6%9B%99%E5%8C%BA")  # 海曙区
    goto_ready(tab, unit)
    fitted = page.evaluate(VIEW_JS)
    assert "unit" in fitted["layers"], fitted

    page.goto("about:blank")
    goto_ready(tab, unit + "#z=16&lat=29.86&lon=121.54&layers=grids,unit,streets")
    restored = page.evaluate(VIEW_JS)
    assert restored["zoom"] == 16 != fitted["zoom"], (restored, fitted)
    assert abs(restored["lat"] - 29.86) < 1e-3 and abs(restored["lon"] - 121.54) < 1e-3, restored
    assert restored["layers"] == ["grids", "streets", "unit"], restored
    assert "district=" in page.url  # the unit stays in the query
    assert tab.page_errors == []


# The place names shown, each with its level and its box on the page.
LABELS_JS = """
() => [...document.querySelectorAll('.gm-label')].map((el) => {
  const r = el.getBoundingClientRect();
  return {level: [...el.classList].find((c) => c.startsWith('gm-label-')).slice(9), text: el.textContent,
          box: [r.left, r.top, r.right, r.bottom]};
})
"""


def overlapping(labels: list[dict]) -> list[tuple[str, str]]:
    def meet(a, b):
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    return [(a["text"], b["text"]) for i, a in enumerate(labels) for b in labels[i + 1:] if meet(a["box"], b["box"])]


def labels_at(tab, zoom: int, lat: float = 29.87, lon: float = 121.55) -> list[dict]:
    page = tab.page
    page.evaluate("""([lat, lon, zoom]) => new Promise((done) => {
      const layer = window.gridmap.keyed.labels.layer;
      layer.once('gridmap:labelled', () => done(true));
      window.gridmap.map.setView([lat, lon], zoom, {animate: false});
    })""", [lat, lon, zoom])
    return page.evaluate(LABELS_JS)


def test_place_names_by_zoom_without_collisions(tab, demo_server, tmp_path):
    """District names from city zoom, street names from 12, community names from 14; none over another."""
    page = tab.page
    goto_ready(tab, demo_server.url("/"))
    seen = {}
    for zoom in (10, 12, 14):
        labels = labels_at(tab, zoom)
        seen[zoom] = {label["level"] for label in labels}
        assert labels and overlapping(labels) == [], (zoom, overlapping(labels)[:5])
        assert not any("<" in label["text"] for label in labels)
    assert seen[10] == {"district"}, seen
    assert "street" in seen[12] and "community" not in seen[12], seen
    assert "community" in seen[14], seen
    names = {label["text"] for label in labels_at(tab, 14)}
    assert "桃苑社区" in names or "南门街道" in names, sorted(names)[:20]  # around the old town
    page.screenshot(path=str(tmp_path / "gridmap-labels.png"))
    assert tab.console_errors == [] and tab.page_errors == []


@pytest.fixture(scope="module")
def osm_server(demo_data_dir, demo_server, tmp_path_factory):
    """The demo with the default base map (OpenStreetMap's tiles), which these tests cannot reach."""
    from .conftest import _serve_with

    yield from _serve_with(demo_data_dir, tmp_path_factory.mktemp("logs") / "osm-server.log", BASEMAP="osm")


@pytest.mark.parametrize("lang, text", [("zh", "底图无法加载"), ("en", "The base map cannot be loaded")])
def test_without_internet_the_page_says_once_the_base_map_is_unavailable(tab, osm_server, lang, text):
    page = tab.page
    goto_ready(tab, osm_server.url(f"/?lang={lang}"))
    notice = page.locator(".gm-basemap-notice")
    notice.wait_for(state="visible")
    page.evaluate("() => window.gridmap.map.setView([29.87, 121.55], 12, {animate: false})")  # more tiles fail
    page.wait_for_timeout(300)
    assert notice.count() == 1 and text in notice.inner_text()
    assert any("tile.openstreetmap.org" in url for url in tab.requests)  # asked for, and refused here
    # everything else works: the grids' tiles are drawn
    page.wait_for_function("() => window.gridmap.tileFeatures(window.gridmap.keyed.grids.layer.gridmapOptions.name)"
                           ".some((p) => p.grid_id)")
    assert tab.page_errors == []


def test_with_no_base_map_a_page_load_asks_no_other_host(tab, demo_server):
    """GRIDMAP_BASEMAP=none (the test servers'): neither the page, its scripts, tiles nor names leave the app."""
    goto_ready(tab, demo_server.url("/#z=14&lat=29.87&lon=121.55"))
    tab.page.wait_for_selector(".gm-label", state="attached")
    assert [url for url in tab.requests if not url.startswith((demo_server.base + "/", "data:", "blob:"))] == []
    assert not tab.page.locator(".gm-basemap-notice").count()


# The boxes ([west, south, east, north]) of the vector tiles the page asked for.
TILE_BOXES_JS = """
(urls) => urls.map((url) => url.match(/WebMercatorQuad\\/(\\d+)\\/(\\d+)\\/(\\d+)$/)).filter(Boolean).map((m) => {
  const z = Number(m[1]), y = Number(m[2]), x = Number(m[3]), n = Math.pow(2, z);
  const lat = (row) => Math.atan(Math.sinh(Math.PI * (1 - 2 * row / n))) * 180 / Math.PI;
  return [x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)];
})
"""


def test_a_unit_map_dims_the_rest_and_asks_only_for_its_tiles(tab, demo_server, tmp_path):
    page = tab.page
    goto_ready(tab, demo_server.url("/map?district=江北区"))
    veils = page.evaluate("""() => { const found = [];
        window.gridmap.map.eachLayer((l) => { if (l.options && l.options.className === 'gm-dim') { found.push(
          l.getLatLngs().length); } }); return found; }""")
    assert veils == [2], veils  # one veil over everything outside the unit: the world, the unit as its hole
    unit = grid_where(demo_server, district="江北区")  # a grid of the unit: its tiles are asked for
    outline = page.evaluate("""() => { const b = window.gridmap.keyed.unit.layer.getBounds();
        return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }""")
    boxes = page.evaluate(TILE_BOXES_JS, [u for u in tab.requests if "/tiles/" in u])
    assert boxes
    pad = 0.05 * max(outline[2] - outline[0], outline[3] - outline[1])
    far = [b for b in boxes if b[2] < outline[0] - pad or b[0] > outline[2] + pad or b[3] < outline[1] - pad
           or b[1] > outline[3] + pad]
    assert far == [], far[:3]  # no tile wholly beyond the unit
    page.evaluate("() => window.gridmap.map.setView([29.6, 121.9], 12, {animate: false})")  # far south-east
    page.wait_for_timeout(500)
    boxes = page.evaluate(TILE_BOXES_JS, [u for u in tab.requests if "/tiles/" in u])
    assert not any(b[0] > outline[2] + pad for b in boxes)
    assert unit["properties"]["district"] == "江北区"
    page.screenshot(path=str(tmp_path / "gridmap-unit.png"))
    assert tab.page_errors == []
