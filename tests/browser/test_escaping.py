"""Names are data, never markup: grids named with XSS payloads show them as text and run nothing."""

from __future__ import annotations

import pytest

from .conftest import XSS_CLOSE, XSS_IMG, XSS_NAMES, XSS_SCRIPT, goto_ready

pytestmark = pytest.mark.browser

# The feature layer of the grid named ``name`` (it has grid_id), in window.gridmap.layers.
FIND_GRID_JS = """
(name) => {
  const leaves = (l) => l.feature ? [l] : (l.getLayers ? l.getLayers().flatMap(leaves) : []);
  return Object.values(window.gridmap.layers).flatMap(leaves).find((item) =>
    item.feature.properties.grid_id != null && item.feature.properties.name === name && item._map);
}
"""

# Opens the tooltip or popup of the grid named ``name`` as a pointer would: a mouseover (or
# click) on its feature layer, propagated to the group, so it works whether the tooltip is bound
# on each feature or once on the layer.  Returns the open overlay's text, or null.
OPEN_JS = f"""
([name, kind]) => {{
  const item = ({FIND_GRID_JS})(name), map = item._map;
  map.closePopup();
  map.eachLayer((l) => l.closeTooltip && l.closeTooltip());
  const latlng = item.getCenter ? item.getCenter() : item.getLatLng();
  item.fire(kind === 'tooltip' ? 'mouseover' : 'click', {{latlng: latlng}}, true);
  const get = (l) => kind === 'tooltip' ? (l.getTooltip && l.getTooltip()) : (l.getPopup && l.getPopup());
  const owner = [item, ...Object.values(item._eventParents || {{}})].find(get);
  const overlay = owner && get(owner);
  return overlay && overlay.isOpen() ? overlay.getElement().textContent : null;
}}
"""

NOTHING_RAN_JS = r"""
() => ({
  xss: typeof window.__xss,
  imgX: document.querySelectorAll('img[src="x"]').length,
  injectedScripts: [...document.scripts].filter((s) => /^window\.__xss=\d$/.test(s.textContent.trim())).length,
  svgOnload: document.querySelectorAll('svg[onload]').length,
})
"""


def test_grid_names_show_as_text_in_tooltips_and_never_run(tab, handmade_server):
    page = tab.page
    goto_ready(tab, handmade_server.url("/"))
    assert page.evaluate(f"(name) => ({FIND_GRID_JS})(name) !== undefined", XSS_IMG), "no grid has that name"

    for name in XSS_NAMES:
        text = page.evaluate(OPEN_JS, [name, "tooltip"])
        assert text is not None and name in text, (name, text)
        assert page.locator(".leaflet-tooltip", has_text=name).is_visible()
    grid = page.evaluate("""(community) => {
      const leaves = (l) => l.feature ? [l] : (l.getLayers ? l.getLayers().flatMap(leaves) : []);
      return Object.values(window.gridmap.layers).flatMap(leaves).find((i) =>
        i.feature.properties.grid_id != null && i.feature.properties.community === community && i._map
      ).feature.properties.name;
    }""", XSS_IMG)
    text = page.evaluate(OPEN_JS, [grid, "tooltip"])  # the grid whose community is a payload
    assert text is not None and XSS_IMG in text, text

    assert page.evaluate(NOTHING_RAN_JS) == {"xss": "undefined", "imgX": 0, "injectedScripts": 0, "svgOnload": 0}
    assert not any(url.endswith("/x") for url in tab.requests)  # no <img src=x> was ever created
    assert tab.page_errors == []


def test_grid_popups_show_names_as_text(tab, handmade_server):
    """Where a grid has a popup (the coverage map's, on click), it shows the name as text too."""
    page = tab.page
    goto_ready(tab, handmade_server.url("/"))
    if page.evaluate(OPEN_JS, [XSS_SCRIPT, "popup"]) is None:
        pytest.skip("a click on a grid opens no popup on this version of the map")
    for name in (XSS_SCRIPT, XSS_CLOSE, XSS_IMG):
        text = page.evaluate(OPEN_JS, [name, "popup"])
        assert text is not None and name in text, (name, text)
    assert page.evaluate(NOTHING_RAN_JS) == {"xss": "undefined", "imgX": 0, "injectedScripts": 0, "svgOnload": 0}
    assert tab.page_errors == []
