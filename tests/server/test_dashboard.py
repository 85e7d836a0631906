"""The dashboard page on a layout worked out by hand.

Four 0.01° grids (about 966 m × 1,109 m each) five cells apart, so no centre's
1 km disc reaches a neighbour.  A community centre sits in the middle of g1
and of g2: its disc covers the grid whole (corners are 736 m away).

    district           street      community                   grid  population  centre
    海曙区              月湖街道     青石社区                      g1    1,000       yes  -> 100 %
    江北区              白沙街道     白沙社区                      g2      600       yes
    江北区              白沙街道     白沙社区                      g3    1,400       no   ->  30 % (600 / 2,000)
    <img … alert(2)>区  招宝山街道   <script>alert(1)</script>     g4      500       no   ->   0 %

City: 3,500 people, 1,600 covered (45.71 %).  Gaps: every district and street lacks a
centre of its level (3 + 3), the hostile community lacks one too (1); g3 and g4 are
service gaps; g3 has no instructor (a staffing gap).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from shapely import Point

from geodata.validate import validate
from tests.factories import STEP, X0, Y0, center_row, centers, grid_row, grids, square

HOSTILE_GRID = "<img src=x onerror=alert(1)>"
HOSTILE_COMMUNITY = "<script>alert(1)</script>"
HOSTILE_DISTRICT = "<img src=y onerror=alert(2)>区"
COLUMNS = ["grids", "population", "covered_population", "covered_share", "grids_covered", "grids_partial",
           "grids_uncovered", "service_gap", "missing_center", "tiling_gap", "overlap", "staffing_gap"]


def middle(col: int) -> Point:
    return Point(X0 + STEP * col + STEP / 2, Y0 + STEP / 2)


@pytest.fixture
def loaded(store):
    rows = [
        grid_row("g1", population=1000),
        grid_row("g2", district="江北区", street="白沙街道", community="白沙社区", population=600),
        grid_row("g3", district="江北区", street="白沙街道", community="白沙社区", population=1400, instructor=None),
        grid_row("g4", name=HOSTILE_GRID, district=HOSTILE_DISTRICT, street="招宝山街道",
                 community=HOSTILE_COMMUNITY, population=500),
    ]
    layer = grids(rows, [square(0, 0), square(5, 0), square(10, 0), square(15, 0)])
    store.write("grids", validate(layer, "grids").data, author="t")
    centre_rows = [center_row("c1", "community"),
                   center_row("c2", "community", district="江北区", street="白沙街道", community="白沙社区")]
    store.write("centers", validate(centers(centre_rows, [middle(0), middle(5)]), "centers").data, author="t")
    return store


class Page(HTMLParser):
    """What the tests look at: table rows and headings by level, chart bars, links, filter boxes."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str | None]]]] = {}
        self.headings: dict[str, list[dict]] = {}
        self.bars: dict[str, list[dict]] = {}  # chart -> rects, each with its attributes and "title"
        self.links: list[str] = []
        self.filters: list[str] = []
        self.cards: list[str] = []
        self._table = self._chart = self._cell = self._rect = None
        self._title: list[str] | None = None
        self._card = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
            if self._cell is not None:
                self._cell[1] = a["href"]
        if tag == "table" and "sortable" in a.get("class", ""):
            self._table = a["data-level"]
            self.tables[self._table], self.headings[self._table] = [], []
        elif tag == "th" and self._table:
            self.headings[self._table].append(a)
            self._cell = ["", None]
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag == "td" and self._table:
            self._cell = ["", None]
        elif tag == "svg" and "chart" in a.get("class", ""):
            self._chart = a["data-chart"]
            self.bars[self._chart] = []
        elif tag == "rect" and self._chart:
            self._rect = dict(a, title="")
            self.bars[self._chart].append(self._rect)
        elif tag == "title" and self._rect is not None:
            self._title = []
        elif tag == "input" and "data-filter" in a:
            self.filters.append(a["data-filter"])
        elif tag == "div" and a.get("class", "").startswith("card-value"):
            self._card = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            if tag == "td":
                self.tables[self._table][-1].append((self._cell[0].strip(), self._cell[1]))
            else:
                self.headings[self._table][-1]["text"] = self._cell[0].strip()
            self._cell = None
        elif tag == "svg":
            self._chart = None
        elif tag == "title" and self._title is not None:
            self._rect["title"] = "".join(self._title)
            self._title = None
        elif tag == "rect":
            self._rect = None
        elif tag == "div" and self._card is not None:
            self.cards.append("".join(self._card).strip())
            self._card = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data
        if self._title is not None:
            self._title.append(data)
        if self._card is not None:
            self._card.append(data)

    def rows(self, level: str) -> dict[str, list[tuple[str, str | None]]]:
        """Body rows of a level's table by the unit's own name (its last name column)."""
        names = len(self.headings[level]) - len(COLUMNS)
        return {row[names - 1][0]: row for row in self.tables[level] if row}


def get_page(client, url="/dashboard") -> tuple[str, Page]:
    resp = client.get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    return html, Page(html)


def numbers(row, names: int) -> dict[str, str]:
    return dict(zip(COLUMNS, (text for text, _ in row[names:])))


def test_city_cards_show_population_share_and_gap_counts(client, loaded):
    html, page = get_page(client)
    # grids, population, covered population, share, then the five gap kinds
    assert page.cards == ["4", "3,500", "1,600", "45.7%", "2", "7", "0", "0", "1"]
    assert "服务盲区" in html and "缺少服务中心" in html and "力量配备缺口" in html


def test_every_district_is_a_row_with_its_numbers(client, loaded):
    _, page = get_page(client)
    rows = page.rows("district")
    assert set(rows) == {"海曙区", "江北区", HOSTILE_DISTRICT}
    assert numbers(rows["海曙区"], 1) == dict(zip(COLUMNS, [
        "1", "1,000", "1,000", "100.0%", "1", "0", "0", "0", "2", "0", "0", "0"]))
    assert numbers(rows["江北区"], 1) == dict(zip(COLUMNS, [
        "2", "2,000", "600", "30.0%", "1", "0", "1", "1", "2", "0", "0", "1"]))
    assert numbers(rows[HOSTILE_DISTRICT], 1)["covered_share"] == "0.0%"
    assert numbers(rows[HOSTILE_DISTRICT], 1)["missing_center"] == "3"
    streets = page.rows("street")
    assert numbers(streets["白沙街道"], 2)["population"] == "2,000"
    communities = page.rows("community")
    assert len(communities) == 3
    assert numbers(communities["青石社区"], 3)["covered_share"] == "100.0%"


def test_tables_are_marked_up_for_sorting_and_filtering(client, loaded):
    _, page = get_page(client)
    assert list(page.tables) == ["district", "street", "community"]
    assert page.filters == ["district", "street", "community"]
    for level, names in (("district", ["district"]), ("street", ["district", "street"]),
                         ("community", ["district", "street", "community"])):
        heads = page.headings[level]
        assert [h["data-sort"] for h in heads] == names + COLUMNS
        assert [h["data-type"] for h in heads] == ["text"] * len(names) + ["number"] * len(COLUMNS)
    assert [h["text"] for h in page.headings["district"][:3]] == ["区县", "网格数", "人口"]


def test_rows_link_to_the_map_of_their_unit(client, app, loaded):
    _, page = get_page(client)

    def link(level: str, name: str) -> tuple[str, dict]:
        names = {"district": 1, "street": 2, "community": 3}[level]
        href = page.rows(level)[name][names - 1][1]
        parts = urlsplit(href)
        assert parts.path == "/map"
        return parts.query, {k: v for k, [v] in parse_qs(parts.query).items()}

    query, params = link("district", "江北区")
    assert params == {"district": "江北区"}
    assert query == "district=%E6%B1%9F%E5%8C%97%E5%8C%BA"  # UTF-8, percent-encoded
    assert link("street", "白沙街道")[1] == {"district": "江北区", "street": "白沙街道"}
    assert link("community", "青石社区")[1] == {"district": "海曙区", "street": "月湖街道", "community": "青石社区"}
    query, params = link("community", HOSTILE_COMMUNITY)
    assert params["community"] == HOSTILE_COMMUNITY and "<" not in query


def test_csv_export_links_for_every_level(client, loaded):
    html, page = get_page(client)
    for level in ("total", "district", "street", "community"):
        href = f"/api/summary?level={level}&f=csv"
        assert href in page.links
        assert href.replace("&", "&amp;") in html  # attribute properly escaped
    resp = client.get("/api/summary?level=district&f=csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"


def test_share_chart_has_one_bar_per_district_proportional_to_its_share(client, loaded):
    _, page = get_page(client)
    bars = page.bars["share"]
    assert [b["title"].split(" · ")[0] for b in bars] == ["海曙区", "江北区", HOSTILE_DISTRICT]  # highest first
    widths = [float(b["width"]) for b in bars]
    assert widths[0] / widths[1] == pytest.approx(1.0 / 0.3, rel=1e-3)
    assert widths[2] == 0
    assert "30.00%" in bars[1]["title"] and "600" in bars[1]["title"] and "2,000" in bars[1]["title"]


def test_gap_chart_stacks_each_kind_per_district(client, loaded):
    _, page = get_page(client)
    bars = page.bars["gaps"]
    jiangbei = {b["data-kind"]: b for b in bars if b["title"].startswith("江北区")}
    assert set(jiangbei) == {"service_gap", "missing_center", "staffing_gap"}
    assert jiangbei["missing_center"]["title"].endswith(": 2")
    # stacked: each part starts where the one before ends; widths in proportion to the counts
    assert float(jiangbei["missing_center"]["x"]) == pytest.approx(
        float(jiangbei["service_gap"]["x"]) + float(jiangbei["service_gap"]["width"]), abs=0.11)
    assert float(jiangbei["missing_center"]["width"]) == pytest.approx(
        2 * float(jiangbei["staffing_gap"]["width"]), abs=0.11)
    assert {b["fill"] for b in bars} >= {jiangbei[k]["fill"] for k in jiangbei}
    assert len({jiangbei[k]["fill"] for k in jiangbei}) == 3  # a colour per kind


def test_hostile_names_are_escaped_everywhere(client, loaded):
    html, page = get_page(client)
    for raw in (HOSTILE_GRID, HOSTILE_COMMUNITY, HOSTILE_DISTRICT, "<script>alert", "<img src="):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the community, in its table
    assert "&lt;img src=y onerror=alert(2)&gt;区" in html
    # the district's name reached the SVG titles, as text
    assert any(b["title"].startswith(HOSTILE_DISTRICT) for b in page.bars["share"])
    assert any(b["title"].startswith(HOSTILE_DISTRICT) for b in page.bars["gaps"])
    assert HOSTILE_COMMUNITY in page.rows("community")
    # the only scripts are the page's own
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/nav.js">',
                                                  '<script src="/static/dashboard.js" defer>']


def test_chinese_by_default_english_on_request(client, loaded):
    zh, zh_page = get_page(client)
    assert '<html lang="zh-CN">' in zh and "覆盖与缺口统计" in zh
    assert [h["text"] for h in zh_page.headings["community"][:3]] == ["区县", "街道（镇）", "社区（村）"]
    en, en_page = get_page(client, "/dashboard?lang=en")
    assert '<html lang="en">' in en and "<h1>Coverage and gaps</h1>" in en
    assert [h["text"] for h in en_page.headings["district"]] == [
        "District", "Grids", "Population", "Covered population", "Covered share", "Grids covered",
        "Grids partly covered", "Grids not covered", "Service gap", "Missing centre", "Tiling gap", "Overlap",
        "Staffing gap"]
    assert "Covered share of population by district" in en and "Export CSV" in en
    for chinese in ("覆盖率", "缺口", "导出", "网格数", "区县"):
        assert chinese not in en, chinese  # data names are Chinese; no label is


def test_empty_store_says_there_is_no_data(client):
    html, page = get_page(client)
    assert "暂无数据" in html and "尚未上传网格数据" in html
    assert page.tables == {} and page.bars == {}
    en, _ = get_page(client, "/dashboard?lang=en")
    assert "No data yet" in en


def test_the_page_uses_only_its_own_assets(client, loaded):
    html, _ = get_page(client)
    assert "http://" not in html and "https://" not in html
    for asset in ("/static/dashboard.js", "/static/dashboard.css", "/static/gridmap.css"):
        assert f'"{asset}"' in html
        resp = client.get(asset)
        assert resp.status_code == 200 and resp.data
        resp.close()
    assert "localeCompare" in client.get("/static/dashboard.js").get_data(as_text=True)


# --- where the next centres would go: covered share against k, and the top sites ---------------

class Siting(HTMLParser):
    """The k-chart's points (attributes and title) and the recommended sites' table rows."""

    def __init__(self, html: str):
        super().__init__()
        self.points: list[dict] = []
        self.before: dict | None = None
        self.sites: list[dict] = []
        self._chart = self._row = self._title = self._cell = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and a.get("data-chart") == "k":
            self._chart = True
        elif tag == "circle" and self._chart:
            self.points.append(dict(a, title=""))
            self._title = self.points[-1]
        elif tag == "line" and self._chart and a.get("class") == "before":
            self.before = dict(a, title="")
            self._title = self.before
        elif tag == "table" and a.get("class") == "sites":
            self._row = False
        elif tag == "tr" and self._row is not None and "data-rank" in a:
            self.sites.append({"rank": a["data-rank"], "cells": [], "href": None})
            self._row = True
        elif tag == "td" and self._row:
            self._cell = []
        elif tag == "a" and self._row and self._cell is not None:
            self.sites[-1]["href"] = a["href"]

    def handle_endtag(self, tag):
        if tag == "svg":
            self._chart = None
        elif tag in ("circle", "line"):
            self._title = None
        elif tag == "table":
            self._row = None
        elif tag == "td" and self._cell is not None:
            self.sites[-1]["cells"].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._title is not None:
            self._title["title"] += data
        if self._cell is not None:
            self._cell.append(data)


def siting_page(client, url="/dashboard") -> tuple[str, Siting]:
    html, _ = get_page(client, url)
    return html, Siting(html)


@pytest.fixture
def two_grids(store):
    """tests/server/test_planning.py's layout: g00 (1,000) has a community centre, g10 (500, 白云社区) none.

    The centre's 1 km disc reaches part of g10: the summary's covered population is the baseline."""
    layer = grids([grid_row("g00"), grid_row("g10", community="白云社区", population=500)])
    store.write("grids", validate(layer, "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")]), "centers").data, author="t")
    return store


def test_k_chart_has_twenty_points_of_cumulative_share(client, two_grids):
    html, page = siting_page(client)
    [city] = client.get("/api/summary?level=city").get_json()["rows"]
    covered = city["covered_population"]  # one baseline: the summary's, on the chart and in the table
    assert 1000 < covered < 1500
    # one site covers the rest of g10: 1,500 of 1,500 from k = 1 on; more sites add nobody
    assert [int(p["data-k"]) for p in page.points] == list(range(1, 21))
    assert [float(p["data-share"]) for p in page.points] == [1.0] * 20
    assert page.points[0]["title"] == f"k = 1 · 覆盖率 100.00% · 覆盖人口 1,500 (+{1500 - covered:,})"
    assert page.points[1]["title"].endswith("(+0)")
    assert f"{city['covered_share']:.2%}" in page.before["title"]  # the share now, as the summary's
    # drawn where their shares say: every point above the line of the share now, evenly spaced by k
    assert all(float(p["cy"]) < float(page.before["y1"]) for p in page.points)
    xs = [float(p["cx"]) for p in page.points]
    assert xs[1] - xs[0] == pytest.approx(xs[19] - xs[18], abs=0.11) and xs[0] < xs[19]
    assert "新增中心数与人口覆盖率" in html


def test_recommended_sites_table_links_each_site_to_its_unit_map(client, two_grids):
    html, page = siting_page(client)
    [site] = page.sites
    assert site["rank"] == "1"
    [city] = client.get("/api/summary?level=city").get_json()["rows"]
    assert site["cells"] == ["1", "海曙区 / 月湖街道 / 白云社区", f"{1500 - city['covered_population']:,}", "100.0%"]
    parts = urlsplit(site["href"])
    assert parts.path == "/map" and parse_qs(parts.query) == {
        "district": ["海曙区"], "street": ["月湖街道"], "community": ["白云社区"]}
    assert 'data-solver="greedy"' in html and "贪心算法" in html
    assert "只有 1 个选址能新增覆盖人口" in html  # why fewer than 20 came back
    assert "/api/recommendations?level=community&amp;k=20&amp;f=csv" in html


def test_k_chart_follows_each_new_site(client, store):
    """Four grids five cells apart: g1 covered, then 500, 300 and 200 people each need their own site."""
    rows = [grid_row("g1"), grid_row("g2", community="白沙社区", population=500),
            grid_row("g3", community="白云社区", population=300), grid_row("g4", community="白鹤社区", population=200)]
    store.write("grids", validate(grids(rows, [square(5 * i, 0) for i in range(4)]), "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")], [middle(0)]), "centers").data,
                author="t")
    _, page = siting_page(client)
    shares = [float(p["data-share"]) for p in page.points]
    assert shares == [0.75, 0.9, 1.0] + [1.0] * 17  # (1,000 + 500) / 2,000, then + 300, then + 200
    ys = [float(p["cy"]) for p in page.points]
    assert ys[0] > ys[1] > ys[2] == ys[19]  # up with each site that adds people, then flat
    assert [(s["cells"][1].rsplit(" / ", 1)[1], s["cells"][2]) for s in page.sites] == [
        ("白沙社区", "500"), ("白云社区", "300"), ("白鹤社区", "200")]


def test_siting_is_computed_once_per_analysis(client, two_grids, monkeypatch):
    from server import dashboard

    calls = []
    real = dashboard.recommend
    monkeypatch.setattr(dashboard, "recommend", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    siting_page(client)
    siting_page(client, "/dashboard?lang=en")
    assert len(calls) == 1 and calls[0]["solver"] == "greedy"
    two_grids.write("centers", validate(centers([center_row("c1", "community")], [middle(1)]), "centers").data,
                    author="t")
    _, page = siting_page(client)
    assert len(calls) == 2  # a new version of the centres is a new analysis
    assert page.sites[0]["cells"][1].endswith("青石社区")  # the centre moved into g10: g00 is what is left


def test_hostile_community_shows_as_text_among_recommended_sites(client, loaded):
    html, page = siting_page(client)
    units = [s["cells"][1] for s in page.sites]
    assert units[0] == "江北区 / 白沙街道 / 白沙社区"  # g3: 1,400 people, none covered
    assert f"{HOSTILE_DISTRICT} / 招宝山街道 / {HOSTILE_COMMUNITY}" in units
    assert HOSTILE_COMMUNITY not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_k_chart_in_english(client, two_grids):
    html, page = siting_page(client, "/dashboard?lang=en")
    assert "Covered share against k" in html and "Top 10 recommended sites" in html and "Greedy" in html
    assert page.points[0]["title"].startswith("k = 1 · Covered share 100.00%")


@pytest.fixture
def walking_client(tmp_path):
    """A server whose catchments are walked, on the river town of tests/geodata/test_network.py."""
    from server import create_app
    from tests.geodata.test_network import walking_town

    app = create_app({"DATA_DIR": str(tmp_path), "DEMO": False, "TESTING": True, "CATCHMENT": "network"})
    store = app.extensions["gridmap"].store
    for name, layer in zip(("grids", "centers", "roads"), walking_town()):
        store.write(name, validate(layer, name).data, author="t")
    yield app.test_client()
    app.extensions["gridmap"].jobs.close()


def test_walking_dashboard_compares_disc_and_walking_coverage_per_district(walking_client):
    html = walking_client.get("/dashboard").get_data(as_text=True)
    row = walking_client.get("/api/summary?level=district").get_json()["rows"][0]
    # north (1,000 people) is all walk gap, bank (1,000) two thirds of it: 1,667 and edge's share
    assert row["walk_gap_population"] >= 1000 + 667
    assert row["disc_covered_share"] > row["covered_share"]
    section = html.split('<section class="walking"', 1)[1].split("</section>", 1)[0]
    assert "半径与步行覆盖对比" in html
    cells = dict(re.findall(r'data-column="(\w+)">([^<]*)<', section))
    assert cells == {"disc_covered_share": f"{row['disc_covered_share'] * 100:.1f}%",
                     "covered_share": f"{row['covered_share'] * 100:.1f}%",
                     "walk_gap_population": f"{row['walk_gap_population']:,}"}
    assert "海曙区" in section


def test_disc_dashboard_has_no_walking_comparison(client, loaded):
    assert '<section class="walking"' not in client.get("/dashboard").get_data(as_text=True)
