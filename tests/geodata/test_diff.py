import pytest
from shapely import box

from geodata.diff import diff
from tests.factories import grid_row, grids, six_grids


def test_added_removed_and_changed_keys():
    old = six_grids()
    new = old[old.grid_id != "g21"].copy()
    new.loc[new.grid_id == "g00", "population"] = 1
    new = grids([*new.drop(columns="geometry").to_dict("records"), grid_row("g99")],
                [*new.geometry, box(121.6, 29.9, 121.61, 29.91)])
    result = diff(old, new, "grid_id")
    assert result.added == ["g99"] and result.removed == ["g21"]
    assert result.changed == [{"key": "g00", "fields": ["population"], "geometry": False, "area_delta_m2": 0.0}]
    assert dict(zip(result.features["key"], result.features["status"])) == {
        "g99": "added", "g21": "removed", "g00": "changed"}


def test_geometry_change_reports_the_area_delta():
    old = grids([grid_row("a")], [box(121.50, 29.80, 121.51, 29.81)])
    # the same square cut in half along its width: the area halves (0.005° × 0.01° ≈ 483 m × 1,109 m ≈ 0.536 km²)
    new = grids([grid_row("a")], [box(121.50, 29.80, 121.505, 29.81)])
    [change] = diff(old, new, "grid_id").changed
    assert change["geometry"] is True and change["fields"] == []
    assert change["area_delta_m2"] == pytest.approx(-535_800, rel=0.01)


def test_identical_versions_have_no_changes_and_nulls_compare_equal():
    old = grids([grid_row("a", instructor=None, population=None)])
    result = diff(old, old.copy(), "grid_id")
    assert (result.added, result.removed, result.changed) == ([], [], [])


def test_a_field_that_appears_counts_as_a_change():
    old = grids([grid_row("a")])
    new = old.assign(remark=["note"])
    assert diff(old, new, "grid_id").changed[0]["fields"] == ["remark"]
