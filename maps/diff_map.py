"""A map of what changed between two versions: added, removed and changed features."""

from __future__ import annotations

import folium

from geodata.i18n import text

from .coverage_map import Assets
from .layers import Field, GeoJsonLayer, Legend, LegendEntry, ReadySignal
from .palette import DIFF_COLOURS as STATUS_COLOURS  # colour-blind safe: no green against red


def diff_map(*, url: str, bounds: list[float] | None, assets: Assets, lang: str = "zh") -> folium.Map:
    """Features of a diff (fetched from ``url``) coloured by status, with tooltips naming what changed."""
    def t(key):
        return text(key, lang)

    m = folium.Map(location=(29.87, 121.55), zoom_start=9, tiles=None, prefer_canvas=True, control_scale=True)
    m.options["maxZoom"] = 18
    m.default_js, m.default_css = list(assets.js), list(assets.css)
    labels = {s: t(f"diff.{s}") for s in STATUS_COLOURS}
    GeoJsonLayer(t("diff.title"), url=url, style_by="status",
                 styles={s: {"color": c, "weight": 1.5, "fillColor": c, "fillOpacity": 0.45}
                         for s, c in STATUS_COLOURS.items()},
                 tooltip=[Field("key", t("field.grid_id")), Field("status", t("diff.status"), labels=labels),
                          Field("fields", t("diff.fields")), Field("area_delta_m2", t("diff.area_delta"), "number")]
                 ).add_to(m)
    if bounds:
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    Legend(t("legend.title"), [(t("diff.title"), [LegendEntry(labels[s], c) for s, c in STATUS_COLOURS.items()])]
           ).add_to(m)
    ReadySignal().add_to(m)
    return m
