"""Several cities in one dataset: units are named by their name and every level above it.

The layout, worked out by hand. Two cities, 甲市 and 乙市, each with a district called 市辖区 and in
it a street called 中山街道 with a community called 东门社区 (甲市 also has 西门社区). The cities lie
100 km apart (the same UTM zone), their grids are 1 km squares. 甲市 has a district, a street and a
community centre in its 东门社区 grid, with radii wide enough (5 km) to cover all of 甲市 and nothing
of 乙市; 乙市 has no centre at all.

| city | community | grid | population | covered |
|---|---|---|---|---|
| 甲市 | 东门社区 | a1 | 100 | 100 |
| 甲市 | 西门社区 | a2 | 200 | 200 |
| 乙市 | 东门社区 | b1 | 400 | 0 |

Missing centres: 乙市's district, street and 东门社区 (their namesakes in 甲市 have one), and 甲市's
西门社区: 4. Service gaps: b1, whole: 1.
"""

import geopandas as gpd
import pytest
from shapely import Point, box

from geodata.coverage import Params, analyse
from geodata.order import adcodes, admin_order
from geodata.siting import recommend
from geodata.summaries import rows
from geodata.units import dissolve
from geodata.uploads import impact
from geodata.validate import validate
from tests.factories import center_row, grid_row

UTM = "EPSG:32651"
X0, Y0 = 360_000.0, 3_305_000.0  # about 121.55 E, 29.87 N
APART = 100_000.0  # 乙市 lies this far east of 甲市
WIDE = Params(radius_community_m=5000, radius_street_m=5000, radius_district_m=5000)
UNIT = {"district": "市辖区", "street": "中山街道"}


def square(x: float) -> object:
    return box(X0 + x, Y0, X0 + x + 1000, Y0 + 1000)


def layout(cities: bool = True) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    rows = [grid_row("a1", city="甲市", community="东门社区", population=100, **UNIT),
            grid_row("a2", city="甲市", community="西门社区", population=200, **UNIT),
            grid_row("b1", city="乙市", community="东门社区", population=400, **UNIT)]
    if not cities:
        for row in rows:
            del row["city"]
    grids = gpd.GeoDataFrame(rows, geometry=[square(0), square(1000), square(APART)], crs=UTM).to_crs(4326)
    centres = [center_row(f"c{level}", level, district="市辖区", street="中山街道" if level != "district" else None,
                          community="东门社区" if level == "community" else None,
                          **({"city": "甲市"} if cities else {}))
               for level in ("district", "street", "community")]
    centers = gpd.GeoDataFrame(centres, geometry=[Point(X0 + 500, Y0 + 500)] * 3, crs=UTM).to_crs(4326)
    return validate(grids, "grids").data, validate(centers, "centers").data


@pytest.fixture(scope="module")
def result():
    return analyse(*layout(), params=WIDE)


def records(frame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def counts(row: dict) -> tuple:
    return (row["grids"], row["population"], row["covered_population"], row["covered_share"],
            row["missing_center"], row["service_gap"])


def test_city_is_an_optional_field_of_grids_centres_and_districts():
    grids, centers = layout()
    assert grids["city"].tolist() == ["甲市", "甲市", "乙市"] and centers["city"].tolist() == ["甲市"] * 3
    report = validate(gpd.GeoDataFrame({"adcode": ["1"], "name": ["市辖区"], "city": ["甲市"]},
                                       geometry=[square(0)], crs=UTM).to_crs(4326), "districts")
    assert report.ok and report.warnings == ()  # city is a known field, not an extra one
    assert validate(gpd.GeoDataFrame(grids.assign(city=[None, "甲市", 3.5])), "grids").errors  # a string or null
    assert validate(gpd.GeoDataFrame(grids.assign(city=[None, "甲市", "乙市"])), "grids").ok


def test_missing_centres_are_found_for_units_whose_namesakes_elsewhere_have_one(result):
    missing = result.gaps[result.gaps["kind"] == "missing_center"]
    found = sorted((r["level"], r["city"], r["district"], r["street"], r["community"]) for r in records(missing))
    assert found == [("community", "乙市", "市辖区", "中山街道", "东门社区"),
                     ("community", "甲市", "市辖区", "中山街道", "西门社区"),
                     ("district", "乙市", "市辖区", None, None),
                     ("street", "乙市", "市辖区", "中山街道", None)]
    assert len(set(missing["gap_id"])) == 4  # ids apart too


def test_total_is_the_whole_and_city_one_row_a_city(result):
    total = records(result.summaries["total"])
    assert len(total) == 1 and "city" not in total[0]
    assert counts(total[0]) == (3, 700, 300, 0.4286, 4, 1)
    by_city = {r["city"]: counts(r) for r in records(result.summaries["city"])}
    assert by_city == {"甲市": (2, 300, 300, 1.0, 1, 0), "乙市": (1, 400, 0, 0.0, 3, 1)}
    assert result.summaries["city"]["city"].tolist() == ["甲市", "乙市"]  # the first grid's city first


@pytest.mark.parametrize("level, expected", [
    ("district", {("甲市", "市辖区"): (2, 300, 300, 1.0, 1, 0), ("乙市", "市辖区"): (1, 400, 0, 0.0, 3, 1)}),
    ("street", {("甲市", "市辖区", "中山街道"): (2, 300, 300, 1.0, 1, 0),
                ("乙市", "市辖区", "中山街道"): (1, 400, 0, 0.0, 2, 1)}),
    ("community", {("甲市", "市辖区", "中山街道", "东门社区"): (1, 100, 100, 1.0, 0, 0),
                   ("甲市", "市辖区", "中山街道", "西门社区"): (1, 200, 200, 1.0, 1, 0),
                   ("乙市", "市辖区", "中山街道", "东门社区"): (1, 400, 0, 0.0, 1, 1)}),
])
def test_units_of_the_same_name_in_two_cities_are_counted_apart(result, level, expected):
    keys = ["city", "district", "street", "community"][:{"district": 2, "street": 3, "community": 4}[level]]
    got = {tuple(r[k] for k in keys): counts(r) for r in records(result.summaries[level])}
    assert got == expected


def test_summary_rows_inside_a_city(result):
    assert rows(result, "community", {"city": "乙市"})["community"].tolist() == ["东门社区"]
    assert len(rows(result, "community", {"district": "市辖区"})) == 3  # the name alone: both cities'


def test_streets_and_communities_collections_keep_namesakes_apart(result):
    streets = dissolve(result.coverage, "street", result.summaries["street"])
    assert streets["unit_id"].tolist() == ["甲市.市辖区.中山街道", "乙市.市辖区.中山街道"]
    assert streets["population"].tolist() == [300, 400] and streets["grids"].tolist() == [2, 1]
    communities = dissolve(result.coverage, "community", result.summaries["community"])
    assert communities["unit_id"].tolist() == ["甲市.市辖区.中山街道.东门社区", "甲市.市辖区.中山街道.西门社区",
                                               "乙市.市辖区.中山街道.东门社区"]
    assert communities["city"].tolist() == ["甲市", "甲市", "乙市"]
    assert communities.geometry.to_crs(UTM).area.round().tolist() == [1e6, 1e6, 1e6]


def test_a_dataset_without_cities_has_one_city_row_equal_to_the_total():
    result = analyse(*layout(cities=False), params=WIDE)
    assert records(result.summaries["city"]) == records(result.summaries["total"])
    assert len(result.summaries["city"]) == 1 and list(result.summaries["city"].columns[:2]) == ["grids",
                                                                                              "population"]
    # and units keyed as before: one district, one street, two communities (东门社区 has a centre)
    assert result.summaries["district"].columns[0] == "district" and len(result.summaries["district"]) == 1
    assert len(result.summaries["community"]) == 2
    assert "city" not in result.gaps.columns
    assert sorted(result.gaps[result.gaps["kind"] == "missing_center"]["community"].dropna()) == ["西门社区"]
    assert dissolve(result.coverage, "street")["unit_id"].tolist() == ["市辖区.中山街道"]


def test_districts_of_the_same_name_are_matched_by_city():
    """Each city's 市辖区 boundary is its grids' land and 500 m more to the north: one tiling gap each,
    in its own city (matched by name alone, one city's grids would be measured against the other's land)."""
    grids, centers = layout()
    districts = gpd.GeoDataFrame(
        {"adcode": ["330101", "330201"], "name": ["市辖区", "市辖区"], "city": ["甲市", "乙市"]},
        geometry=[box(X0, Y0, X0 + 2000, Y0 + 1500), box(X0 + APART, Y0, X0 + APART + 1000, Y0 + 1500)],
        crs=UTM).to_crs(4326)
    result = analyse(grids, centers, districts, params=WIDE)
    tiling = records(result.gaps[result.gaps["kind"] == "tiling_gap"])
    assert sorted((r["city"], round(r["area_m2"], -3)) for r in tiling) == [("乙市", 500_000.0), ("甲市", 1_000_000.0)]
    missing = result.gaps[(result.gaps["kind"] == "missing_center") & (result.gaps["level"] == "district")]
    assert round(missing.to_crs(UTM).area.iloc[0], -3) == 1_500_000.0  # 乙市's own boundary


def test_administrative_order_follows_the_cities_codes():
    grids = gpd.GeoDataFrame({"grid_id": ["1", "2"], "city": ["乙市", "甲市"], "district": ["市辖区", "市辖区"]})
    layer = gpd.GeoDataFrame({"name": ["市辖区", "市辖区"], "city": ["甲市", "乙市"], "adcode": ["330101", "330201"]})
    frame = gpd.GeoDataFrame({"city": ["乙市", "甲市"], "district": ["市辖区", "市辖区"]})
    assert admin_order(frame, grids, adcodes(layer))["city"].tolist() == ["甲市", "乙市"]
    assert admin_order(frame, grids, {})["city"].tolist() == ["乙市", "甲市"]  # without codes: the first grid's


def test_siting_inside_one_city_of_namesake_districts():
    grids, centers = layout()
    inside = recommend(grids, centers, "community", k=1, params=WIDE, unit={"city": "乙市", "district": "市辖区"})
    assert inside.population == 400 and inside.sites["city"].tolist() == ["乙市"]
    assert recommend(grids, centers, "community", k=1, params=WIDE, unit={"district": "市辖区"}).population == 700


def test_an_upload_that_empties_one_citys_district_says_so():
    grids, _ = layout()
    found = impact(grids, grids.iloc[:2], "grids")  # 乙市's only grid goes; 甲市's 市辖区 keeps its two
    assert found.emptied == ["乙市 / 市辖区"] and found.needs_confirmation
