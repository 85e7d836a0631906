"""Folium building blocks for gridmap's maps.

``GeoJsonLayer`` draws GeoJSON that is embedded or fetched by URL, styled
from a small table keyed by one property (shared styles, not one per
feature), on the canvas renderer.  Its tooltips are built with
``textContent``, so feature values can never run as HTML: folium's own
GeoJsonTooltip/GeoJsonPopup insert values unescaped.
"""

from __future__ import annotations

import folium
from branca.element import Element, MacroElement, Template
from folium.map import Layer


class GeoJsonLayer(Layer):
    """A GeoJSON overlay.

    Parameters
    ----------
    name : label in the layer control.
    data : a GeoJSON dict to embed, or None with ``url``.
    url : where the browser fetches the GeoJSON (same origin), instead of embedding.
    style_by : property whose value picks the style from ``styles``.
    styles : {value: Leaflet path options}; key ``"*"`` is the default.
    tooltip : [(property, label), ...] shown on hover.
    points_as_circles : draw Point features as circle markers (fast on canvas).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var registry = window.gridmap = window.gridmap || {layers: {}, pending: []};
            var styles = {{ this.styles|tojson }};
            var styleBy = {{ this.style_by|tojson }};
            var tooltipFields = {{ this.tooltip|tojson }};
            function styleOf(feature) {
                var key = styleBy ? feature.properties[styleBy] : null;
                return styles[key] || styles["*"] || {};
            }
            function tooltipOf(layer) {
                var props = layer.feature.properties, box = document.createElement("div");
                tooltipFields.forEach(function (field) {
                    var value = props[field[0]];
                    if (value === null || value === undefined || value === "") { return; }
                    var row = document.createElement("div"), label = document.createElement("b");
                    label.textContent = field[1] + ": ";
                    row.appendChild(label);
                    row.appendChild(document.createTextNode(String(value)));
                    box.appendChild(row);
                });
                return box;
            }
            var layer = L.geoJSON(null, {
                style: styleOf,
                {%- if this.points_as_circles %}
                pointToLayer: function (feature, latlng) { return L.circleMarker(latlng, styleOf(feature)); },
                {%- endif %}
                onEachFeature: function (feature, layer) {
                    if (tooltipFields.length) { layer.bindTooltip(tooltipOf, {sticky: true}); }
                }
            });
            registry.layers[{{ this.layer_name|tojson }}] = layer;
            {%- if this.data is not none %}
            layer.addData({{ this.data|tojson }});
            {%- else %}
            var loading = null;
            function load() {  // fetched once, when the layer is first shown
                loading = loading || fetch({{ this.url|tojson }}, {credentials: "same-origin"})
                    .then(function (r) { if (!r.ok) { throw new Error(r.status + " " + r.url); } return r.json(); })
                    .then(function (data) { layer.addData(data); layer.fire("gridmap:loaded"); })
                    .catch(function (err) { console.warn("gridmap: could not load layer", err); });
                return loading;
            }
            {%- if this.show %}
            registry.pending.push(load());
            {%- else %}
            layer.once("add", load);
            {%- endif %}
            {%- endif %}
            return layer;
        })();
        {%- if this.show %}
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {%- endif %}
        {% endmacro %}
        """
    )

    def __init__(self, name: str, *, data: dict | None = None, url: str | None = None,
                 style_by: str | None = None, styles: dict | None = None,
                 tooltip: list[tuple[str, str]] | None = None, points_as_circles: bool = False,
                 show: bool = True):
        if (data is None) == (url is None):
            raise ValueError("give exactly one of data or url")
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "GeoJsonLayer"
        self.data = data
        self.url = url
        self.style_by = style_by
        self.styles = styles or {}
        self.tooltip = [list(t) for t in (tooltip or [])]
        self.points_as_circles = points_as_circles
        self.layer_name = name


class Legend(MacroElement):
    """A categorical legend: a title and (colour, label) rows; every text is escaped."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div class="gridmap-legend" role="region" aria-label="{{ this.title|e }}">
          <div class="gridmap-legend-title">{{ this.title|e }}</div>
          {%- for section in this.sections %}
          <div class="gridmap-legend-section">{{ section[0]|e }}</div>
          {%- for colour, label in section[1] %}
          <div class="gridmap-legend-row"><span class="gridmap-swatch" style="background:{{ colour|e }}"></span>{{ label|e }}</div>
          {%- endfor %}
          {%- endfor %}
        </div>
        {% endmacro %}
        """
    )

    def __init__(self, title: str, sections: list[tuple[str, list[tuple[str, str]]]]):
        super().__init__()
        self._name = "Legend"
        self.title = title
        self.sections = sections


LEGEND_CSS = """
<style>
.gridmap-legend { position: absolute; z-index: 1000; bottom: 28px; right: 10px; background: #fff;
  padding: 8px 10px; border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3); font: 12px/1.5 sans-serif; }
.gridmap-legend-title { font-weight: bold; margin-bottom: 4px; }
.gridmap-legend-section { margin-top: 4px; color: #555; }
.gridmap-swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: middle;
  border: 1px solid #666; }
</style>
"""


def add_legend(m: folium.Map, legend: Legend) -> None:
    m.get_root().header.add_child(Element(LEGEND_CSS), name="gridmap_legend_css")
    legend.add_to(m)  # a MacroElement's html macro lands in the page body


class ReadySignal(MacroElement):
    """Add last: marks ``<body data-gridmap-ready>`` once every layer shown at start has loaded.

    Browser tests and the page benchmark wait for it; ``window.gridmap.layers``
    holds each layer by its name.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var registry = window.gridmap = window.gridmap || {layers: {}, pending: []};
            registry.ready = Promise.all(registry.pending).then(function () {
                document.body.setAttribute("data-gridmap-ready", "1");
            });
        })();
        {% endmacro %}
        """
    )
