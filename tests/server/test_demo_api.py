"""The served demos: an empty data dir is filled at start (Ningbo by default, Zhejiang on request)."""

import pytest

from server import create_app

DISTRICTS = {"海曙区", "江北区", "北仑区", "镇海区", "鄞州区", "奉化区", "象山县", "宁海县", "余姚市", "慈溪市"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # module scope: installing the demo takes seconds, and these tests only read
    app = create_app({"DATA_DIR": str(tmp_path_factory.mktemp("demo")), "DEMO": True, "TESTING": True})
    return app.test_client()


def matched(client, url):
    resp = client.get(url)
    assert resp.status_code == 200
    return resp.get_json(force=True)["numberMatched"]


def test_ningbo_scale(client):
    assert matched(client, "/api/collections/grids/items?limit=1") >= 8000
    assert matched(client, "/api/collections/centers/items?limit=1") >= 2400
    assert matched(client, "/api/collections/districts/items?limit=1") == 10


def test_all_ten_districts_have_grids(client):
    names = {f["properties"]["name"] for f in client.get("/api/collections/districts/items?limit=10").get_json(
        force=True)["features"]}
    assert names == DISTRICTS
    for name in DISTRICTS:
        assert matched(client, f"/api/collections/grids/items?limit=1&district={name}") > 100


def test_bbox_around_the_city_centre_finds_dense_small_grids(client):
    # 0.02° × 0.02° (about 2 km × 2 km) at Sanjiangkou, the urban core
    assert matched(client, "/api/collections/grids/items?bbox=121.54,29.86,121.56,29.88&limit=1") >= 10


def test_city_page_and_its_map_data(client):
    page = client.get("/")
    # the page holds the map's code and settings, never its features (they come as tiles): a few KB gzipped
    assert page.status_code == 200 and len(page.data) < 30_000 and b'"type":"Feature"' not in page.data
    grids = client.get("/map/data/coverage.geojson").get_json(force=True)
    assert len(grids["features"]) >= 8000
    assert {f["properties"]["coverage_status"] for f in grids["features"]} == {"covered", "partial", "uncovered"}


def test_demo_has_gaps_for_planners_to_find(client):
    summary = client.get("/api/summary?level=district").get_json(force=True)["rows"]
    assert {r["district"] for r in summary} == DISTRICTS
    assert all(0.3 < r["covered_share"] < 1.0 for r in summary)
    gaps = client.get("/api/summary?level=city").get_json(force=True)["rows"][0]
    assert gaps["missing_center"] > 0 and gaps["staffing_gap"] > 0 and gaps["service_gap"] > 0
    # the demo grids tile their districts: no tiling gaps or overlaps beyond the sliver tolerance
    assert gaps["tiling_gap"] == 0 and gaps["overlap"] == 0


@pytest.mark.slow
def test_gridmap_demo_zhejiang_serves_the_province(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDMAP_DEMO", "zhejiang")
    client = create_app({"DATA_DIR": str(tmp_path / "data"), "TESTING": True}).test_client()
    assert matched(client, "/api/collections/districts/items?limit=1") == 90
    assert 83_000 <= matched(client, "/api/collections/grids/items?limit=1") <= 87_000
    assert 22_500 <= matched(client, "/api/collections/centers/items?limit=1") <= 25_500
    for layer in ("districts", "grids", "centers"):
        [feature] = client.get(f"/api/collections/{layer}/items?limit=1").get_json(force=True)["features"]
        assert feature["properties"]["city"] == "杭州市"
    assert matched(client, "/api/collections/grids/items?limit=1&district=海曙区") > 1000
    versions = client.get("/api/collections/grids/versions").get_json()["versions"]
    assert [v["message"] for v in versions] == ["浙江演示数据：首次启动时生成"]  # a record in the default language
