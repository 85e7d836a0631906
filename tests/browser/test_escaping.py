"""Names are data, never markup: grids named with XSS payloads show them as text and run nothing."""

from __future__ import annotations

import pytest

from .conftest import (XSS_CLOSE, XSS_IMG, XSS_NAMES, XSS_SCRIPT, click_popup, goto_ready, grid_where,
                       hover_text, pointer_at)

pytestmark = pytest.mark.browser

NOTHING_RAN_JS = r"""
() => ({
  xss: typeof window.__xss,
  imgX: document.querySelectorAll('img[src="x"]').length,
  injectedScripts: [...document.scripts].filter((s) => /^window\.__xss=\d$/.test(s.textContent.trim())).length,
  svgOnload: document.querySelectorAll('svg[onload]').length,
})
"""


def test_grid_names_show_as_text_in_tooltips_and_never_run(tab, handmade_server):
    goto_ready(tab, handmade_server.url("/"))
    for name in XSS_NAMES:
        grid = grid_where(handmade_server, name=name)
        text = hover_text(tab, pointer_at(tab, grid["point"]))
        assert name in text, (name, text)
    grid = grid_where(handmade_server, community=XSS_IMG)  # another field the tooltip shows
    text = hover_text(tab, pointer_at(tab, grid["point"]))
    assert XSS_IMG in text, text

    assert tab.page.evaluate(NOTHING_RAN_JS) == {"xss": "undefined", "imgX": 0, "injectedScripts": 0, "svgOnload": 0}
    assert not any(url.endswith("/x") for url in tab.requests)  # no <img src=x> was ever created
    assert tab.page_errors == []


def test_grid_popups_show_the_clicked_grids_fields_as_text(tab, handmade_server):
    """A click asks the server for the grid under the pointer (its key) and shows its fields as text."""
    goto_ready(tab, handmade_server.url("/"))
    for name in (XSS_SCRIPT, XSS_CLOSE, XSS_IMG):
        grid = grid_where(handmade_server, name=name)
        key = grid["properties"]["grid_id"]
        content = click_popup(tab, pointer_at(tab, grid["point"]), key)
        text = content.inner_text()
        assert name in text and key in text, (name, text)
        assert f"{grid['properties']['population']:,}" in text  # a field tiles do not carry: from the API
    assert tab.page.evaluate(NOTHING_RAN_JS) == {"xss": "undefined", "imgX": 0, "injectedScripts": 0, "svgOnload": 0}
    assert not any(url.endswith("/x") for url in tab.requests)
    assert tab.page_errors == []
