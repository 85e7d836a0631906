"""The planner's coverage map: grids by coverage status, gaps, centres, catchments, boundaries.

The page carries no data: each layer is fetched by URL (light, simplified,
gzipped, revalidated by ETag — see ``maps.display``), layers that start hidden
only when first switched on, and everything is drawn on one canvas.
``MAP_DATA`` says what each layer's URL serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import folium

from geodata.i18n import text
from geodata.search import KINDS as SEARCH_KINDS

from geodata.tiles import first_zoom

from .edit_control import EditControl
from .layers import (BasemapNotice, ExportControl, Field, FullscreenControl, GeoJsonLayer, Legend, LegendEntry, ReadySignal,
                     ShareView, LabelLayer, MapTitle, RecommendationsLayer, SearchControl, VectorTileLayer, WhatIfControl,
                     preload)
from .palette import (BOUNDARY_COLOURS, CATCHMENT_COLOURS, GAP_COLOURS, MISSING_CENTER_WEIGHTS,  # noqa: F401
                      RING_COLOURS, STATUS_COLOURS, WALK_COLOUR)

NINGBO_CENTRE = (29.87, 121.55)

CENTER_ICONS = {"district": ("gm-center gm-center-district", 14), "street": ("gm-center gm-center-street", 11),
                "community": ("gm-center gm-center-community", 8)}
# the zoom each level's centres are drawn from (a city's 2,400 centres at once would hide its grids)
CENTER_ZOOMS = {"district": 0, "street": 10, "community": 12}
# place names: each level's from the zoom it is drawn at (city scale, about 12, about 14), and its font size
LABEL_LEVELS = [("district", 9, 15), ("street", 12, 13), ("community", 14, 11)]
# planning: the sites the map recommends, and the centres planners propose on it
RECOMMENDED = {"level": "community", "k": 10}
PROPOSED_LEVEL = "community"  # the level the what-if panel places at first (district and street offered)
WHATIF_LEVEL = "district"  # the summary rows the what-if asks for (the panel shows the city's totals)


@dataclass(frozen=True)
class MapData:
    """What one map layer's URL serves: a collection, optionally only some gap kinds, a few fields."""

    collection: str
    fields: tuple[str, ...]
    tolerance: float = 0.0  # degrees of simplification (0.0001° ≈ 10 m)
    kinds: tuple[str, ...] = ()


GAP_FIELDS = ("gap_id", "kind", "level", "city", "district", "street", "community", "grid_id", "area_m2", "detail")
MAP_DATA = {
    "coverage": MapData("coverage", ("grid_id", "name", "city", "district", "street", "community", "population",
                                     "covered_population", "coverage_ratio", "coverage_status"), 0.0001),
    "service_gaps": MapData("gaps", GAP_FIELDS, 0.0001, ("service_gap",)),
    "tiling": MapData("gaps", GAP_FIELDS, 0.0, ("tiling_gap", "overlap")),
    "staffing": MapData("gaps", GAP_FIELDS, 0.0001, ("staffing_gap",)),
    "missing": MapData("gaps", GAP_FIELDS, 0.0003, ("missing_center",)),
    "streets": MapData("streets", ("unit_id", "city", "district", "street", "grids", "population", "covered_share"),
                       0.0003),
    "districts": MapData("districts", ("adcode", "name", "name_en"), 0.0005),
    "centers": MapData("centers", ("center_id", "name", "level", "city", "district", "street", "community")),
}


# the layers drawn from vector tiles: the property a feature is asked for by (its collection's key)
TILE_KEYS = {"coverage": "grid_id", "gaps": "gap_id", "communities": "unit_id", "streets": "unit_id",
             "districts": "adcode", "centers": "center_id", "catchments": "catchment_id"}
FIRST_ZOOM = {name: first_zoom(name) for name in TILE_KEYS}


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


@dataclass(frozen=True)
class View:
    """What the map opens on: bounds [minLon, minLat, maxLon, maxLat], and a unit to outline."""

    bounds: list[float] | None = None
    outline: dict | None = None  # GeoJSON of the unit, embedded (one small polygon)
    unit: dict[str, str] | None = None  # {"city": …, "district": …, "street": …, "community": …}: recommend inside it
    title: str | None = None  # what the map is titled (a unit's map: the unit and its parents)


def panel_texts(lang: str) -> dict[str, str]:
    """The planning panel's own labels (both planning elements carry them; the first builds the panel)."""
    return {key: text(f"planning.{key}", lang) for key in ("title", "collapse", "expand")}


def coverage_map(*, view: View, urls: dict[str, str], radii: dict[str, float], basemap: Basemap,
                 assets: Assets, lang: str = "zh", sign_in: str | None = None,
                 editing: dict[str, str] | None = None, life_circles: tuple[float, ...] | None = None) -> folium.Map:
    """The coverage map of the city, or of one unit when ``view`` says so.

    Parameters
    ----------
    urls : where the page fetches each layer of ``MAP_DATA``, plus ``data`` and ``map``:
        link templates for a grid's data and a unit's map, with ``{field}`` placeholders;
        optionally ``grid_page`` and ``center_page``: a grid's and a centre's own page, linked from popups;
        ``export_script``: dom-to-image-more's script, which adds the PNG export and print buttons;
        optionally ``recommendations`` and ``whatif``: the planning API's paths (no query),
        which add the recommended-sites layer and the what-if control.
    radii : catchment radius in metres by centre level.
    sign_in : where to sign in, when what-ifs need a signed-in user and the visitor is not one:
        the what-if control then offers that link instead of placing centres.
    editing : an editor's map: the URLs the edit control (``maps.edit_control``) reads and writes;
        None (viewers, anonymous visitors) draws no editing tools.
    life_circles : the walking distances of the life-circle rings, when catchments are walked (None: discs):
        adds the walking catchments, the rings and the walk gaps, drawn from the ``catchments`` and ``gaps`` tiles.

    Examples
    --------
    >>> m = coverage_map(view=View(), urls=urls, radii={"community": 1000}, basemap=Basemap(None),
    ...                  assets=Assets((), ()))  # doctest: +SKIP
    >>> html = m.get_root().render()  # doctest: +SKIP
    """
    def t(key):
        return text(key, lang)

    m = folium.Map(location=NINGBO_CENTRE, zoom_start=9, tiles=None, prefer_canvas=True, control_scale=True)
    m.options["maxZoom"] = 18  # marker clustering needs it, and without a base map nothing else sets it
    m.default_js = list(assets.js)  # served by the app, never a CDN
    m.default_css = list(assets.css)
    if basemap.url:
        base = folium.TileLayer(basemap.url, attr=basemap.attribution, name=t("layer.basemap"),
                                subdomains=basemap.subdomains, max_zoom=18).add_to(m)
        BasemapNotice(base, t("map.basemap_unavailable")).add_to(m)

    fit = None  # the data's extent (a unit's, on its map): tiles are asked for only there
    if view.bounds:
        minx, miny, maxx, maxy = view.bounds
        fit = [[miny, minx], [maxy, maxx]]
    status_labels = {s: t(f"status.{s}") for s in STATUS_COLOURS}
    level_labels = {lvl: t(f"level.{lvl}") for lvl in MISSING_CENTER_WEIGHTS}
    unit_fields = [Field("community", t("level.community")), Field("street", t("level.street"))]
    # a gap said in the reader's language from its fields (its ``detail`` is the analysis's, in Chinese)
    gap_fields = [Field("kind", t("field.gap_kind"), labels={k: t(f"gap.{k}") for k in GAP_COLOURS}),
                  Field("grid_id", t("field.grid")), *unit_fields, Field("district", t("level.district"))]
    missing_labels = {lvl: t(f"center.{lvl}") for lvl in MISSING_CENTER_WEIGHTS}

    def tiles(collection: str, **options) -> VectorTileLayer:  # a layer drawn from the collection's vector tiles
        return VectorTileLayer(url=urls["tiles"].replace("{collection}", collection), layer=collection,
                         item_url=urls["item"].replace("{collection}", collection), loading=t("map.loading"),
                         id_field=TILE_KEYS[collection], min_zoom=FIRST_ZOOM.get(collection, 0), bounds=fit,
                         **options)

    tiles("coverage", name=t("layer.coverage"), key="grids", style_by="coverage_status", stack="grids",
          styles={s: {"color": c, "weight": 0.5, "fillColor": c, "fillOpacity": 0.45}
                  for s, c in STATUS_COLOURS.items()},
          tooltip=[Field("name", t("field.grid")), *unit_fields, Field("district", t("level.district")),
                   Field("coverage_status", t("field.coverage_status"), labels=status_labels),
                   Field("coverage_ratio", t("field.coverage_ratio"), "percent")],
          popup=[Field("name", t("field.grid")), Field("grid_id", t("field.grid_id")), *unit_fields,
                 Field("district", t("level.district")), Field("city", t("level.city")),
                 Field("population", t("field.population"), "number"),
                 Field("covered_population", t("field.covered_population"), "number"),
                 Field("coverage_ratio", t("field.coverage_ratio"), "percent"),
                 Field("coverage_status", t("field.coverage_status"), labels=status_labels)],
          links=[*([(t("map.details"), urls["grid_page"])] if urls.get("grid_page") else []),
                 (t("map.open_data"), urls["data"]), (t("map.open_map"), urls["map"], True)],  # city: when named
          ).add_to(m)
    gap_tooltip = [*gap_fields, Field("area_m2", t("field.area_m2"), "number")]
    tiles("gaps", name=t("layer.service_gaps"), key="gaps", show=False, stack="gaps", kinds=("service_gap",),
          styles={"*": {"stroke": False, "fillColor": GAP_COLOURS["service_gap"], "fillOpacity": 0.5}},
          tooltip=gap_tooltip).add_to(m)
    tiles("gaps", name=t("layer.staffing"), key="staffing", show=False, stack="gaps", kinds=("staffing_gap",),
          order=1, styles={"*": {"color": GAP_COLOURS["staffing_gap"], "weight": 3, "dashArray": "4 3",
                                 "fillOpacity": 0.05}},
          tooltip=gap_fields).add_to(m)
    tiles("gaps", name=t("layer.tiling"), key="tiling", style_by="kind", stack="tiling",
          kinds=("tiling_gap", "overlap"),
          styles={k: {"color": GAP_COLOURS[k], "weight": 1, "fillColor": GAP_COLOURS[k], "fillOpacity": 0.7}
                  for k in ("tiling_gap", "overlap")},
          tooltip=gap_tooltip).add_to(m)
    tiles("gaps", name=t("layer.missing"), key="missing", style_by="level", stack="missing", kinds=("missing_center",),
          styles={lvl: {"color": GAP_COLOURS["missing_center"], "weight": w, "dashArray": "6 4", "fill": False}
                  for lvl, w in MISSING_CENTER_WEIGHTS.items()},
          tooltip=[Field("level", t("field.missing_center"), labels=missing_labels), *unit_fields,
                   Field("district", t("level.district"))]
          ).add_to(m)
    tiles("communities", name=t("layer.communities"), key="communities", show=False, order=1,
          styles={"*": {"color": BOUNDARY_COLOURS["community"], "weight": 0.8, "fill": False}},
          tooltip=[Field("community", t("level.community")), Field("street", t("level.street"))]).add_to(m)
    tiles("streets", name=t("layer.streets"), key="streets", show=False, order=2,
          styles={"*": {"color": BOUNDARY_COLOURS["street"], "weight": 1.2, "fill": False}},
          tooltip=[Field("street", t("level.street")), Field("district", t("level.district"))]).add_to(m)
    tiles("districts", name=t("layer.districts"), key="districts", interactive=False, order=3,
          styles={"*": {"color": BOUNDARY_COLOURS["district"], "weight": 2.2, "fill": False}}).add_to(m)
    if life_circles is not None:  # walking: what the centres reach on foot, each life circle, and what that loses
        tiles("gaps", name=t("layer.walk_gaps"), key="walk_gaps", show=False, stack="gaps", kinds=("walk_gap",),
              order=2, styles={"*": {"color": GAP_COLOURS["service_gap"], "weight": 1, "dashArray": "3 3",
                                     "fillColor": GAP_COLOURS["walk_gap"], "fillOpacity": 0.6}},
              tooltip=gap_tooltip).add_to(m)
        tiles("catchments", name=t("layer.walk_catchments"), key="walk_catchments", show=False, stack="catchments",
              kinds=("walk",), interactive=False, opacity=0.3,  # (its polygons overlap where their tiles meet)
              styles={"*": {"stroke": False, "fillColor": WALK_COLOUR, "fillOpacity": 1}}).add_to(m)
        tiles("catchments", name=t("layer.life_circles"), key="life_circles", show=False, stack="catchments",
              kinds=("ring",), style_by="distance_m", interactive=False, order=1, opacity=0.4,  # nearest on top
              styles={f"{d:g}": {"stroke": False, "fillColor": c, "fillOpacity": 1}
                      for d, c in zip(sorted(life_circles), RING_COLOURS)}).add_to(m)
    GeoJsonLayer(t("layer.catchments"), key="catchments", url=urls["centers"], show=False, points="catchment",
                 style_by="level",
                 stack="catchments",
                 radii=radii, interactive=False,
                 styles={lvl: {"color": c, "weight": 1, "fillColor": c, "fillOpacity": 0.06}
                         for lvl, c in CATCHMENT_COLOURS.items()}).add_to(m)
    tiles("centers", name=t("layer.centers"), key="centers", style_by="level", stack="centers",
          styles={lvl: {"radius": size / 2, "color": "#ffffff", "weight": 1.5, "fillColor": CATCHMENT_COLOURS[lvl],
                        "fillOpacity": 1, "minZoom": CENTER_ZOOMS[lvl]} for lvl, (_, size) in CENTER_ICONS.items()},
          tooltip=[Field("name", t("field.center")),
                   Field("level", t("field.level"), labels=level_labels), *unit_fields],
          links=[(t("map.details"), urls["center_page"])] if urls.get("center_page") else []).add_to(m)
    if urls.get("labels"):
        LabelLayer(t("layer.labels"), url=urls["labels"], levels=LABEL_LEVELS, key="labels").add_to(m)
    if urls.get("recommendations"):
        query = urlencode({**RECOMMENDED, **(view.unit or {})})
        RecommendationsLayer(
            t("layer.recommendations"), key="recommendations", url=f"{urls['recommendations']}?{query}",
            panel=panel_texts(lang),
            tooltip=[Field("rank", t("planning.rank")), Field("new_population", t("planning.new_population"), "number"),
                     Field("covered_share", t("planning.cumulative_share"), "percent"),
                     Field("unit", t("planning.unit")), Field("solver", t("planning.solver"))],
            solvers={s: t(f"solver.{s}") for s in ("greedy", "mclp")},
            k=RECOMMENDED["k"],
            texts={key: t(f"planning.{key}") for key in ("recommendations", "zoom_hint", "none", "fewer", "failed",
                                                         "solver", "new_population", "cumulative_share")}
            | {"loading": t("map.loading")},
        ).add_to(m)
    if view.outline:
        # labelled by a fixed text: Leaflet's layer control writes labels as HTML, and a unit's name is data
        GeoJsonLayer(t("layer.unit"), data=view.outline, key="unit",
                     interactive=False, dim={"fillColor": "#ffffff", "fillOpacity": 0.6},
                     styles={"*": {"color": BOUNDARY_COLOURS["unit"], "weight": 3, "fill": False}}).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    if urls.get("search"):
        SearchControl(urls["search"], urls["items"], grids_layer=t("layer.coverage"), centers_layer=t("layer.centers"),
                      kinds={kind: t(f"search.{kind}") for kind in SEARCH_KINDS},
                      outline_colour=BOUNDARY_COLOURS["unit"], placeholder=t("map.search"),
                      not_found=t("map.search_none")).add_to(m)
    FullscreenControl(t("map.fullscreen")).add_to(m)
    # a unit's map says which unit it is; the city's is titled only where it is printed or exported
    MapTitle(view.title or t("app.title"), screen=bool(view.title)).add_to(m)
    if urls.get("export_script"):
        ExportControl(script=urls["export_script"], filename=view.title or t("app.title"),
                      texts={key: t(f"map.{key}") for key in ("export_png", "print", "export_failed")}).add_to(m)
    if urls.get("whatif"):
        # on a unit's map, the what-if is the unit's (a province's whole one is a heavy job)
        WhatIfControl(url=f"{urls['whatif']}?{urlencode({'level': WHATIF_LEVEL, **(view.unit or {})})}",
                      level=PROPOSED_LEVEL, radii={lvl: radii[lvl] for lvl in CENTER_ICONS},
                      levels=[(lvl, t(f"center.{lvl}")) for lvl in CENTER_ICONS], panel=panel_texts(lang),
                      texts={key: t(f"planning.{key}") for key in (
                          "whatif", "place", "clear", "proposed_count", "share_change", "population_change",
                          "not_stored", "failed", "sign_in", "sign_in_link", "level", "effects", "effect_unit",
                          "effect_share", "effect_change")}
                      | {"loading": t("map.loading"), "placing_hint": t("planning.placing_level_hint"),
                         "city": t("nav.city")}, sign_in=sign_in).add_to(m)
    if editing:
        EditControl(urls=editing, lang=lang).add_to(m)
    Legend(t("legend.title"), [
        (t("legend.coverage"), [LegendEntry(t(f"status.{s}"), c) for s, c in STATUS_COLOURS.items()]),
        (t("legend.gaps"), [LegendEntry(t("gap.service_gap"), GAP_COLOURS["service_gap"]),
                            LegendEntry(t("gap.missing_center"), GAP_COLOURS["missing_center"], "outline"),
                            LegendEntry(t("gap.tiling_gap"), GAP_COLOURS["tiling_gap"]),
                            LegendEntry(t("gap.overlap"), GAP_COLOURS["overlap"]),
                            LegendEntry(t("gap.staffing_gap"), GAP_COLOURS["staffing_gap"], "outline"),
                            *([LegendEntry(t("gap.walk_gap"), GAP_COLOURS["service_gap"], "outline")]
                              if life_circles is not None else [])]),
        *([(t("legend.walking"), [LegendEntry(t("layer.walk_catchments"), WALK_COLOUR),
                                  *(LegendEntry(t("legend.ring").format(distance=f"{d:g}"), c)
                                    for d, c in zip(sorted(life_circles), RING_COLOURS))])]
          if life_circles is not None else []),
        (t("legend.centers"), [LegendEntry(t(f"center.{lvl}"), "", cls) for lvl, (cls, _) in CENTER_ICONS.items()]),
        *([(t("planning.title"), [LegendEntry(t("layer.recommendations"), "", "gm-rec"),
                                  LegendEntry(t("planning.proposed"), "", "gm-proposed")])]
          if urls.get("recommendations") or urls.get("whatif") else []),
    ]).add_to(m)
    for layer in m._children.values():
        if isinstance(layer, GeoJsonLayer) and layer.config["show"] and layer.config["url"]:
            preload(m, layer.config["url"])
    ShareView(fit).add_to(m)  # after the layers it may switch, before the wait for them; fits ``fit``
    ReadySignal().add_to(m)
    return m
