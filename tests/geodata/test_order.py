"""geodata.order: administrative order of units."""

import pandas as pd

from hypothesis import given
from hypothesis import strategies as st

from geodata.order import adcodes, admin_order, natural_key, natural_order


def test_grid_ids_compare_their_numbers():
    assert sorted(["g10", "g2", "g1"], key=natural_key) == ["g1", "g2", "g10"]


@given(st.lists(st.one_of(st.none(), st.text(alphabet="ab-_.019 中", max_size=8)), max_size=30))
def test_natural_order_is_the_order_of_natural_keys(values):
    assert natural_order(values).tolist() == sorted(range(len(values)), key=lambda i: natural_key(values[i]))


def test_districts_by_adcode_then_the_rest_by_their_first_grid_then_name():
    grids = pd.DataFrame({"grid_id": ["b-2", "a-10", "a-9", "x-1"], "district": ["乙区", "甲区", "甲区", "丙区"]})
    layer = pd.DataFrame({"name": ["余姚市", "海曙区"], "adcode": ["330281", "330203"]})
    frame = pd.DataFrame({"district": ["甲区", "余姚市", "无网格区", "乙区", "海曙区", "丙区"]})
    ordered = admin_order(frame, grids, adcodes(layer))["district"].tolist()
    assert ordered == ["海曙区", "余姚市", "甲区", "乙区", "丙区", "无网格区"]


def test_streets_stay_inside_their_district():
    grids = pd.DataFrame({"grid_id": ["1-02-1", "1-01-1", "2-01-1"],
                          "district": ["一区", "一区", "二区"], "street": ["乙街道", "甲街道", "丙街道"]})
    frame = pd.DataFrame({"district": ["二区", "一区", "一区"], "street": ["丙街道", "乙街道", "甲街道"]})
    assert admin_order(frame, grids, {"一区": "2", "二区": "1"})["street"].tolist() == ["丙街道", "甲街道", "乙街道"]
