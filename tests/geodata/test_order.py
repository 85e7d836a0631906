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


ids = st.lists(st.sampled_from(["0", "1", "7", "9", "-", "c", "G"]), max_size=12).map("".join)


@given(st.lists(st.one_of(ids, st.none(), st.text(alphabet="aZ-09 中", max_size=6),
                          st.integers(0, 10**20).map(str)), max_size=40))
def test_natural_order_of_id_like_values_with_odd_ones(values):
    """Codes of different shapes, digit runs with leading zeros or too long for an integer."""
    assert natural_order(values).tolist() == sorted(range(len(values)), key=lambda i: natural_key(values[i]))


def test_natural_order_of_many_grid_ids():
    values = [f"3302{d:02d}-{s:02d}-{c:03d}-{g:02d}" + ("" if k == 0 else f"-c{k}")
              for k in (3, 0, 11) for d in (3, 81, 5) for s in (2, 10) for c in (1, 100, 9) for g in (12, 1)]
    values[5] = values[5].replace("-0", "-", 1)  # a run without its leading zero ties with the padded one
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


names = st.sampled_from(["甲", "乙", "丙", "a2", "a02", "a10"])  # a2, a02: equal keys, two units


@given(st.lists(st.tuples(names, names, names, st.integers(0, 30)), min_size=1, max_size=25),
       st.lists(st.tuples(names, names, names), max_size=8),
       st.dictionaries(names, st.sampled_from(["330203", "330205", "33021"]), max_size=3))
def test_units_are_ordered_as_by_the_tuple_of_their_levels_keys(rows, others, codes):
    """The order sorts each level's distinct units once: the same as sorting rows by every level's key
    (units without grids tie on their own level and are told apart by the levels below)."""
    import math

    from geodata.order import natural_key

    grids = pd.DataFrame({"grid_id": [f"g-{n}" for *_, n in rows], "district": [r[0] for r in rows],
                          "street": [r[1] for r in rows], "community": [r[2] for r in rows]})
    frame = pd.concat([grids[["district", "street", "community"]].iloc[::-1],
                       pd.DataFrame(others, columns=["district", "street", "community"], dtype=object)
                       .map(lambda name: "无" + name)], ignore_index=True)
    ranks = natural_order(grids["grid_id"].tolist())
    first = {}
    for rank, i in enumerate(ranks):
        unit = tuple(grids.iloc[i][["district", "street", "community"]])
        for depth in (1, 2, 3):
            first.setdefault(unit[:depth], rank)

    def level_key(unit):
        code = codes.get(unit[-1]) if len(unit) == 1 else None
        if code is not None:
            return 0, natural_key(code), 0, natural_key(unit[-1])
        return 1, (), first.get(unit, math.inf), natural_key(unit[-1])

    units = [tuple(u) for u in frame.to_numpy()]
    expected = sorted(range(len(units)), key=lambda i: tuple(level_key(units[i][:d]) for d in (1, 2, 3)))
    assert admin_order(frame, grids, codes).index.tolist() == expected
