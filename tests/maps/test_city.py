import re

import geopandas as gpd
import pytest
import shapely
from shapely import box

from maps import display
from maps.city import Assets, Basemap, city_map
from maps.layers import GeoJsonLayer, Legend

XSS = '</script><img src=x onerror="alert(1)">'
ASSETS = Assets(js=(("leaflet", "/assets/leaflet/1.9.3/leaflet.js"),),
                css=(("leaflet_css", "/assets/leaflet/1.9.3/leaflet.css"),))


URLS = {"districts": "/map/data/districts.geojson", "grids": "/map/data/grids.geojson",
        "centers": "/map/data/centers.geojson"}


def render(basemap=Basemap(None)) -> str:
    m = city_map(bounds=[121.4, 29.8, 121.6, 29.95], urls=URLS, basemap=basemap, assets=ASSETS)
    return m.get_root().render()


def test_page_loads_only_local_assets_and_fetches_layers_by_url():
    html = render()
    assert re.findall(r"https?://[^\s\"'<>]+", html) == []
    assert '<script src="/assets/leaflet/1.9.3/leaflet.js"></script>' in html
    for url in URLS.values():
        assert f'fetch("{url}"' in html
    assert "jquery" not in html.lower() and "bootstrap" not in html.lower()


def test_page_is_small_because_grids_are_not_embedded():
    assert len(render().encode()) < 20_000


def test_embedded_feature_values_cannot_break_out_of_the_script():
    m = city_map(bounds=None, urls=URLS, basemap=Basemap(None), assets=ASSETS)
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.5, 29.9]}, "properties": {"name": XSS}}]}
    GeoJsonLayer("x", data=data, tooltip=[("name", XSS)]).add_to(m)
    html = m.get_root().render()
    assert XSS not in html and "<img src=x" not in html
    assert "\\u003c/script\\u003e\\u003cimg" in html  # embedded as JSON with <, > escaped


def test_tooltips_are_built_from_text_nodes_not_html():
    html = render()
    assert "textContent" in html and "createTextNode" in html
    assert "innerHTML" not in html


def test_legend_escapes_its_labels():
    legend = Legend(XSS, [("类型", [("#fff", XSS)])])
    out = legend._template.module.html(legend, {})
    assert "<img" not in out and "&lt;img" in out


def test_layer_needs_exactly_one_source():
    with pytest.raises(ValueError):
        GeoJsonLayer("x")
    with pytest.raises(ValueError):
        GeoJsonLayer("x", data={"type": "FeatureCollection", "features": []}, url="/x")


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


def test_legend_is_drawn_in_the_page_body():
    html = render()
    body = html.split("<body>", 1)[1]
    assert 'class="gridmap-legend"' in body and "居民小区" in body
    assert not body.lstrip().startswith("None")  # a MacroElement rendered as text would print None
