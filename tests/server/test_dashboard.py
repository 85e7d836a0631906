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
    for level in ("city", "district", "street", "community"):
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
    assert html.count("<script") == 1 and '<script src="/static/dashboard.js"' in html


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
