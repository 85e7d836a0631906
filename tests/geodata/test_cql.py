"""CQL2 filters and sorting (geodata/cql.py), run where the data is: as SQL in each store engine (SQLite,
PostGIS) and as a mask on frames (derived collections).  Every expression's answer is worked out by hand
below, and the three evaluations must give exactly that."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geodata import cql
from geodata.errors import BadRequest
from geodata.query import FeatureSet, Query
from geodata.schema import LAYERS
from geodata.store import open_store
from tests.factories import grid_row, grids
from tests.postgres import opened_at

GRIDS = LAYERS["grids"]
# (grid_id, name, district, population, instructor); squares g{col}{row} of tests/factories' 3 × 2 block:
# x from 121.50 + 0.01·col, y from 29.80 + 0.01·row, 0.01° a side
ROWS = [("g00", "Alpha 网格", "海曙区", 100, "王"), ("g10", "alpha_2", "江北区", 250, "李"),
        ("g20", "Beta 100%", "海曙区", None, "张"), ("g01", "gamma", "鄞州区", 1000, "赵"),
        ("g11", "BETA", "江北区", 250, "钱"), ("g21", "delta", "海曙区", 5000, None)]

CASES = [
    ("district = '海曙区'", {"g00", "g20", "g21"}),
    ("district <> '海曙区'", {"g10", "g01", "g11"}),
    ("'海曙区' = district", {"g00", "g20", "g21"}),
    ("population > 250", {"g01", "g21"}),
    ("population >= 250", {"g10", "g11", "g01", "g21"}),
    ("population < 250", {"g00"}),
    ("250 > population", {"g00"}),
    ("NOT (population < 250)", {"g10", "g01", "g11", "g21"}),  # unknown for the null population stays unknown
    ("population IS NULL", {"g20"}),
    ("population IS NOT NULL", {"g00", "g10", "g01", "g11", "g21"}),
    ("instructor IS NULL", {"g21"}),
    ("name LIKE 'alpha%'", {"g10"}),  # LIKE is case-sensitive
    (r"name LIKE '%100\%'", {"g20"}),  # an escaped % is itself
    (r"name LIKE 'alpha\_2'", {"g10"}),
    ("name LIKE '_ETA'", {"g11"}),
    ("name NOT LIKE '%a%'", {"g11"}),
    ("CASEI(name) LIKE casei('alpha%')", {"g00", "g10"}),
    ("CASEI(name) = casei('beta')", {"g11"}),
    ("CASEI(name) IN (casei('GAMMA'), casei('Delta'))", {"g01", "g21"}),
    ("name IN ('gamma', 'delta', 'nope')", {"g01", "g21"}),
    ("population IN (250, 5000)", {"g10", "g11", "g21"}),
    ("population NOT IN (250)", {"g00", "g01", "g21"}),
    ("population BETWEEN 250 AND 1000", {"g10", "g11", "g01"}),
    ("population NOT BETWEEN 250 AND 1000", {"g00", "g21"}),
    ("district = '海曙区' AND population > 100", {"g21"}),
    ("district = '江北区' OR population > 2000", {"g10", "g11", "g21"}),
    ("(district = '江北区') AND (NOT (name = 'BETA'))", {"g10"}),  # as GDAL writes it
    ("S_INTERSECTS(geometry, POINT(121.515 29.815))", {"g11"}),
    ("S_INTERSECTS(geometry, LINESTRING(121.505 29.805, 121.525 29.805))", {"g00", "g10", "g20"}),
    ("S_INTERSECTS(geometry, POLYGON((121.501 29.805, 121.505 29.805, 121.505 29.815, 121.501 29.815, "
     "121.501 29.805)))", {"g00", "g01"}),
    ("S_INTERSECTS(geometry, BBOX(121.515, 29.805, 121.516, 29.806))", {"g10"}),
    ("S_INTERSECTS(geometry, ENVELOPE(121.515, 29.805, 121.516, 29.806))", {"g10"}),
    ("NOT S_INTERSECTS(geometry, BBOX(121.501, 29.801, 121.509, 29.819))", {"g10", "g20", "g11", "g21"}),
    ("S_INTERSECTS(geometry, POINT(121.515 29.815)) OR name = 'gamma'", {"g11", "g01"}),
    ("S_INTERSECTS(geometry, BBOX(121.50, 29.80, 121.53, 29.809)) AND population > 150", {"g10"}),
]
JSON_CASES = [
    ({"op": "and", "args": [{"op": "=", "args": [{"property": "district"}, "海曙区"]},
                            {"op": "s_intersects", "args": [{"property": "geometry"},
                                                            {"bbox": [121.50, 29.80, 121.53, 29.809]}]}]},
     {"g00", "g20"}),
    ({"op": "like", "args": [{"op": "casei", "args": [{"property": "name"}]}, {"op": "casei", "args": ["beta%"]}]},
     {"g20", "g11"}),
    ({"op": "in", "args": [{"property": "population"}, [100, 1000]]}, {"g00", "g01"}),
]


def layer_frame():
    return grids([grid_row(key, name=name, district=district, population=population, instructor=instructor)
                  for key, name, district, population, instructor in ROWS])


@pytest.fixture
def store(location):
    opened = opened_at(location, open_store)
    store = next(opened)()
    store.write("grids", layer_frame(), author="tester")
    yield store
    next(opened, None)


def parse(text: str, lang: str = "cql2-text") -> cql.Filter:
    return cql.parse(text, lang, None, GRIDS, GRIDS.field_names)


def keys(texts) -> list[str]:
    return [json.loads(t)["id"] for t in texts]


def evaluations(store, flt: cql.Filter) -> dict[str, list[str]]:
    """The filter's features in the store (SQL) and on the layer's frame (vectorised)."""
    found = FeatureSet(store.read("grids"), GRIDS)
    return {"store": keys(store.query("grids", where=flt).features),
            "frame": [found.gdf["grid_id"].iloc[i] for i in found.select(Query(where=flt))]}


@pytest.mark.parametrize("text, expected", CASES, ids=[c[0] for c in CASES])
def test_cql2_text_selects_in_the_store_and_on_frames(store, text, expected):
    for where, got in evaluations(store, parse(text)).items():
        assert got == sorted(expected), where  # in key order
    page = store.query("grids", where=parse(text), limit=1)
    assert page.number_matched == len(expected) and len(page.features) == min(1, len(expected))


@pytest.mark.parametrize("tree, expected", JSON_CASES, ids=[json.dumps(c[0])[:40] for c in JSON_CASES])
def test_cql2_json_selects_the_same(store, tree, expected):
    for where, got in evaluations(store, parse(json.dumps(tree), "cql2-json")).items():
        assert got == sorted(expected), where


def test_cql_text_is_cql2_text(store):
    """GDAL 3.6's OAPIF driver sends filter-lang=cql-text."""
    assert evaluations(store, parse("population > 250", "cql-text"))["store"] == ["g01", "g21"]


@pytest.mark.parametrize("text, expected", [
    ("name ILIKE 'alpha%'", ["g00", "g10"]),  # what GDAL sends for OGR SQL's ILIKE: CASEI on both sides
    ("(name NOT ILIKE '%L%') AND district <> 'x ILIKE y'", ["g01", "g11", "g20"]),  # text inside quotes is left alone
])
def test_gdal_ilike_in_cql_text_is_case_insensitive_like(store, text, expected):
    assert evaluations(store, parse(text, "cql-text"))["store"] == expected


def test_ilike_is_not_cql2():
    with pytest.raises(BadRequest):
        parse("name ILIKE 'alpha%'", "cql2-text")


def test_a_filter_and_bbox_and_property_filters_combine(store):
    page = store.query("grids", bbox=(121.50, 29.80, 121.53, 29.809), filters=[("district", "海曙区")],
                       where=parse("population > 0"))
    assert keys(page.features) == ["g00"] and page.number_matched == 1


@pytest.mark.parametrize("sortby, expected", [
    ("+population", ["g20", "g00", "g10", "g11", "g01", "g21"]),  # the null first; ties in key order
    ("-population", ["g21", "g01", "g10", "g11", "g00", "g20"]),  # ... and last when descending
    ("district,-name", ["g10", "g11", "g21", "g20", "g00", "g01"]),  # text by code point: 江 < 海 < 鄞
    (" population,grid_id", ["g20", "g00", "g10", "g11", "g01", "g21"]),  # '+' unencoded arrives as a space
])
def test_sortby_orders_in_the_store_and_on_frames(store, sortby, expected):
    keys_ = cql.parse_sortby(sortby, GRIDS, GRIDS.field_names)
    assert keys(store.query("grids", sortby=keys_).features) == expected
    assert keys(store.query("grids", sortby=keys_, limit=2, offset=2).features) == expected[2:4]
    found = FeatureSet(store.read("grids"), GRIDS)
    assert [found.gdf["grid_id"].iloc[i] for i in found.select(Query(sortby=keys_))] == expected
    filtered = keys(store.query("grids", sortby=keys_, where=parse("district <> '鄞州区'")).features)
    assert filtered == [k for k in expected if k != "g01"]


@pytest.mark.parametrize("text, lang, says", [
    ("name = ", "cql2-text", "at character 8"),
    ("population >> 3", "cql2-text", "at character"),
    ("nope = 1", "cql2-text", "unknown property 'nope'"),
    ("population = 'many'", "cql2-text", "'population' is a number"),
    ("name = 3", "cql2-text", "'name' is text"),
    ("name > population", "cql2-text", "two properties"),
    ("population LIKE '1%'", "cql2-text", "LIKE matches text"),
    ("S_INTERSECTS(name, POINT(1 2))", "cql2-text", "S_INTERSECTS compares the features' 'geometry'"),
    ("S_INTERSECTS(geometry, BBOX(3, 2, 1, 4))", "cql2-text", "minimum above its maximum"),
    ("T_INTERSECTS(name, INTERVAL('2020-01-01', '..'))", "cql2-text", "does not support"),
    ("name = 'a'", "cql3", "'filter-lang' must be one of"),
    ('{"op": "=", "args": [{"property": "name"}]', "cql2-json", "not valid cql2-json"),
    ('{"op": "=", "args": [{"property": "name"}]}', "cql2-json", "takes 2 argument"),
    ("(" * 1900 + "name = 'a'" + ")" * 1900, "cql2-text", "nests 1900 deep"),  # the parser would crash
    ("NOT " * 1000 + "name = 'a'", "cql2-text", "nests 1000 deep"),
    ("[" * 2000 + "]" * 2000, "cql2-json", "nests"),
])
def test_a_bad_filter_is_a_400_that_says_where(text, lang, says):
    with pytest.raises(BadRequest) as caught:
        cql.parse(text, lang, None, GRIDS, GRIDS.field_names)
    assert says in caught.value.message


# The point inside g11 (121.515, 29.815) and a box inside g10 (121.5151–121.5159, 29.8051–29.8059), written in
# other CRSs (PROJ's numbers; 121.515°E is 1.515° east of the zone's 120°E meridian: ~146 km east of 500 km)
IN_G11_4490 = "POINT(29.815 121.515)"  # CGCS2000: latitude first
IN_G11_4549 = "POINT(3300568.84 646455.77)"  # Gauss–Krüger CM 120°E: northing first
IN_G10_3857 = "BBOX(13527000, 3478530, 13527080, 3478620)"  # Web Mercator: x first


@pytest.mark.parametrize("crs, literal, expected", [
    ("EPSG:4490", IN_G11_4490, ["g11"]),
    ("http://www.opengis.net/def/crs/EPSG/0/4549", IN_G11_4549, ["g11"]),
    ("EPSG:3857", IN_G10_3857, ["g10"]),
    ("OGC:CRS84", "POINT(121.515 29.815)", ["g11"]),
])
def test_filter_crs_reads_the_geometry_in_that_crs_and_axis_order(store, crs, literal, expected):
    flt = cql.parse(f"S_INTERSECTS(geometry, {literal})", None, crs, GRIDS, GRIDS.field_names)
    assert evaluations(store, flt) == {"store": expected, "frame": expected}


def test_a_filter_crs_not_served_is_a_400():
    with pytest.raises(BadRequest, match="filter-crs"):
        cql.parse("name = 'a'", None, "http://www.opengis.net/def/crs/EPSG/0/32651", GRIDS, GRIDS.field_names)


def test_sortby_and_properties_name_known_fields_only():
    with pytest.raises(BadRequest, match="cannot sort by 'nope'"):
        cql.parse_sortby("+name,-nope", GRIDS, GRIDS.field_names)
    with pytest.raises(BadRequest, match="unknown property 'nope'"):
        cql.parse_properties("name,nope", GRIDS.field_names)


TOKENS = st.sampled_from(["name", "population", "geometry", "district", "=", "<>", "<", ">=", "AND", "OR", "NOT",
                          "LIKE", "IN", "BETWEEN", "IS", "NULL", "CASEI", "S_INTERSECTS", "POINT", "BBOX", "(", ")",
                          ",", "'海曙区'", "'a%'", "1", "-2.5", "1e400", "TRUE", "\"name\"", "[", "]", "{", "}"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(TOKENS, max_size=12).map(" ".join), st.text(max_size=60)),
       st.sampled_from(["cql2-text", "cql2-json"]))
def test_any_filter_text_is_parsed_or_a_400(text, lang):
    """Whatever a client sends: a checked filter or a BadRequest, never another error."""
    try:
        flt = cql.parse(text, lang, None, GRIDS, GRIDS.field_names)
    except BadRequest:
        return
    cql.sqlite_where(flt), cql.postgis_where(flt)
    cql.frame_mask(flt, layer_frame())
