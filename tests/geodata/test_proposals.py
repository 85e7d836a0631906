"""geodata/proposals.py: where proposed centres stand, and the change in their city, district and street."""

from __future__ import annotations

import pandas as pd

from geodata.proposals import effects, site_units
from geodata.validate import validate
from tests.factories import STEP, X0, Y0, grid_row, grids, square


def test_a_site_is_named_by_the_grid_it_stands_in():
    layer = validate(grids([grid_row("a"), grid_row("b", street="白云街道", community="白云社区")],
                           [square(0, 0), square(1, 0)]), "grids").data
    found = site_units(layer, [(X0 + STEP / 2, Y0 + STEP / 2), (X0 + 1.5 * STEP, Y0 + STEP / 2), (0.0, 0.0)])
    assert found == [{"district": "海曙区", "street": "月湖街道", "community": "青石社区"},
                     {"district": "海曙区", "street": "白云街道", "community": "白云社区"}, {}]


def summaries(rows):
    """Summaries of communities (district, street, community, population, covered) as the analysis gives them."""
    community = pd.DataFrame(rows, columns=["district", "street", "community", "population", "covered_population"])
    street = community.groupby(["district", "street"], as_index=False)[["population", "covered_population"]].sum()
    district = community.groupby(["district"], as_index=False)[["population", "covered_population"]].sum()
    total = community[["population", "covered_population"]].sum().to_frame().T
    return {"total": total, "city": total, "district": district, "street": street, "community": community}


def test_each_unit_once_its_after_is_its_before_plus_the_change_of_its_communities():
    before = summaries([("甲区", "一街", "a", 100, 50), ("甲区", "一街", "b", 100, 0), ("甲区", "二街", "c", 200, 0),
                        ("乙区", "三街", "d", 400, 100)])
    # only 甲区 was analysed again (a unit's what-if): b gains 100, c gains 50
    after = summaries([("甲区", "一街", "a", 100, 50), ("甲区", "一街", "b", 100, 100), ("甲区", "二街", "c", 200, 50)])
    sites = [{"district": "甲区", "street": "一街", "community": "b"}, {"district": "甲区", "street": "一街", "community": "a"},
             {"district": "甲区", "street": "二街", "community": "c"}]
    rows = effects(before, after, sites)
    shown = [(r["level"], r.get("district"), r.get("street"), r["before"]["covered_population"],
              r["after"]["covered_population"], r["after"]["covered_share"]) for r in rows]
    assert shown == [("city", None, None, 150, 300, 0.375), ("district", "甲区", None, 50, 200, 0.5),
                     ("street", "甲区", "一街", 50, 150, 0.75), ("street", "甲区", "二街", 0, 50, 0.25)]
