"""Administrative order in every list: districts by adcode, streets and communities by their grid codes.

Seven Ningbo districts (their real adcodes) of four grids each, ids as the demo makes them
(``330203-01-001-01``: district, street, community, grid).  Names are chosen so that
Unicode order differs from the codes' order at every level: 余姚市 sorts before 海曙区 by
code point but 330281 comes after 330203; street 01 鼓楼街道 after street 02 月湖街道; community
001 孝闻社区 after community 002 中山社区.  The grids are stored in reverse order.
"""

from __future__ import annotations

import csv
import io

import geopandas as gpd
import pytest
from shapely import box

from geodata.validate import validate
from tests.factories import STEP, X0, Y0, grid_row, grids
from tests.http import get_json
from tests.server.test_dashboard import get_page

DISTRICTS = [("330203", "海曙区"), ("330205", "江北区"), ("330206", "北仑区"), ("330211", "镇海区"),
             ("330212", "鄞州区"), ("330281", "余姚市"), ("330282", "慈溪市")]
STREETS = {1: "鼓楼街道", 2: "月湖街道"}
COMMUNITIES = {1: "孝闻社区", 2: "中山社区"}
CELL = STEP / 10

# Hand-written: what people expect to read, top to bottom.
ADMIN_DISTRICTS = ["海曙区", "江北区", "北仑区", "镇海区", "鄞州区", "余姚市", "慈溪市"]
ADMIN_STREETS = [(d, s) for d in ADMIN_DISTRICTS for s in ("鼓楼街道", "月湖街道")]
ADMIN_COMMUNITIES = [(d, s, c) for d, s in ADMIN_STREETS for c in ("孝闻社区", "中山社区")]


@pytest.fixture
def loaded(store):
    rows, shapes, areas = [], [], []
    for i, (adcode, district) in enumerate(DISTRICTS):
        for j, (s, c) in enumerate([(1, 1), (1, 2), (2, 1), (2, 2)]):
            rows.append(grid_row(f"{adcode}-{s:02d}-{c:03d}-01", district=district, street=STREETS[s],
                                 community=COMMUNITIES[c], population=1000 + 10 * i + j))
            x, y = X0 + CELL * j, Y0 + CELL * i
            shapes.append(box(x, y, x + CELL, y + CELL))
        areas.append({"adcode": adcode, "name": district, "name_en": district, "city": "宁波市"})
    layer = grids(rows[::-1], shapes[::-1])
    assert sorted(d for _, d in DISTRICTS) != ADMIN_DISTRICTS  # the test means something
    store.write("grids", validate(layer, "grids").data, author="t")
    outlines = [box(X0, Y0 + CELL * i, X0 + 4 * CELL, Y0 + CELL * (i + 1)) for i in range(len(DISTRICTS))]
    store.write("districts", validate(gpd.GeoDataFrame(areas, geometry=outlines, crs="EPSG:4326"),
                                      "districts").data, author="t")
    return store


def _units(rows, level):
    names = {"district": ["district"], "street": ["district", "street"],
             "community": ["district", "street", "community"]}[level]
    return [tuple(r[n] for n in names) if len(names) > 1 else r[names[0]] for r in rows]


def test_summary_rows_come_in_administrative_order(client, loaded):
    expected = {"district": ADMIN_DISTRICTS, "street": ADMIN_STREETS, "community": ADMIN_COMMUNITIES}
    for level, units in expected.items():
        assert _units(get_json(client, f"/api/summary?level={level}")["rows"], level) == units, level
    inside = get_json(client, "/api/summary?level=street&district=鄞州区")["rows"]
    assert [r["street"] for r in inside] == ["鼓楼街道", "月湖街道"]


def test_summary_csv_comes_in_administrative_order(client, loaded):
    for level, units in {"district": ADMIN_DISTRICTS, "community": ADMIN_COMMUNITIES}.items():
        resp = client.get(f"/api/summary?level={level}&f=csv")
        assert resp.status_code == 200
        table = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
        assert _units(table, level) == units, level


def test_dashboard_tables_come_in_administrative_order(client, loaded):
    _, page = get_page(client)
    assert list(page.rows("district")) == ADMIN_DISTRICTS
    assert [row[:2] for row in ([text for text, _ in r] for r in page.tables["street"] if r)] \
        == [list(u) for u in ADMIN_STREETS]
    # no centres: every district's share (0 %) and gap count tie, so the charts keep the same order
    for chart in ("share", "gaps"):
        bars = [bar["title"].split(" · ")[0] for bar in page.bars[chart]]
        assert list(dict.fromkeys(bars)) == ADMIN_DISTRICTS, chart


def test_street_and_community_collections_come_in_administrative_order(client, loaded):
    streets = get_json(client, "/api/collections/streets/items?limit=100")["features"]
    assert [(f["properties"]["district"], f["properties"]["street"]) for f in streets] == ADMIN_STREETS
    communities = get_json(client, "/api/collections/communities/items?limit=100")["features"]
    assert [tuple(f["properties"][k] for k in ("district", "street", "community")) for f in communities] \
        == ADMIN_COMMUNITIES
