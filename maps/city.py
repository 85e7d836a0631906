"""The city map: a small page that fetches its layers by URL.

Embedding 8,000+ grid polygons makes a 9 MB page; instead the page carries
no data and the browser fetches light, simplified layers (``maps.display``)
drawn on one canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import folium

from .layers import GeoJsonLayer, Legend, ReadySignal, add_legend

NINGBO_CENTRE = (29.87, 121.55)

GRID_TYPE_STYLES = {
    "residential": ("#4e79a7", "居民小区"),
    "industrial_park": ("#f28e2b", "工业园区"),
    "commercial_market": ("#e15759", "商圈市场"),
    "office_building": ("#b07aa1", "商务楼宇"),
    "other": ("#9c9c9c", "其他"),
}
CENTER_LEVEL_STYLES = {
    "district": ("#b30000", 9, "区级中心"),
    "street": ("#e34a33", 6, "街道（镇）中心"),
    "community": ("#fc8d59", 4, "社区（村）中心"),
}


@dataclass(frozen=True)
class Assets:
    """URLs of the scripts and stylesheets the page loads, all served by the app."""

    js: tuple[tuple[str, str], ...]
    css: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Basemap:
    """A tile layer: ``url`` None draws no base map at all (no request leaves the app)."""

    url: str | None
    attribution: str = ""
    subdomains: str = "abc"

    @classmethod
    def from_setting(cls, setting: str, tianditu_key: str = "") -> "Basemap":
        if setting == "none":
            return cls(None)
        if setting == "osm":
            return cls("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "© OpenStreetMap contributors")
        if setting == "tianditu":
            # CGCS2000 differs from WGS84 by centimetres: its tiles draw as WGS84.
            return cls("https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                       "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                       f"&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={tianditu_key}",
                       "© 天地图 Tianditu", subdomains="01234567")
        if "{z}" in setting and "{x}" in setting and "{y}" in setting:
            return cls(setting, "")
        raise ValueError(f"unknown base map {setting!r}: use osm, tianditu, none or a URL with {{z}}/{{x}}/{{y}}")


def city_map(*, bounds: list[float] | None, urls: dict[str, str], basemap: Basemap, assets: Assets) -> folium.Map:
    """The whole city: district outlines, grids by type and centres by level.

    ``urls`` maps ``districts``, ``grids`` and ``centers`` to where the page
    fetches each layer; ``bounds`` ([minLon, minLat, maxLon, maxLat]) is the
    view to open on.

    Examples
    --------
    >>> m = city_map(bounds=None, urls={"districts": "/d", "grids": "/g", "centers": "/c"},
    ...              basemap=Basemap(None), assets=Assets((), ()))
    >>> html = m.get_root().render()
    """
    m = folium.Map(location=NINGBO_CENTRE, zoom_start=9, tiles=None, prefer_canvas=True, control_scale=True)
    m.default_js = list(assets.js)  # served by the app, never a CDN
    m.default_css = list(assets.css)
    if basemap.url:
        folium.TileLayer(basemap.url, attr=basemap.attribution, name="底图 Base map",
                         subdomains=basemap.subdomains, max_zoom=18).add_to(m)

    GeoJsonLayer("网格 Grids", url=urls["grids"], style_by="grid_type",
                 styles={k: {"color": c, "weight": 0.6, "fillColor": c, "fillOpacity": 0.35}
                         for k, (c, _) in GRID_TYPE_STYLES.items()},
                 tooltip=[("name", "网格"), ("community", "社区"), ("street", "街道"), ("grid_id", "编号")]).add_to(m)
    GeoJsonLayer("区县 Districts", url=urls["districts"], styles={"*": {"color": "#333", "weight": 2, "fill": False}},
                 tooltip=[("name", "区县"), ("name_en", "District")]).add_to(m)
    if bounds:
        minx, miny, maxx, maxy = bounds
        m.fit_bounds([[miny, minx], [maxy, maxx]])
    GeoJsonLayer("服务中心 Centres", url=urls["centers"], style_by="level", points_as_circles=True,
                 styles={k: {"radius": r, "color": "#fff", "weight": 1, "fillColor": c, "fillOpacity": 0.9}
                         for k, (c, r, _) in CENTER_LEVEL_STYLES.items()},
                 tooltip=[("name", "中心"), ("level", "级别"), ("street", "街道"), ("community", "社区")]).add_to(m)

    folium.LayerControl(collapsed=False).add_to(m)
    add_legend(m, Legend("图例 Legend", [
        ("网格类型", [(c, label) for c, label in GRID_TYPE_STYLES.values()]),
        ("党群服务中心", [(c, label) for c, _, label in CENTER_LEVEL_STYLES.values()]),
    ]))
    ReadySignal().add_to(m)
    return m
