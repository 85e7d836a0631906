"""GET /api/summary/history: covered share at each of the last versions of the data, worked out by hand.

Two grids five cells apart (no 1 km disc reaches from one to the other); a community centre in the
middle of a grid covers it whole (its corners are 736 m away):

    state  change (time)                         covered / people        share   白云社区
    1      grids v1: g00 1,000, g10 500 (day 1)  0 / 1,500               0.0     0.0
    2      centres v1: one in g00 (day 2)        1,000 / 1,500           0.6667  0.0
    3      grids v2: g10 now 1,000 (day 3)       1,000 / 2,000           0.5     0.0
    4      centres v2: one in g10 too (day 4)    2,000 / 2,000           1.0     1.0
"""

from __future__ import annotations

import pytest
from shapely import Point

from geodata.validate import validate
from tests.factories import STEP, X0, Y0, center_row, centers, grid_row, grids, square


def middle(col: int) -> Point:
    return Point(X0 + STEP * col + STEP / 2, Y0 + STEP / 2)


def day(n: int) -> str:
    return f"2026-03-0{n}T08:00:00+00:00"


@pytest.fixture
def four_states(store):
    def layer(people):
        return validate(grids([grid_row("g00"), grid_row("g10", community="白云社区", population=people)],
                              [square(0, 0), square(5, 0)]), "grids").data

    one = validate(centers([center_row("c1", "community")], [middle(0)]), "centers").data
    two = validate(centers([center_row("c1", "community"), center_row("c2", "community", community="白云社区")],
                           [middle(0), middle(5)]), "centers").data
    store.write("grids", layer(500), author="t", time=day(1))
    store.write("centers", one, author="t", time=day(2))
    store.write("grids", layer(1000), author="t", time=day(3))
    store.write("centers", two, author="t", time=day(4))
    return store


def test_the_covered_share_of_each_version_newest_first(client, four_states):
    body = client.get("/api/summary/history?community=白云社区").get_json()
    assert (body["limit"], body["states"], body["shown"]) == (12, 4, 4)
    points = body["points"]
    assert [p["time"] for p in points] == [day(4), day(3), day(2), day(1)]
    assert [p["versions"] for p in points] == [{"grids": 2, "centers": 2}, {"grids": 2, "centers": 1},
                                               {"grids": 1, "centers": 1}, {"grids": 1, "centers": None}]
    assert [p["whole"]["covered_share"] for p in points] == [1.0, 0.5, 0.6667, 0.0]
    assert [p["whole"]["covered_population"] for p in points] == [2000, 1000, 1000, 0]
    assert [p["unit"]["covered_share"] for p in points] == [1.0, 0.0, 0.0, 0.0]
    # the newest is the summary's own numbers: one baseline
    [city] = client.get("/api/summary?level=city").get_json()["rows"]
    assert points[0]["whole"]["covered_population"] == city["covered_population"]


def test_old_versions_are_computed_once_and_the_last_n_only(app, client, four_states):
    jobs = app.extensions["gridmap"].jobs
    started = jobs.started
    body = client.get("/api/summary/history?limit=2").get_json()
    assert (body["states"], body["shown"]) == (4, 2) and "unit" not in body["points"][0]
    assert [p["whole"]["covered_share"] for p in body["points"]] == [1.0, 0.5]
    assert jobs.started - started == 1  # the one old state shown; the current one is the analysis
    client.get("/api/summary/history")
    assert jobs.started - started == 3  # the other two old ones
    client.get("/api/summary/history?district=海曙区")
    assert jobs.started - started == 3  # kept


@pytest.mark.parametrize("query", ["limit=0", "limit=13", "limit=x", "limit=²", "district=nowhere", "level=city"])
def test_bad_history_requests(client, four_states, query):
    resp = client.get(f"/api/summary/history?{query}")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "bad_request"


def test_the_dashboard_asks_for_the_history_of_its_city(client, four_states):
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'data-url="/api/summary/history"' in html and "覆盖率变化" in html
    assert "最多显示最近 12 个" in html  # it says it stops at 12


def test_each_version_time_is_shown_in_the_services_time_zone(app, client, four_states):
    """The dashboard's history table shows ``time_shown``: GRIDMAP_TIMEZONE (Asia/Shanghai by default), as the
    history pages do, not the browser's zone; ``time`` stays UTC for scripts."""
    points = client.get("/api/summary/history").get_json()["points"]
    assert [p["time_shown"] for p in points][:2] == ["2026-03-04 16:00 (UTC+8)", "2026-03-03 16:00 (UTC+8)"]
    assert points[0]["time"] == day(4)
    app.config["TIMEZONE"] = "America/New_York"
    points = client.get("/api/summary/history").get_json()["points"]
    assert points[0]["time_shown"] == "2026-03-04 03:00 (UTC-5)"
