"""Folium building blocks for gridmap's maps.

Each element emits one call into ``maps/static/gridmap-map.js`` with its
options as JSON (Jinja's ``tojson`` escapes ``<``, ``>`` and ``&``, so no value
can close the script).  Tooltips and popups are built in the browser from text
nodes: folium's own GeoJsonTooltip/GeoJsonPopup insert values unescaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from branca.element import Element, MacroElement, Template
from markupsafe import escape
from folium.map import Layer


@dataclass(frozen=True)
class Field:
    """A property shown in a tooltip or popup; ``labels`` translates coded values."""

    field: str
    label: str
    format: str | None = None  # "percent" | "number"
    labels: dict | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


# The drawing order, bottom to top, whatever order the layers' data arrives in: grids, gaps,
# tiling gaps and overlaps, missing-centre outlines, boundaries, catchments, centres, planning.
STACK = ("grids", "gaps", "tiling", "missing", "boundaries", "catchments", "centers", "planning")


class GeoJsonLayer(Layer):
    """A GeoJSON overlay, fetched by URL when first shown (or embedded when small).

    Parameters
    ----------
    name : label in the layer control; also the key in ``window.gridmap.layers``.
    url : where the browser fetches the GeoJSON (same origin); or ``data`` to embed.
    style_by : property whose value picks the style from ``styles`` (key ``"*"``: default).
    tooltip, popup : Fields shown on hover and on click; ``links`` [(label, href template)], or
        (label, href template, True) for a link whose parameters may be empty (they are left out)
        go in the popup, with ``{field}`` replaced by the URL-encoded property.
    points : how Point features draw: ``circle`` markers, CSS ``icon`` markers, or
        ``catchment`` discs of ``radii[style_by value]`` metres.
    cluster : cluster the points until this zoom level.
    stack : the layer's kind in ``STACK``, which fixes where it draws among the others.
    key : a stable id (``[a-z_]+``) for the layer in a shared URL (``ShareView``); no key, not shared.
    dim : with ``data``: a style veiling the map outside its polygons (a unit's map dims the rest).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = gridmap.geojsonLayer({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, name: str, *, url: str | None = None, data: dict | None = None,
                 style_by: str | None = None, styles: dict | None = None,
                 tooltip: list[Field] = (), popup: list[Field] = (), links: list[tuple] = (),
                 points: str = "circle", radii: dict | None = None, cluster: int | None = None,
                 show: bool = True, interactive: bool = True, stack: str = "boundaries", key: str | None = None,
                 dim: dict | None = None):
        if (data is None) == (url is None):
            raise ValueError("give exactly one of data or url")
        if stack not in STACK:
            raise ValueError(f"unknown stack {stack!r}: one of {STACK}")
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "GeoJsonLayer"
        self.config = {
            "name": name, "url": url, "data": data, "show": show, "styleBy": style_by, "styles": styles or {},
            "tooltip": [f.to_json() for f in tooltip], "popup": [f.to_json() for f in popup],
            "links": [{"label": link[0], "href": link[1], **({"optional": True} if link[2:3] == (True,) else {})}
                      for link in links],
            "points": points, "radii": radii or {}, "cluster": cluster, "interactive": interactive,
            "stack": STACK.index(stack), "key": _layer_key(key), "dim": dim,
        }


class VectorTileLayer(Layer):
    """A layer drawn from the server's vector tiles (OGC API – Tiles, MVT) by Leaflet.VectorGrid.

    Parameters
    ----------
    name, key, show, stack, style_by, styles, tooltip, popup, links : as ``GeoJsonLayer``; points
        take ``radius`` in their styles.  Tooltips show the tile's properties (what the map shows);
        a click asks for the whole feature at ``item_url`` (``{id}``: its ``id_field``) for the popup.
    url : the tiles' URL template, ``{z}/{y}/{x}`` in it.
    layer : the MVT layer the tiles hold (the collection's id).
    kinds : only the features whose ``kind`` is one of these (gap layers share the gaps' tiles).
    min_zoom : the first zoom the layer draws at (below, its tiles would be empty).
    order : where it draws among the layers of its ``stack`` (0 to 9, higher on top).
    bounds : [[south, west], [north, east]]: no tile is asked for outside (the data's or the unit's extent).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = gridmap.vectorTileLayer({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )
    def __init__(self, name: str, *, url: str, layer: str, id_field: str, item_url: str | None = None,
                 style_by: str | None = None, styles: dict | None = None, kinds: tuple[str, ...] = (),
                 tooltip: list[Field] = (), popup: list[Field] = (), links: list[tuple] = (),
                 show: bool = True, interactive: bool = True, stack: str = "boundaries", min_zoom: int = 0,
                 key: str | None = None, loading: str = "…", order: int = 0, bounds: list | None = None,
                 opacity: float | None = None):
        if stack not in STACK:
            raise ValueError(f"unknown stack {stack!r}: one of {STACK}")
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "VectorTileLayer"
        self.config = {
            "name": name, "url": url, "layer": layer, "idField": id_field, "itemUrl": item_url, "show": show,
            "styleBy": style_by, "styles": styles or {}, "kinds": list(kinds) or None,
            "tooltip": [f.to_json() for f in tooltip], "popup": [f.to_json() for f in popup],
            "links": [{"label": link[0], "href": link[1], **({"optional": True} if link[2:3] == (True,) else {})}
                      for link in links],
            "interactive": interactive, "zIndex": 10 * STACK.index(stack) + order,
            "minZoom": min_zoom, "key": _layer_key(key), "loading": loading, "bounds": bounds,
            # the whole layer's: features drawn opaque under it show once where they overlap
            "opacity": opacity,
        }


class LabelLayer(Layer):
    """Place names, each level from its zoom (``levels``: (level, first zoom, font size), most important
    first), fetched for the view from ``url`` (``{level}`` in it) and placed without collisions."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = gridmap.labelLayer({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, name: str, *, url: str, levels: list[tuple[str, int, int]], show: bool = True,
                 key: str | None = None):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "LabelLayer"
        self.config = {"name": name, "url": url, "show": show, "key": _layer_key(key),
                       "levels": [{"level": level, "minZoom": zoom, "size": size, "className": f"gm-label-{level}"}
                                  for level, zoom, size in levels]}


LAYER_KEY = re.compile(r"[a-z_]{1,32}")


def _layer_key(key: str | None) -> str | None:
    """A layer's id in shared URLs: plain lower-case words, so it never needs escaping."""
    if key is not None and not LAYER_KEY.fullmatch(key):
        raise ValueError(f"layer key {key!r} must match {LAYER_KEY.pattern}")
    return key


def preload(m, url: str) -> None:
    """Let the browser fetch a layer's data while it is still loading the scripts."""
    m.get_root().header.add_child(
        Element(f'<link rel="preload" href="{escape(url)}" as="fetch" crossorigin="anonymous">'),
        name=f"preload_{url}")


class SearchControl(MacroElement):
    """Search through the server (``url``: /api/search); a chosen hit is zoomed to and outlined, and its
    grid's or centre's popup opened when the feature is on the map (layers named ``grids_layer`` and
    ``centers_layer``); a unit's outline comes from ``items_url`` ("{collection}" in it)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmap.searchControl({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    COLLECTIONS = {"district": "districts", "street": "streets", "community": "communities"}

    def __init__(self, url: str, items_url: str, *, grids_layer: str, centers_layer: str, kinds: dict[str, str],
                 outline_colour: str, placeholder: str, not_found: str):
        super().__init__()
        self._name = "SearchControl"
        self.config = {"url": url, "itemsUrl": items_url, "gridsLayer": grids_layer, "centersLayer": centers_layer,
                       "collections": self.COLLECTIONS, "kinds": kinds, "outlineColour": outline_colour,
                       "placeholder": placeholder, "notFound": not_found}


class MapTitle(MacroElement):
    """The map's title, in its top-left corner above the other controls (as text): a unit's map names
    its unit.  ``screen`` False: only in what is printed or exported (the city map's page says it already)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmap.mapTitle({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, text: str, screen: bool = True):
        super().__init__()
        self._name = "MapTitle"
        self.config = {"text": text, "screen": screen}


class ExportControl(MacroElement):
    """Buttons that save the map as it is shown -- its view, its legend and its title -- as a PNG
    (dom-to-image-more, from ``script``: loaded on the first click), and print it (the print stylesheet
    leaves the map, its title and legend).  ``filename`` names the download (without ``.png``)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmap.exportControl({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, *, script: str, filename: str, texts: dict[str, str]):
        super().__init__()
        self._name = "ExportControl"
        self.config = {"script": script, "filename": filename, "texts": texts}


class BasemapNotice(MacroElement):
    """Says once, when the base map's tiles fail (no internet), that it is unavailable; the rest works on."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmap.basemapNotice({{ this._parent.get_name() }}, {{ this.layer.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, layer, text: str):
        super().__init__()
        self._name = "BasemapNotice"
        self.layer = layer
        self.config = {"text": text}


class FullscreenControl(MacroElement):
    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmap.fullscreenControl({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, title: str):
        super().__init__()
        self._name = "FullscreenControl"
        self.config = {"title": title}


class ShareView(MacroElement):
    """The page's URL follows the view: ``#z=13&lat=29.87&lon=121.55&layers=grids,gaps``.

    Add after every layer and before ``ReadySignal``: a URL that carries a view restores it
    (over the default ``bounds`` and layers) before the layers shown at start are awaited.  It
    fits the default bounds itself, without animation: an animated fit still under way would
    end after, and over, the restored view.  The
    fragment is kept by ``history.replaceState`` (no history entry per pan), the query
    (unit, lang) is left as it is; ``layers`` names the layers' ``key``s.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmap.shareView({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, bounds: list[list[float]] | None = None):
        """``bounds`` [[south, west], [north, east]]: the default view, when the URL gives none."""
        super().__init__()
        self._name = "ShareView"
        self.config = {"bounds": bounds}


class ReadySignal(MacroElement):
    """Add last: marks ``<body data-gridmap-ready>`` once every layer shown at start has loaded.

    Browser tests and the page benchmark wait for it; ``window.gridmap.layers``
    holds each layer's features by its name and ``window.gridmap.map`` the map.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmap.ready({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self):
        super().__init__()
        self._name = "ReadySignal"


@dataclass(frozen=True)
class LegendEntry:
    label: str
    colour: str
    shape: str = "fill"  # "fill" | "outline" | a CSS class such as "gm-center gm-center-street"


class Legend(MacroElement):
    """A categorical legend: a title and sections of entries; every text is escaped.

    It folds (a ``<details>`` whose summary is the title): open at first, folded at first on
    screens up to ``narrow`` pixels wide, where it would cover much of the map.
    """

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <details class="gridmap-legend" id="{{ this.get_name() }}" open>
          <summary class="gridmap-legend-title">{{ this.title|e }}</summary>
          {%- for heading, entries in this.sections %}
          <div class="gridmap-legend-section">{{ heading|e }}</div>
          {%- for entry in entries %}
          <div class="gridmap-legend-row">
            {%- if entry.shape == "fill" -%}
            <span class="gridmap-swatch" style="background:{{ entry.colour|e }}"></span>
            {%- elif entry.shape == "outline" -%}
            <span class="gridmap-swatch gm-outline" style="border-color:{{ entry.colour|e }}"></span>
            {%- else -%}
            <span class="gridmap-swatch {{ entry.shape|e }}"></span>
            {%- endif -%}
            {{ entry.label|e }}</div>
          {%- endfor %}
          {%- endfor %}
        </details>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        gridmap.legend({{ this.get_name()|tojson }}, {{ this.narrow|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, title: str, sections: list[tuple[str, list[LegendEntry]]], narrow: int = 600):
        super().__init__()
        self._name = "Legend"
        self.title = title
        self.sections = sections
        self.narrow = narrow


class RecommendationsLayer(Layer):
    """Recommended centre sites, fetched from ``url`` when first shown (the API's GeoJSON).

    ``url`` asks for ``k`` sites (fewer coming back means no other site adds coverage).
    Each site is a numbered marker (its rank, as text) with a tooltip of ``tooltip``
    fields; ``unit`` (district / street / community) and ``solver`` (the API's
    top-level member, through ``solvers``) are added to each site's properties.  While
    the layer is on, the planning panel lists the sites; a click on a row zooms to it.
    """

    _template = Template(
        """
    {% macro script(this, kwargs) %}
    var {{ this.get_name() }} = gridmap.recommendationsLayer({{ this._parent.get_name() }}, {{ this.config|tojson }});
    {% endmacro %}
        """
    )

    def __init__(self, name: str, *, url: str, k: int, tooltip: list[Field], solvers: dict[str, str],
                 texts: dict[str, str], panel: dict[str, str], show: bool = False, zoom: int = 15,
                 key: str | None = None):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "RecommendationsLayer"
        self.config = {"name": name, "key": _layer_key(key), "url": url, "k": k, "show": show, "tooltip": [f.to_json() for f in tooltip],
                       "solvers": solvers, "texts": texts, "panel": panel, "zoom": zoom}


class WhatIfControl(MacroElement):
    """Place proposed centres by clicking the map; the panel shows coverage before and after, and the
    effect on the city, the district and the street of each proposed centre.

    Every click (while placing) adds a centre of the level chosen in the panel (``levels``; ``level`` at
    first) with its catchment (``radii``) and
    POSTs all proposals to ``url`` as a GeoJSON FeatureCollection, with the CSRF token
    from ``<meta name="{csrf_meta}">`` when the page has one.  Nothing is stored.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmap.whatifControl({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, *, url: str, level: str, radii: dict[str, float], levels: list[tuple[str, str]],
                 texts: dict[str, str], panel: dict[str, str], csrf_meta: str = "csrf-token",
                 sign_in: str | None = None):
        super().__init__()
        self._name = "WhatIfControl"
        # levels: [(level, label)] a planner may place, in the panel's order; level: the first chosen
        # sign_in: what-ifs need a signed-in user; the panel offers this sign-in link instead of placing
        self.config = {"url": url, "level": level, "radii": radii, "levels": levels, "csrfMeta": csrf_meta,
                       "texts": texts, "panel": panel, "signIn": sign_in, "stack": STACK.index("planning")}
