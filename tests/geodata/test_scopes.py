"""Area-scoped editors: scopes parsed, and features inside or outside them by fields and geometry."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely import box

from geodata.errors import BadRequest, Forbidden
from geodata.scopes import Scope, check, outside, parse, whole_layer
from geodata.store import open_store
from geodata.validate import validate
from tests.factories import X0, Y0, STEP, grid_row, grids, six_grids, square

YUEHU = "district=海曙区,street=月湖街道"  # six_grids' left column: g00, g01
HAISHU = gpd.GeoDataFrame({"adcode": ["330203"], "name": ["海曙区"]},
                          geometry=[box(X0, Y0, X0 + 3 * STEP, Y0 + 2 * STEP)], crs="EPSG:4326")


def test_a_scope_names_a_unit_with_its_parents():
    assert parse("district=海曙区").keys == (("district", "海曙区"),)
    assert parse(" district = 海曙区 , street=月湖街道").keys == (("district", "海曙区"), ("street", "月湖街道"))
    assert str(parse("city=宁波市,district=海曙区")) == "city=宁波市,district=海曙区"


@pytest.mark.parametrize("text", ["海曙区", "district=", "town=x", "street=月湖街道", "street=a,district=b",
                                  "district=a,district=b", "district=a,community=c"])
def test_a_bad_scope_is_refused_saying_how_to_write_one(text):
    with pytest.raises(BadRequest, match="scope"):
        parse(text)


def test_inside_by_fields_and_by_the_grids_of_the_street():
    layer = six_grids()
    moved = grids([grid_row("g00", street="月湖街道", community="青石社区")], [square(1, 0)])  # into 白云街道's area
    assert outside(layer, [parse(YUEHU)], layer, None, "grid_id") == ["g10", "g20", "g11", "g21"]  # in the layer's order
    assert outside(moved, [parse(YUEHU)], layer, None, "grid_id") == ["g00"]  # its fields say Yuehu, its shape not
    half = grids([grid_row("g00", street="月湖街道")], [box(X0, Y0, X0 + STEP, Y0 + STEP / 2)])
    assert outside(half, [parse(YUEHU)], layer, None, "grid_id") == []


def test_a_district_scope_is_the_districts_boundary():
    layer = six_grids()
    beyond = grids([grid_row("g30")], [square(3, 0)])  # east of the district's boundary
    assert outside(layer, [parse("district=海曙区")], layer, HAISHU, "grid_id") == []
    assert outside(beyond, [parse("district=海曙区")], layer, HAISHU, "grid_id") == ["g30"]
    assert outside(layer, [parse("district=江北区")], layer, HAISHU, "grid_id") == list(layer["grid_id"])


def test_roads_are_inside_by_their_geometry_alone():
    from shapely import LineString
    layer = six_grids()
    roads = gpd.GeoDataFrame({"road_id": ["on", "across"]}, crs="EPSG:4326", geometry=[
        LineString([(X0 + 0.1 * STEP, Y0 + 0.5 * STEP), (X0 + 0.9 * STEP, Y0 + 1.5 * STEP)]),  # g00 to g01
        LineString([(X0 + 0.5 * STEP, Y0 + 0.5 * STEP), (X0 + 1.5 * STEP, Y0 + 0.5 * STEP)])])  # g00 to g10
    assert outside(roads, [parse(YUEHU)], layer, None, "road_id", by_fields=False) == ["across"]
    assert outside(roads, [parse(YUEHU)], layer, None, "road_id") == ["on", "across"]  # by fields: none has any


def test_several_scopes_add_up():
    layer = six_grids()
    scopes = [parse(YUEHU), parse("district=海曙区,street=白云街道,community=白云社区")]
    assert outside(layer, scopes, layer, None, "grid_id") == []


def test_check_names_what_a_write_would_replace_outside_the_scope(tmp_path):
    store = open_store(tmp_path)
    store.write("grids", validate(six_grids(), "grids").data, author="x")
    check(store, "grids", [], None, ["g10"])  # no scope: no limit
    check(store, "grids", [parse(YUEHU)], six_grids().iloc[[0]], ["g00"])
    with pytest.raises(Forbidden, match="g10") as caught:
        check(store, "grids", [parse(YUEHU)], None, ["g10", "g00"])
    assert "g00" not in caught.value.message
    with pytest.raises(Forbidden, match="without a scope"):
        whole_layer([Scope((("district", "海曙区"),))], "a restore")
