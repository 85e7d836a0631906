import json
import re

import geopandas as gpd
import pytest
import shapely
from shapely import box

from maps import display
from maps.coverage_map import MAP_DATA, Assets, Basemap, View, coverage_map
from maps.layers import Field, GeoJsonLayer, Legend, LegendEntry

XSS = '</script><img src=x onerror="alert(1)">'
ASSETS = Assets(js=(("leaflet", "/assets/leaflet/1/leaflet.js"), ("gridmap", "/assets/gridmap/1/gridmap-map.js")),
                css=(("leaflet_css", "/assets/leaflet/1/leaflet.css"),))
URLS = {**{name: f"/map/data/{name}.geojson" for name in MAP_DATA},
        "data": "/api/collections/coverage/items/{grid_id}", "map": "/map?district={district}",
        "search": "/api/search", "items": "/api/collections/{collection}/items",
        "tiles": "/api/collections/{collection}/tiles/WebMercatorQuad/{z}/{y}/{x}",
        "item": "/api/collections/{collection}/items/{id}"}
RADII = {"community": 1000, "street": 2500, "district": 5000}


def render(basemap=Basemap(None), lang="zh", view=View(bounds=[121.4, 29.8, 121.6, 29.95])) -> str:
    m = coverage_map(view=view, urls=URLS, radii=RADII, basemap=basemap, assets=ASSETS, lang=lang)
    return m.get_root().render()


def layer_configs(html: str) -> dict[str, dict]:
    """The JSON options of every gridmap.geojsonLayer and gridmap.vectorTileLayer call in the page, by layer name."""
    configs = [json.loads(m) for m in re.findall(r"gridmap\.(?:geojson|vectorTile)Layer\(map_\w+, (\{.*?\})\);\n",
                                                html)]
    return {c["name"]: c for c in configs}


def test_page_loads_only_local_assets_and_carries_no_data():
    html = render()
    assert re.findall(r"https?://[^\s\"'<>]+", html) == []
    assert '<script src="/assets/leaflet/1/leaflet.js"></script>' in html
    assert "jquery" not in html.lower() and "bootstrap" not in html.lower()
    assert len(html.encode()) < 25_000


def test_every_layer_the_issue_names_is_there_and_drawn_from_tiles():
    configs = layer_configs(render())
    assert list(configs) == ["网格覆盖状态", "服务盲区", "力量配备缺口", "网格空隙与重叠", "缺少服务中心的单元",
                             "社区界", "街道界", "区县界", "服务半径", "党群服务中心"]
    tiled = {name: c for name, c in configs.items() if name != "服务半径"}
    for c in tiled.values():  # each from its collection's tiles; popups ask for the feature by its key
        assert c["url"] == f"/api/collections/{c['layer']}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}", c
        assert c["itemUrl"] == f"/api/collections/{c['layer']}/items/{{id}}", c
    assert {name: c["layer"] for name, c in tiled.items()} == {
        "网格覆盖状态": "coverage", "服务盲区": "gaps", "力量配备缺口": "gaps", "网格空隙与重叠": "gaps",
        "缺少服务中心的单元": "gaps", "社区界": "communities", "街道界": "streets", "区县界": "districts",
        "党群服务中心": "centers"}
    assert configs["服务盲区"]["kinds"] == ["service_gap"] and configs["网格空隙与重叠"]["kinds"] == [
        "tiling_gap", "overlap"]
    assert configs["服务半径"]["url"] == "/map/data/centers.geojson"  # hidden: fetched when switched on
    shown = {name for name, c in configs.items() if c["show"]}
    assert shown == {"网格覆盖状态", "网格空隙与重叠", "缺少服务中心的单元", "区县界", "党群服务中心"}
    # drawn in the fixed order of maps/layers.py STACK: grids under gaps under boundaries under centres
    z = {name: c["zIndex"] for name, c in tiled.items()}
    assert z["网格覆盖状态"] < z["服务盲区"] < z["网格空隙与重叠"] < z["缺少服务中心的单元"] < z["社区界"] < z["街道界"] \
        < z["区县界"] < z["党群服务中心"]


def test_grids_are_coloured_by_status_with_shared_styles():
    grids = layer_configs(render())["网格覆盖状态"]
    assert grids["styleBy"] == "coverage_status" and grids["idField"] == "grid_id"
    assert set(grids["styles"]) == {"covered", "partial", "uncovered"}
    assert {f["field"] for f in grids["popup"]} >= {"name", "grid_id", "population", "coverage_ratio"}
    assert grids["links"][0]["href"] == "/api/collections/coverage/items/{grid_id}"
    assert grids["minZoom"] == 0  # below the grids' own zoom, the tiles hold them dissolved by status


def test_centres_are_circles_by_level_from_their_zoom_and_catchments_use_the_radii():
    configs = layer_configs(render())
    centres, catchments = configs["党群服务中心"], configs["服务半径"]
    assert {lvl: s["minZoom"] for lvl, s in centres["styles"].items()} == {"district": 0, "street": 10,
                                                                           "community": 12}
    assert catchments["points"] == "catchment" and catchments["radii"] == RADII


def test_english_labels():
    html = render(lang="en")
    assert list(layer_configs(html))[0] == "Grid coverage"
    assert "Search codes, grids, communities, streets, centres" in html and "Legend" in html
    assert '"community": "community"' in html  # the hits' kinds, in English too
    assert "网格覆盖状态" not in html


def test_unit_view_outlines_the_unit():
    outline = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": XSS}, "geometry": json.loads(shapely.to_geojson(box(0, 0, 1, 1)))}]}
    html = render(view=View(bounds=[121.5, 29.8, 121.52, 29.82], outline=outline))
    assert '"bounds": [[29.8, 121.5], [29.82, 121.52]]' in html  # fitted by gridmap.shareView, unless the URL says
    assert XSS not in html and "<img src=x" not in html
    assert "\\u003c/script\\u003e\\u003cimg" in html  # embedded as JSON with <, > escaped


def test_search_fullscreen_scale_legend_and_ready_signal():
    html = render()
    assert 'gridmap.searchControl(' in html and '"url": "/api/search"' in html
    assert '"itemsUrl": "/api/collections/{collection}/items"' in html
    assert "gridmap.fullscreenControl(" in html
    assert "L.control.scale(" in html
    body = html.split("<body>", 1)[1]
    assert 'class="gridmap-legend"' in body and "已覆盖" in body
    assert html.rindex("gridmap.ready(") > html.rindex("gridmap.geojsonLayer(")


def test_layer_config_escapes_names_and_labels():
    m = coverage_map(view=View(), urls=URLS, radii=RADII, basemap=Basemap(None), assets=ASSETS)
    GeoJsonLayer(XSS, url="/x", tooltip=[Field("name", XSS)]).add_to(m)
    html = m.get_root().render()
    assert XSS not in html and "<img src=x" not in html


def test_legend_escapes_its_labels():
    legend = Legend(XSS, [("类型", [LegendEntry(XSS, "#fff"), LegendEntry("x", "red", "outline")])])
    out = legend._template.module.html(legend, {})
    assert "<img" not in out and "&lt;img" in out
    assert "gm-outline" in out


def test_layer_needs_exactly_one_source():
    with pytest.raises(ValueError):
        GeoJsonLayer("x")
    with pytest.raises(ValueError):
        GeoJsonLayer("x", data={"type": "FeatureCollection", "features": []}, url="/x")


def test_layers_have_stable_url_keys_whatever_the_language():
    """Observation 10: a shared URL names layers by key, never by their translated label."""
    keys = {lang: re.findall(r'"key": "([a-z_]+)"', render(lang=lang)) for lang in ("zh", "en")}
    assert keys["zh"] == keys["en"]
    assert {"grids", "gaps", "staffing", "tiling", "missing", "communities", "streets", "districts", "catchments",
            "centers"} <= set(keys["zh"]), keys
    assert len(set(keys["zh"])) == len(keys["zh"]), keys  # one key, one layer
    assert "gridmap.shareView(" in render()


@pytest.mark.parametrize("key", ["Grids", "<b>", "a,b", "a&b", ""])
def test_a_layer_key_must_be_plain_words(key):
    with pytest.raises(ValueError):
        GeoJsonLayer("x", url="/x", key=key)


@pytest.mark.parametrize("setting,expected", [
    ("none", None),
    ("osm", "https://tile.openstreetmap.org/{z}/{x}/{y}.png"),
    ("https://tiles.example.gov/{z}/{x}/{y}.png", "https://tiles.example.gov/{z}/{x}/{y}.png"),
])
def test_basemap_settings(setting, expected):
    assert Basemap.from_setting(setting).url == expected


def test_tianditu_carries_its_key_and_unknown_basemaps_are_refused():
    assert "tk=KEY123" in Basemap.from_setting("tianditu", "KEY123").url
    with pytest.raises(ValueError):
        Basemap.from_setting("google")


def test_basemap_none_means_no_tile_layer():
    assert "tileLayer" not in render(Basemap(None))
    assert "tile.openstreetmap.org" in render(Basemap.from_setting("osm"))


def test_display_simplification_keeps_neighbours_sharing_edges():
    # two squares sharing a jagged edge: simplified as a coverage, they still neither gap nor overlap
    jag = [(0.5 + (0.001 if i % 2 else 0), i / 20) for i in range(21)]
    left = shapely.Polygon([(0, 0)] + jag + [(0, 1)])
    right = shapely.Polygon([(1, 0), (1, 1)] + jag[::-1])
    out = display.simplify([left, right], 0.01)
    assert shapely.get_num_coordinates(out).sum() < shapely.get_num_coordinates([left, right]).sum()
    assert out[0].intersection(out[1]).area == pytest.approx(0, abs=1e-12)
    assert shapely.union_all(out).area == pytest.approx(1.0, abs=1e-9)


def test_display_rounds_coordinates_to_about_a_metre():
    gdf = gpd.GeoDataFrame({"name": ["a"], "secret": ["x"]}, geometry=[box(121.1234567, 29.1, 121.2, 29.2)], crs=4326)
    body = display.geojson_bytes(gdf, ["name"]).decode()
    assert "121.12346" in body and "121.1234567" not in body
    assert "secret" not in body


# --- planning: recommended sites and the what-if control ---------------------------------------

PLANNING_URLS = {**URLS, "recommendations": "/api/recommendations", "whatif": "/api/whatif"}


def render_planning(view=View(bounds=[121.4, 29.8, 121.6, 29.95]), lang="zh") -> str:
    m = coverage_map(view=view, urls=PLANNING_URLS, radii=RADII, basemap=Basemap(None), assets=ASSETS, lang=lang)
    return m.get_root().render()


def planning_configs(html: str) -> tuple[dict, dict]:
    """The options of the page's one gridmap.recommendationsLayer and one gridmap.whatifControl call."""
    [layer] = re.findall(r"= gridmap\.recommendationsLayer\(map_\w+, (\{.*?\})\);\n", html)
    [whatif] = re.findall(r"gridmap\.whatifControl\(map_\w+, (\{.*?\})\);\n", html)
    return json.loads(layer), json.loads(whatif)


def query(url: str) -> tuple[str, dict[str, str]]:
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    return parts.path, {k: v for k, [v] in parse_qs(parts.query).items()}


def test_recommended_sites_layer_is_hidden_and_fetched_from_the_api_when_shown():
    html = render_planning()
    layer, _ = planning_configs(html)
    assert layer["name"] == "推荐选址" and layer["show"] is False
    assert query(layer["url"]) == ("/api/recommendations", {"level": "community", "k": "10"})
    assert [(f["field"], f.get("format")) for f in layer["tooltip"]] == [
        ("rank", None), ("new_population", "number"), ("covered_share", "percent"), ("unit", None), ("solver", None)]
    assert layer["solvers"] == {"greedy": "贪心算法", "mclp": "最大覆盖模型（精确解）"}
    # switched in the layer control, under its name, and never preloaded (it costs a computation)
    var = re.search(r"var (recommendations_layer_\w+) = gridmap\.recommendationsLayer", html).group(1)
    assert re.search(r'"\\u63a8\\u8350\\u9009\\u5740" : ' + var, html)  # "推荐选址" : the layer
    assert "/api/recommendations" not in html.split("<body>", 1)[0]


def test_a_unit_map_recommends_inside_its_unit():
    unit = {"district": "海曙区", "street": XSS}
    layer, _ = planning_configs(render_planning(View(bounds=[121.5, 29.8, 121.52, 29.82], unit=unit)))
    assert query(layer["url"]) == ("/api/recommendations", {"level": "community", "k": "10", **unit})
    assert "<" not in layer["url"]  # URL-encoded


def test_a_unit_map_asks_what_ifs_of_its_unit():
    unit = {"city": "宁波市", "district": "海曙区"}
    _, whatif = planning_configs(render_planning(View(bounds=[121.5, 29.8, 121.52, 29.82], unit=unit)))
    assert query(whatif["url"]) == ("/api/whatif", {"level": "district", **unit})


def test_whatif_control_places_centres_of_each_level_with_its_radius():
    html = render_planning()
    _, whatif = planning_configs(html)
    assert query(whatif["url"]) == ("/api/whatif", {"level": "district"})
    assert whatif["level"] == "community" and whatif["radii"] == RADII  # community first; each level its radius
    assert whatif["levels"] == [["district", "区级党群服务中心"], ["street", "街道（镇）党群服务中心"],
                                ["community", "社区（村）党群服务中心"]]
    assert whatif["csrfMeta"] == "csrf-token"
    assert whatif["texts"]["place"] == "放置拟建中心" and whatif["texts"]["clear"] == "清除"
    assert whatif["panel"]["title"] == "选址规划"
    # the legend shows both planning symbols
    legend = html.split('class="gridmap-legend"', 1)[1]
    assert "gm-rec" in legend and "gm-proposed" in legend and "拟建中心" in legend


def test_planning_labels_in_english():
    html = render_planning(lang="en")
    layer, whatif = planning_configs(html)
    assert layer["name"] == "Recommended sites" and layer["texts"]["solver"] == "Solver"
    assert [f["label"] for f in layer["tooltip"]] == [
        "Rank", "Newly covered population", "Cumulative covered share", "Unit", "Solver"]
    assert whatif["texts"]["place"] == "Place a proposed centre" and whatif["panel"]["title"] == "Site planning"
    for chinese in ("推荐", "拟建", "覆盖", "选址"):
        assert chinese not in json.dumps(layer, ensure_ascii=False) + json.dumps(whatif, ensure_ascii=False)


def test_maps_without_planning_urls_have_no_planning_parts():
    html = render()
    assert "recommendationsLayer" not in html and "whatifControl" not in html and "gm-proposed" not in html


def test_walking_maps_add_the_walk_the_rings_and_the_walk_gaps_from_tiles_off_at_first():
    m = coverage_map(view=View(), urls=URLS, radii=RADII, basemap=Basemap(None), assets=ASSETS,
                     life_circles=(300.0, 500.0, 1000.0))
    html = m.get_root().render()
    configs = layer_configs(html)
    walk, rings, gaps = configs["步行服务范围"], configs["生活圈（步行距离）"], configs["半径内步行不可达"]
    assert walk["layer"] == "catchments" and walk["kinds"] == ["walk"] and not walk["show"]
    assert rings["layer"] == "catchments" and rings["kinds"] == ["ring"] and not rings["show"]
    assert rings["styleBy"] == "distance_m" and set(rings["styles"]) == {"300", "500", "1000"}
    assert gaps["layer"] == "gaps" and gaps["kinds"] == ["walk_gap"] and not gaps["show"]
    for label in ("步行300米", "步行500米", "步行1000米", "步行不可达"):
        assert label in html
    assert "步行服务范围" not in render()  # disc maps: none of it
