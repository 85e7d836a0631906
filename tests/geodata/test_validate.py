import geopandas as gpd
import pytest
from shapely import LineString, Point, Polygon, box

from geodata.validate import validate
from tests.factories import center_row, centers, grid_row, grids, six_grids


def messages(problems, field="*"):
    return [p.message for p in problems if field == "*" or p.field == field]


def test_a_clean_layer_has_no_problems_and_keeps_schema_order():
    report = validate(six_grids(), "grids")
    assert report.ok and report.errors == () and report.warnings == ()
    assert list(report.data.columns[:13]) == ["grid_id", "name", "grid_type", "city", "district", "street",
                                              "community", "population", "households", "party_members", "grid_workers",
                                              "instructor", "party_branch"]
    assert str(report.data["population"].dtype) == "Int64"
    assert report.data["population"].tolist() == [100, 200, 300, 400, 500, 600]


def test_items_name_index_key_field_and_message():
    gdf = grids([grid_row("a"), grid_row("b", grid_type="park")])
    [problem] = validate(gdf, "grids").errors
    assert problem.to_dict() == {"index": 1, "key": "b", "field": "grid_type",
                                 "message": "'park' is not one of residential, industrial_park, "
                                            "commercial_market, office_building, other"}


def test_missing_required_column_is_one_layer_level_error():
    gdf = six_grids().drop(columns=["community"])
    report = validate(gdf, "grids")
    assert [(p.index, p.field) for p in report.errors] == [(None, "community")]
    assert report.data is None


def test_empty_required_values_are_errors_per_feature():
    gdf = grids([grid_row("a", name="  "), grid_row("b", street=None), grid_row("c")])
    report = validate(gdf, "grids")
    assert [(p.index, p.key, p.field) for p in report.errors] == [(0, "a", "name"), (1, "b", "street")]


def test_missing_and_duplicate_keys():
    gdf = grids([grid_row("a"), grid_row(None), grid_row("a"), grid_row("c"), grid_row("a")])
    report = validate(gdf, "grids")
    assert [(p.index, p.field) for p in report.errors] == [(1, "grid_id"), (2, "grid_id"), (4, "grid_id")]
    assert "duplicate grid_id 'a' (first used by feature 1)" in messages(report.errors)  # people count from 1
    assert "grid_id 'a' 重复（第 1 个要素已使用）" in messages(validate(gdf, "grids", "zh").errors)


def test_keys_must_use_the_safe_alphabet():
    gdf = grids([grid_row("ok-1.2_x"), grid_row("has space"), grid_row("网格1"), grid_row("x" * 65)])
    report = validate(gdf, "grids")
    assert [p.index for p in report.errors] == [1, 2, 3]


def test_integers_refuse_text_fractions_and_negatives():
    gdf = grids([grid_row("a", population="many"), grid_row("b", households=2.5),
                 grid_row("c", party_members=-1), grid_row("d", grid_workers=3.0), grid_row("e", population=None)])
    report = validate(gdf, "grids")
    assert [(p.index, p.field) for p in report.errors] == [(0, "population"), (1, "households"), (2, "party_members")]
    assert "'party_members' must be ≥ 0, not -1" in messages(report.errors)


def test_negative_counts_in_a_numeric_column():
    gdf = grids([grid_row("a", grid_workers=-2), grid_row("b", grid_workers=1)])
    [problem] = validate(gdf, "grids").errors
    assert (problem.index, problem.field, problem.message) == (0, "grid_workers", "'grid_workers' must be ≥ 0, not -2")


def test_text_fields_accept_numbers_as_codes_but_not_structures():
    gdf = grids([grid_row("a", community=12), grid_row("b", community={"x": 1})])
    report = validate(gdf, "grids")
    assert [(p.index, p.field) for p in report.errors] == [(1, "community")]


def test_center_street_and_community_required_by_level():
    gdf = centers([center_row("d1", "district"), center_row("s1", "street", street=None),
                   center_row("c1", "community", community=None), center_row("c2", "community")])
    report = validate(gdf, "centers")
    assert [(p.key, p.field) for p in report.errors] == [("s1", "street"), ("c1", "community")]
    assert "'street' is required when level is 'street'" in messages(report.errors)


def test_negative_floor_area_is_an_error():
    gdf = centers([center_row("c1", "community", floor_area_m2=-5.0)])
    [problem] = validate(gdf, "centers").errors
    assert problem.field == "floor_area_m2"


def test_missing_and_empty_geometry():
    gdf = grids([grid_row("a"), grid_row("b"), grid_row("c")], [None, Polygon(), box(121.5, 29.8, 121.6, 29.9)])
    report = validate(gdf, "grids")
    assert [(p.index, p.field, p.message) for p in report.errors] == [
        (0, None, "geometry is missing or empty"), (1, None, "geometry is missing or empty")]


def test_wrong_geometry_type():
    gdf = grids([grid_row("a"), grid_row("b")], [Point(121.5, 29.8), LineString([(121.5, 29.8), (121.6, 29.9)])])
    report = validate(gdf, "grids")
    assert messages(report.errors) == ["geometry is a Point, expected Polygon or MultiPolygon",
                                       "geometry is a LineString, expected Polygon or MultiPolygon"]
    point_layer = centers([center_row("c1", "community")], [box(121.5, 29.8, 121.6, 29.9)])
    assert messages(validate(point_layer, "centers").errors) == ["geometry is a Polygon, expected Point"]


def test_self_intersecting_polygon_is_repaired_with_a_warning():
    bowtie = Polygon([(121.5, 29.8), (121.6, 29.9), (121.6, 29.8), (121.5, 29.9), (121.5, 29.8)])
    report = validate(grids([grid_row("a")], [bowtie]), "grids")
    assert report.ok
    [warning] = report.warnings
    assert warning.index == 0 and warning.message.startswith("invalid geometry repaired: Self-intersection")
    repaired = report.data.geometry.iloc[0]
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon"
    assert repaired.area == pytest.approx(0.005)  # two triangles of 0.1 × 0.05 / 2 each


def test_collapsed_polygon_cannot_be_repaired():
    flat = Polygon([(121.0, 29.0), (122.0, 30.0), (121.5, 29.5), (121.0, 29.0)])  # exactly collinear
    report = validate(grids([grid_row("a")], [flat]), "grids")
    assert [p.message.split(":")[0] for p in report.errors] == ["invalid geometry that cannot be repaired"]


def test_projected_coordinates_without_crs_are_refused():
    gdf = grids([grid_row("a")], [box(500000, 3300000, 501000, 3301000)]).set_crs(None, allow_override=True)
    [problem] = validate(gdf, "grids").errors
    assert "not WGS84 lon/lat" in problem.message


def test_a_projected_crs_is_refused():
    gdf = six_grids().to_crs(32651)
    report = validate(gdf, "grids")
    assert any("EPSG:32651" in m for m in messages(report.errors))


def test_unknown_fields_are_warnings_and_kept():
    gdf = six_grids().assign(remark="note", 备注="x")
    report = validate(gdf, "grids")
    assert report.ok
    assert [(p.field, p.index) for p in report.warnings] == [("remark", None), ("备注", None)]
    assert report.data["remark"].tolist() == ["note"] * 6


def test_absent_optional_fields_become_nulls():
    gdf = six_grids().drop(columns=["population", "instructor"])
    report = validate(gdf, "grids")
    assert report.ok
    assert report.data["population"].isna().all() and report.data["instructor"].isna().all()


def test_report_lists_are_bounded_for_huge_bad_files(monkeypatch):
    import geodata.validate as v

    monkeypatch.setattr(v, "MAX_PROBLEMS_PER_FIELD", 3)
    gdf = grids([grid_row(f"g{i}", grid_type="bad") for i in range(6)],
                [box(121.5, 29.8, 121.6, 29.9)] * 6)
    report = validate(gdf, "grids")
    assert len(report.errors) == 4
    assert report.errors[-1].message == "more problems in 'grid_type' not listed"


def test_districts_layer():
    gdf = gpd.GeoDataFrame({"adcode": ["330203", "330203"], "name": ["海曙区", None]},
                           geometry=[box(121.5, 29.8, 121.6, 29.9)] * 2, crs=4326)
    report = validate(gdf, "districts")
    assert sorted((p.index, p.field) for p in report.errors) == [(1, "adcode"), (1, "name")]


def test_control_characters_in_any_text_are_errors_naming_feature_and_field():
    gdf = grids([grid_row("a", name="rt\x00x"), grid_row("b", instructor="王\x1b[31m芳"),
                 grid_row("c", party_branch="第一\x85支部"), grid_row("d", name="two\tlines\r\nok")])
    gdf["note"] = [None, None, None, "\x07"]  # an unknown field is checked too
    report = validate(gdf, "grids")
    assert [p.to_dict() for p in report.errors] == [
        {"index": 0, "key": "a", "field": "name", "message": "'name' has the control character U+0000 at character 3: remove it"},
        {"index": 1, "key": "b", "field": "instructor",
         "message": "'instructor' has the control character U+001B at character 2: remove it"},
        {"index": 2, "key": "c", "field": "party_branch",
         "message": "'party_branch' has the control character U+0085 at character 3: remove it"},
        {"index": 3, "key": "d", "field": "note", "message": "'note' has the control character U+0007 at character 1: remove it"},
    ]
    assert validate(gdf.iloc[3:].drop(columns="note"), "grids").ok  # tab, CR and LF are text
    assert "控制字符 U+0000" in validate(gdf.iloc[:1], "grids", lang="zh").errors[0].message


def test_features_without_a_city_among_ones_that_name_it_are_warned_of():
    from tests.factories import grid_row, grids

    layer = grids([grid_row("g00", city="宁波市"), grid_row("g10"), grid_row("g20", city="宁波市")])
    report = validate(layer, "grids")
    assert report.ok
    assert [(w.index, w.key, w.field) for w in report.warnings] == [(1, "g10", "city")]
    assert "city of its own" in report.warnings[0].message
    for uniform in ([None, None, None], ["宁波市"] * 3):  # none or all: nothing to say
        layer["city"] = uniform
        assert not [w for w in validate(layer, "grids").warnings if w.field == "city"]
