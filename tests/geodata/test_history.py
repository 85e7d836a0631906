"""geodata/history.py: the states of the data over time, and each one's covered share."""

from __future__ import annotations

from geodata.coverage import Params
from geodata.history import community_table, share, timeline
from geodata.store.base import Version
from geodata.validate import validate
from tests.factories import STEP, X0, Y0, center_row, centers, grid_row, grids, square


def version(layer, number, time):
    return Version(layer, number, time, "t", "", 1, f"{layer}{number}")


def test_the_timeline_starts_with_the_grids_and_keeps_the_last_states():
    found = {"grids": [version("grids", 1, "2026-01-02T00:00:00+00:00"), version("grids", 2, "2026-01-04T00:00:00+00:00")],
             "centers": [version("centers", 1, "2026-01-01T00:00:00+00:00"),
                         version("centers", 2, "2026-01-03T00:00:00+00:00")]}
    states, total = timeline(found)
    assert total == 3  # centres v1 alone is no state: no grids yet
    assert [s.numbers() for s in states] == [{"grids": 1, "centers": 1}, {"grids": 1, "centers": 2},
                                            {"grids": 2, "centers": 2}]
    states, total = timeline(found, limit=2)
    assert total == 3 and [s.time for s in states] == ["2026-01-03T00:00:00+00:00", "2026-01-04T00:00:00+00:00"]


def test_community_table_counts_covered_people_by_community():
    """A centre in the middle of g00 covers it whole (its corners are 736 m away); g10, five cells off, none."""
    layer = validate(grids([grid_row("g00"), grid_row("g10", community="白云社区", population=500)],
                           [square(0, 0), square(5, 0)]), "grids").data
    from shapely import Point

    centres = validate(centers([center_row("c1", "community")], [Point(X0 + STEP / 2, Y0 + STEP / 2)]), "centers").data
    table = community_table(layer, centres, Params())
    assert share(table) == {"population": 1500, "covered_population": 1000, "covered_share": 0.6667}
    assert share(table, {"community": "白云社区"}) == {"population": 500, "covered_population": 0, "covered_share": 0.0}
    assert share(table, {"city": "宁波市"})["population"] == 0  # no such column: no people
