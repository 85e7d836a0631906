"""geodata/units.py: a unit's names up to its city (what a unit's map is titled by)."""

from __future__ import annotations

import pandas as pd

from geodata.units import unit_names


def grids(rows):
    return pd.DataFrame(rows, columns=["city", "district", "street", "community"])


def test_a_district_is_named_with_its_city():
    frame = grids([("宁波市", "海曙区", "月湖街道", "青石社区"), ("宁波市", "海曙区", "白云街道", "白云社区")])
    assert unit_names(frame, {"district": "海曙区"}) == ["海曙区", "宁波市"]


def test_a_community_is_named_with_every_level_above_it():
    frame = grids([("宁波市", "海曙区", "月湖街道", "青石社区")])
    assert unit_names(frame, {"community": "青石社区"}) == ["青石社区", "月湖街道", "海曙区", "宁波市"]
    assert unit_names(frame, {"district": "海曙区", "street": "月湖街道"}) == ["月湖街道", "海曙区", "宁波市"]


def test_a_level_its_grids_do_not_share_is_left_out():
    frame = grids([("宁波市", "市辖区", "a", "x"), ("温州市", "市辖区", "b", "y")])
    assert unit_names(frame, {"district": "市辖区"}) == ["市辖区"]
    assert unit_names(frame.drop(columns="city"), {"district": "市辖区", "street": "a"}) == ["a", "市辖区"]
