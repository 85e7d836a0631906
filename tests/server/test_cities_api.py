"""Two cities in one service, through the routes: the layout of tests/geodata/test_cities.py.

甲市 and 乙市 each have a 市辖区 / 中山街道 / 东门社区; 甲市 also has 西门社区 and all its centres.
With 5 km radii: 甲市 300 of 300 people covered, 乙市 0 of 400; missing centres 1 (甲市's 西门社区)
and 3 (乙市's district, street and 东门社区); one service gap (乙市's grid).
"""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

import pytest

from server import create_app
from tests.geodata.test_cities import layout
from tests.http import get_json

WIDE = {"RADIUS_COMMUNITY_M": 5000.0, "RADIUS_STREET_M": 5000.0, "RADIUS_DISTRICT_M": 5000.0}
NUMBERS = ("grids", "population", "covered_population", "covered_share", "missing_center", "service_gap")


def load(data_dir, cities: bool):
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, **WIDE})
    store = app.extensions["gridmap"].store
    grids, centers = layout(cities)
    store.write("grids", grids, author="t")
    store.write("centers", centers, author="t")
    return app


@pytest.fixture
def two_cities(data_dir):
    app = load(data_dir, cities=True)
    yield app.test_client()
    app.extensions["gridmap"].jobs.close()


@pytest.fixture
def no_city(data_dir):
    app = load(data_dir, cities=False)
    yield app.test_client()
    app.extensions["gridmap"].jobs.close()


def numbers(row: dict) -> tuple:
    return tuple(row[k] for k in NUMBERS)


def test_summary_total_is_one_row_for_the_whole(two_cities):
    body = get_json(two_cities, "/api/summary?level=total")
    assert body["level"] == "total"
    [row] = body["rows"]
    assert numbers(row) == (3, 700, 300, 0.4286, 4, 1) and "city" not in row


def test_summary_city_is_one_row_a_city(two_cities):
    rows = get_json(two_cities, "/api/summary?level=city")["rows"]
    assert [(r["city"], numbers(r)) for r in rows] == [("甲市", (2, 300, 300, 1.0, 1, 0)),
                                                       ("乙市", (1, 400, 0, 0.0, 3, 1))]


def test_summary_districts_of_the_same_name_in_two_cities_are_two_rows(two_cities):
    rows = get_json(two_cities, "/api/summary?level=district")["rows"]
    assert [(r["city"], r["district"], r["missing_center"]) for r in rows] == [("甲市", "市辖区", 1), ("乙市", "市辖区", 3)]
    only = get_json(two_cities, "/api/summary?level=community&city=乙市&district=市辖区")["rows"]
    assert [(r["city"], r["community"], r["population"]) for r in only] == [("乙市", "东门社区", 400)]
    table = list(csv.DictReader(io.StringIO(
        two_cities.get("/api/summary?level=community&f=csv").data.decode("utf-8-sig"))))
    assert [(r["city"], r["community"]) for r in table] == [("甲市", "东门社区"), ("甲市", "西门社区"),
                                                           ("乙市", "东门社区")]


def test_without_cities_the_city_row_is_the_total(no_city):
    total = get_json(no_city, "/api/summary?level=total")["rows"]
    city = get_json(no_city, "/api/summary?level=city")["rows"]
    assert city == total and len(city) == 1 and "city" not in city[0]
    assert numbers(city[0]) == (3, 700, 300, 0.4286, 1, 1)  # by name alone, 东门社区 has its centre
    assert [r["district"] for r in get_json(no_city, "/api/summary?level=district")["rows"]] == ["市辖区"]


def test_collections_filter_by_city_and_keep_namesakes_apart(two_cities):
    streets = get_json(two_cities, "/api/collections/streets/items")["features"]
    assert [(f["properties"]["unit_id"], f["properties"]["population"]) for f in streets] == [
        ("甲市.市辖区.中山街道", 300), ("乙市.市辖区.中山街道", 400)]
    communities = get_json(two_cities, "/api/collections/communities/items?city=乙市")["features"]
    assert [f["properties"]["unit_id"] for f in communities] == ["乙市.市辖区.中山街道.东门社区"]
    grids = get_json(two_cities, "/api/collections/grids/items?city=甲市")["features"]
    assert sorted(f["id"] for f in grids) == ["a1", "a2"]
    missing = get_json(two_cities, "/api/collections/gaps/items?kind=missing_center&city=乙市")["features"]
    assert sorted(f["properties"]["level"] for f in missing) == ["community", "district", "street"]
    download = two_cities.get("/api/download/coverage.csv?city=乙市")
    assert download.status_code == 200
    assert [r["grid_id"] for r in csv.DictReader(io.StringIO(download.data.decode("utf-8-sig")))] == ["b1"]


def test_the_map_of_one_citys_district(two_cities):
    assert two_cities.get("/map?city=乙市&district=市辖区").status_code == 200
    assert two_cities.get("/map?city=丙市&district=市辖区").status_code == 404


def test_dashboard_of_several_cities_compares_cities_and_districts(two_cities):
    html = two_cities.get("/dashboard").get_data(as_text=True)
    assert 'data-level="city"' in html and 'data-level="district"' in html
    assert 'data-level="street"' not in html and 'data-level="community"' not in html  # on each city's own
    hrefs = _hrefs(html)
    assert "/dashboard?city=%E4%B9%99%E5%B8%82" in hrefs  # 乙市's dashboard
    assert {"/api/summary?level=city&f=csv", "/api/summary?level=street&f=csv",
            "/api/summary?level=community&f=csv"} <= set(hrefs)
    links = [parse_qs(urlsplit(h).query) for h in hrefs if urlsplit(h).path == "/map"]
    assert {"city": ["乙市"]} in links and {"city": ["乙市"], "district": ["市辖区"]} in links
    assert 'data-city="乙市"' in html  # the charts compare the cities
    assert "2 个地级市" in html or "All 2 cities" in html
    assert "<section class=\"siting\"" not in html  # a city's question: on each city's dashboard


def test_dashboard_of_one_city(two_cities):
    resp = two_cities.get("/dashboard?city=乙市")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "乙市 · " in html and 'data-level="community"' in html and 'data-level="city"' not in html
    links = [parse_qs(urlsplit(h).query) for h in _hrefs(html) if urlsplit(h).path == "/map"]
    assert {"city": ["乙市"], "district": ["市辖区"], "street": ["中山街道"], "community": ["东门社区"]} in links
    assert not any(q.get("city") == ["甲市"] for q in links)  # only 乙市's units
    assert 'data-district="市辖区"' in html  # its charts compare its districts
    assert "/api/summary?level=community&f=csv&city=%E4%B9%99%E5%B8%82" in _hrefs(html)
    assert '<section class="siting"' in html and "/api/recommendations?level=community&amp;k=20&amp;f=csv&amp;city=" in html
    assert two_cities.get("/dashboard?city=丙市").status_code == 404


def test_recommendations_inside_one_city(two_cities):
    body = get_json(two_cities, "/api/recommendations?level=community&k=1&city=乙市&district=市辖区")
    assert body["population"] == 400
    assert [f["properties"]["city"] for f in body["features"]] == ["乙市"]


def _hrefs(html: str) -> list[str]:
    from html.parser import HTMLParser

    found = []

    class Links(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "a" and dict(attrs).get("href"):
                found.append(dict(attrs)["href"])

    Links().feed(html)
    return found


def test_a_what_if_inside_one_city(two_cities):
    token = two_cities.application.extensions["gridmap_users"].add("viewer1", "viewer")[1]
    grids, _ = layout()
    middle = grids[grids["grid_id"] == "b1"].geometry.iloc[0].centroid  # 乙市's grid: a 5 km disc covers it
    proposal = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"level": "community"}, "geometry": {"type": "Point",
                                                                                 "coordinates": [middle.x, middle.y]}}]}
    headers = {"Authorization": f"Bearer {token}"}
    inside = two_cities.post("/api/whatif?level=community&city=乙市", json=proposal, headers=headers)
    assert inside.status_code == 200, inside.get_data(as_text=True)
    body = inside.get_json()
    assert body["before"] == {"covered_population": 0, "covered_share": 0.0}
    assert body["after"] == {"covered_population": 400, "covered_share": 1.0}
    assert [(r["city"], r["community"], r["covered_population"], r["missing_center"]) for r in body["rows"]] == [
        ("乙市", "东门社区", 400, 0)]  # its own community centre now
    whole = two_cities.post("/api/whatif?level=city", json=proposal, headers=headers).get_json()
    assert whole["before"] == {"covered_population": 300, "covered_share": 0.4286}
    assert whole["after"] == {"covered_population": 700, "covered_share": 1.0}
    assert [r["city"] for r in whole["rows"]] == ["甲市", "乙市"]
    assert two_cities.post("/api/whatif?city=丙市", json=proposal, headers=headers).status_code == 400


def test_search_tells_namesake_districts_apart_by_their_city(two_cities):
    hits = [h for h in get_json(two_cities, "/api/search?q=市辖区")["hits"] if h["kind"] == "district"]
    assert sorted(tuple(h["parents"]) for h in hits) == [("乙市",), ("甲市",)]
    queries = sorted(parse_qs(urlsplit(h["href"]).query)["city"][0] for h in hits)
    assert queries == ["乙市", "甲市"]


def test_search_without_cities_finds_units_as_before(no_city):
    hits = get_json(no_city, "/api/search?q=东门社区")["hits"]
    assert [(h["kind"], h["parents"]) for h in hits if h["kind"] == "community"] == [("community", ["中山街道", "市辖区"])]


def test_summary_total_of_a_unit_is_that_units_whole(two_cities):
    [row] = get_json(two_cities, "/api/summary?level=total&city=乙市")["rows"]
    assert numbers(row) == (1, 400, 0, 0.0, 3, 1)
    # 市辖区 named without its city: both cities' districts of that name, summed (the whole dataset here)
    [both] = get_json(two_cities, "/api/summary?level=total&district=市辖区")["rows"]
    assert numbers(both) == (3, 700, 300, 0.4286, 4, 1)
    [street] = get_json(two_cities, "/api/summary?level=total&city=甲市&district=市辖区&street=中山街道")["rows"]
    assert numbers(street) == (2, 300, 300, 1.0, 1, 0)


@pytest.mark.parametrize("query, says", [
    ("level=city&district=市辖区", "level=city 的各行不在某个 district 之内"),  # said in Chinese (by default)
    ("level=district&street=中山街道", "level=district 的各行不在某个 street 之内"),
    ("level=total&district=无此区", "无此区 中没有网格"),
])
def test_a_summary_level_above_the_unit_asked_is_a_400(two_cities, query, says):
    resp = two_cities.get(f"/api/summary?{query}")
    assert resp.status_code == 400 and says in resp.get_json()["error"]["message"]
