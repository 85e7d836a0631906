import gzip
import json
import re
from pathlib import Path

import pytest

from geodata.validate import validate
from server import create_app
from tests.factories import six_grids


@pytest.fixture
def loaded(store):
    store.write("grids", validate(six_grids(), "grids").data, author="tester")
    return store


def test_city_page_is_served_offline_with_basemap_none(data_dir):
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "BASEMAP": "none"})
    html = app.test_client().get("/").get_data(as_text=True)
    assert re.findall(r"https?://", html) == []
    for src in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html):
        assert app.test_client().get(src).status_code == 200, src


def test_assets_come_from_the_installed_package(client):
    import xstatic.pkg.leaflet as leaflet

    resp = client.get(f"/assets/leaflet/{leaflet.VERSION}/leaflet.js")
    assert resp.status_code == 200 and b"Leaflet" in resp.data[:500]
    assert resp.cache_control.max_age == 365 * 24 * 3600
    assert client.get("/assets/leaflet/0.0.1/leaflet.js").status_code == 404
    assert client.get(f"/assets/leaflet/{leaflet.VERSION}/../../../__init__.py").status_code == 404
    assert client.get("/assets/jquery/1/jquery.js").status_code == 404


def test_a_bad_basemap_setting_fails_at_start(data_dir):
    with pytest.raises(ValueError, match="unknown base map"):
        create_app({"DATA_DIR": str(data_dir), "DEMO": False, "BASEMAP": "google"})


def test_map_data_is_light_gzipped_and_revalidated(client, loaded):
    resp = client.get("/map/data/coverage.geojson", headers={"Accept-Encoding": "gzip"})
    assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "gzip"
    body = json.loads(gzip.decompress(resp.data))
    assert len(body["features"]) == 6
    assert set(body["features"][0]["properties"]) == {"grid_id", "name", "district", "street", "community",
                                                      "population", "covered_population", "coverage_ratio",
                                                      "coverage_status"}
    again = client.get("/map/data/coverage.geojson", headers={"Accept-Encoding": "gzip",
                                                            "If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    plain = client.get("/map/data/coverage.geojson")
    assert "Content-Encoding" not in plain.headers and json.loads(plain.data) == body


def test_map_data_etag_changes_with_a_new_version(client, loaded):
    first = client.get("/map/data/coverage.geojson").headers["ETag"]
    grids = validate(six_grids(), "grids").data
    loaded.write("grids", grids.iloc[:2], author="tester")
    resp = client.get("/map/data/coverage.geojson", headers={"If-None-Match": first})
    assert resp.status_code == 200 and len(json.loads(resp.data)["features"]) == 2


def test_unknown_map_layer_is_404(client):
    assert client.get("/map/data/secrets.geojson").status_code == 404


def test_empty_layers_still_draw(client):
    assert client.get("/").status_code == 200
    assert json.loads(client.get("/map/data/centers.geojson").data)["features"] == []


def test_favicon_answers_without_error(client):
    assert client.get("/favicon.ico").status_code == 204


def test_unit_map_zooms_to_the_unit(client, loaded):
    resp = client.get("/map?district=海曙区&street=白云街道")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    # 白云街道 is the four squares of columns 1-2: lon 121.51-121.53, lat 29.80-29.82
    assert "[[29.8, 121.51], [29.82, 121.53]]" in html
    assert "<title>白云街道 · " in html


def test_unknown_unit_is_a_404_page(client, loaded):
    resp = client.get("/map?district=海曙区&community=nowhere", headers={"Accept": "text/html"})
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    assert "nowhere" in resp.get_data(as_text=True)


def test_map_page_has_navigation_in_both_languages(client, loaded):
    zh = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and "统计看板" in zh
    resp = client.get("/?lang=en")
    en = resp.get_data(as_text=True)
    assert '<html lang="en">' in en and "Dashboard" in en and "Grid coverage" in en
    assert "gridmap_lang=en" in resp.headers["Set-Cookie"]
    assert "Dashboard" in client.get("/").get_data(as_text=True)  # remembered


def test_every_map_layer_is_served(client, loaded):
    from maps.coverage_map import MAP_DATA

    for layer in MAP_DATA:
        resp = client.get(f"/map/data/{layer}.geojson")
        assert resp.status_code == 200, layer
        assert json.loads(resp.data)["type"] == "FeatureCollection"
    kinds = {f["properties"]["kind"] for f in json.loads(client.get("/map/data/staffing.geojson").data)["features"]}
    assert kinds <= {"staffing_gap"}


# --- planning on the map page ------------------------------------------------------------------

def planning_urls(html: str) -> tuple[str, str]:
    """The recommendations URL and the what-if URL the page's planning parts call."""
    rec = json.loads(re.search(r"gridmap\.recommendationsLayer\(map_\w+, (\{.*?\})\);\n", html).group(1))
    whatif = json.loads(re.search(r"gridmap\.whatifControl\(map_\w+, (\{.*?\})\);\n", html).group(1))
    return rec["url"], whatif["url"]


def test_city_map_recommends_for_the_whole_city_and_the_url_answers(client, loaded):
    rec_url, whatif_url = planning_urls(client.get("/").get_data(as_text=True))
    assert rec_url == "/api/recommendations?level=community&k=10" and whatif_url == "/api/whatif?level=district"
    body = json.loads(client.get(rec_url).data)
    assert body["type"] == "FeatureCollection" and body["solver"] in ("greedy", "mclp")


def whatif_config(html: str) -> dict:
    return json.loads(re.search(r"gridmap\.whatifControl\(map_\w+, (\{.*?\})\);\n", html).group(1))


def test_the_whatif_control_offers_visitors_a_sign_in_link(app, client, loaded):
    assert whatif_config(client.get("/").get_data(as_text=True))["signIn"] == "/login?next=/"
    unit = whatif_config(client.get("/map?district=海曙区").get_data(as_text=True))["signIn"]
    assert unit.startswith("/login?next=") and "district" in unit
    app.config["PUBLIC_WHATIF"] = True
    assert whatif_config(client.get("/").get_data(as_text=True))["signIn"] is None


def test_unit_map_recommends_inside_the_unit(client, loaded):
    from urllib.parse import parse_qs, urlsplit

    rec_url, _ = planning_urls(client.get("/map?district=海曙区&street=白云街道").get_data(as_text=True))
    assert {k: v for k, [v] in parse_qs(urlsplit(rec_url).query).items()} == {
        "level": "community", "k": "10", "district": "海曙区", "street": "白云街道"}
    sites = json.loads(client.get(rec_url).data)["features"]
    assert sites and {f["properties"]["street"] for f in sites} == {"白云街道"}


def test_csrf_token_is_in_the_map_page_only_for_signed_in_browsers(app, client, loaded):
    anonymous = client.get("/")
    assert 'name="csrf-token"' not in anonymous.get_data(as_text=True)
    assert "Set-Cookie" not in anonymous.headers  # no session is started for a visitor

    app.extensions["gridmap_users"].add("planner1", "viewer", password="planner-pw")
    login = client.get("/login").get_data(as_text=True)
    form_token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', login).group(1)
    client.post("/login", data={"name": "planner1", "password": "planner-pw", "csrf_token": form_token})
    html = client.get("/").get_data(as_text=True)
    assert whatif_config(html)["signIn"] is None  # signed in: the control places centres
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)
    proposal = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.525, 29.815]},
         "properties": {"level": "community"}}]}
    _, whatif_url = planning_urls(html)
    forged = client.post(whatif_url, json=proposal)  # what a page without the token would send
    assert forged.status_code == 400 and forged.get_json()["error"]["code"] == "csrf_failed"
    resp = client.post(whatif_url, json=proposal, headers={"X-CSRFToken": token})
    assert resp.status_code == 200 and resp.get_json()["after"]["covered_population"] > 0


def test_vectorgrid_is_served_from_what_npm_ci_installed(client):
    """The map's tile drawing comes from the npm package package-lock.json pins, never a CDN or a copy."""
    lock = json.loads((Path(__file__).parents[2] / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/leaflet.vectorgrid"]["version"]
    resp = client.get(f"/assets/vectorgrid/{version}/Leaflet.VectorGrid.bundled.min.js")
    assert resp.status_code == 200 and b"VectorGrid" in resp.data
    assert client.get("/assets/vectorgrid/0.0.1/Leaflet.VectorGrid.bundled.min.js").status_code == 404


def test_place_names_of_each_level_inside_a_box(client, loaded):
    """Labels: a point inside each unit and its name, only those in the view's box, largest first."""
    import shapely

    from tests.factories import STEP, X0, Y0

    communities = client.get("/map/labels/community.json").get_json()
    assert [name for _, _, name in communities] == ["白云社区", "青石社区"]  # 白云 has four grids, 青石 two
    grids = six_grids()
    for lon, lat, name in communities:  # each point inside its own unit
        unit = shapely.union_all(grids[grids["community"] == name].geometry.values)
        assert unit.contains(shapely.Point(lon, lat)), name
    streets = client.get(f"/map/labels/street.json?bbox={X0},{Y0},{X0 + STEP},{Y0 + 2 * STEP}").get_json()
    assert [name for _, _, name in streets] == ["月湖街道"]  # the left column only
    assert client.get("/map/labels/street.json?bbox=0,0,1,1").get_json() == []


def test_place_names_refuse_unknown_levels_and_bad_boxes(client, loaded):
    assert client.get("/map/labels/grid.json").status_code == 404
    bad = client.get("/map/labels/street.json?bbox=1,2,3", headers={"Accept": "application/json"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"]


def _titled(html: str) -> str:
    """The text the map's title control shows (its JSON options in the page's script)."""
    match = re.search(r'gridmap\.mapTitle\([^,]+, (\{.*?\})\);', html)
    assert match, "no map title"
    return json.loads(match.group(1))


def test_a_unit_map_is_titled_by_its_unit_and_its_parents(client, store):
    grids = six_grids()
    grids.insert(0, "city", "宁波市")
    grids.loc[0, "community"] = '<img src=x onerror="alert(1)">'
    store.write("grids", validate(grids, "grids").data, author="tester")
    html = client.get("/map?district=海曙区").get_data(as_text=True)
    assert _titled(html) == {"text": "海曙区 · 宁波市", "screen": True}
    assert "<title>海曙区 · 宁波市 · " in html
    html = client.get("/map?community=" + grids.loc[0, "community"]).get_data(as_text=True)
    assert _titled(html)["text"] == '<img src=x onerror="alert(1)"> · 月湖街道 · 海曙区 · 宁波市'
    assert "<img src=x" not in html  # escaped in the page's title and its script
    city = _titled(client.get("/").get_data(as_text=True))
    assert city == {"text": "网格党群服务覆盖图", "screen": False}  # printed and exported only


def test_the_png_export_script_is_served_from_what_npm_ci_installed(client):
    lock = json.loads((Path(__file__).parents[2] / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/dom-to-image-more"]["version"]
    resp = client.get(f"/assets/domtoimage/{version}/dom-to-image-more.min.js")
    assert resp.status_code == 200 and b"domtoimage" in resp.data
    html = client.get("/").get_data(as_text=True)
    assert f'"script": "/assets/domtoimage/{version}/dom-to-image-more.min.js"' in html  # loaded on a click
    assert "dom-to-image-more.min.js\"></script>" not in html
