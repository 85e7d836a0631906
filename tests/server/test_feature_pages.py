"""A grid's page and a centre's page: fields in the reader's language, who serves whom, and history."""

from __future__ import annotations

import re

import pytest
from shapely import Point

from geodata.validate import validate
from tests.factories import X0, Y0, STEP, center_row, centers, six_grids

# c1 (community, radius 1000 m) sits at the middle of g00; d1 (district, 5 km) 0.1° east of the block
C1 = Point(X0 + STEP / 2, Y0 + STEP / 2)
D1 = Point(X0 + 0.13, Y0 + STEP / 2)


@pytest.fixture
def loaded(store):
    grids = six_grids()
    grids.loc[0, "name"] = "<b>青石</b>"
    store.write("grids", validate(grids, "grids").data, author="survey", message="first survey")
    store.write("centers", validate(centers([center_row("c1", "community"), center_row("d1", "district")],
                                            [C1, D1]), "centers").data, author="survey")
    changed = validate(grids, "grids").data
    changed.loc[changed["grid_id"] == "g00", "population"] = 150
    store.write("grids", changed, author="wang", message="g00 recounted")
    return store


def cells(html: str, table: str) -> list[list[str]]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr data-[^>]*>(.*?)</tr>", body, re.S)]


def test_a_grid_page_shows_its_fields_in_chinese_and_escaped(client, loaded):
    html = client.get("/grids/g00").get_data(as_text=True)
    assert "&lt;b&gt;青石&lt;/b&gt;" in html and "<b>青石</b>" not in html
    assert '<dd data-field="grid_type">居民小区</dd>' in html
    assert '<dd data-field="population">150</dd>' in html
    assert 'data-field="instructor"' not in html  # staffing: signed-in readers only
    assert "登录后可查看人员配备" in html


def test_a_signed_in_reader_sees_staffing_in_english(viewer_client, loaded):
    html = viewer_client.get("/grids/g00?lang=en").get_data(as_text=True)
    assert '<dd data-field="instructor">王建国</dd>' in html and "Grid type" in html


def test_a_grid_page_names_the_centres_that_serve_it_with_distances(client, loaded):
    html = client.get("/grids/g10").get_data(as_text=True)
    # g10 spans x 0.01–0.02° east of c1 (0.005° away ≈ 484 m at 29.8°N); d1 is 0.11° ≈ 10.6 km: beyond 5 km
    rows = cells(html, "centres")
    assert [r[0] for r in rows] == ["c1中心"]
    assert 470 <= int(rows[0][2].replace(",", "")) <= 500 and rows[0][3] == "1,000"


def test_a_grid_no_centre_reaches_lists_the_nearest(client, store):
    store.write("grids", validate(six_grids(), "grids").data, author="x")
    store.write("centers", validate(centers([center_row("d1", "district")], [D1]), "centers").data, author="x")
    html = client.get("/grids/g00").get_data(as_text=True)
    assert "没有中心的服务半径覆盖本网格" in html and cells(html, "centres")[0][0] == "d1中心"


def test_a_grid_page_lists_its_own_history_newest_first(client, viewer_client, loaded):
    rows = cells(viewer_client.get("/grids/g00").get_data(as_text=True), "feature-history")
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [("2", "wang", "修改", "g00 recounted"),
                                                        ("1", "survey", "新增", "first survey")]
    anonymous = cells(client.get("/grids/g10").get_data(as_text=True), "feature-history")
    assert [r[0] for r in anonymous] == ["1"] and len(anonymous[0]) == 4  # no author column for anonymous readers


def test_a_centre_page_counts_the_grids_it_reaches(client, loaded):
    html = client.get("/centers/c1").get_data(as_text=True)
    # c1 (1000 m) at the middle of g00: g10 is 0.005° east (≈ 483 m), g01 0.005° north (≈ 554 m), g11 both
    # (≈ 735 m); g20 (≈ 1,449 m) and g21 are out of reach
    rows = cells(html, "grids")
    assert [r[0] for r in rows] == ["&lt;b&gt;青石&lt;/b&gt;", "g10网格", "g01网格", "g11网格"]
    assert [int(r[2].replace(",", "")) for r in rows] == pytest.approx([0, 483, 554, 735], abs=5)
    assert "网格数: 4" in html


def test_an_unknown_grid_is_404_and_a_removed_one_says_so(client, loaded):
    assert client.get("/grids/nope").status_code == 404
    loaded.write_changes("grids", removed=["g21"], author="x")
    resp = client.get("/grids/g21")
    assert resp.status_code == 200 and "该要素已在当前版本中删除" in resp.get_data(as_text=True)
    assert cells(resp.get_data(as_text=True), "feature-history")[0][2] == "删除"
