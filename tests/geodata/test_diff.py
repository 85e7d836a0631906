import io

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import Polygon, box

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
    assert result.changed == [{"key": "g00", "fields": ["population"], "geometry": False, "geometry_change": None,
                               "area_delta_m2": 0.0}]
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


# --- noise is not a change: shapes within 1 cm, values that are one value -----------------------------

UTM51 = "EPSG:32651"  # the metric CRS metric_crs() picks for Ningbo


def _squares(*boxes_m):
    """Grids a, b, ... from squares given in metres (UTM 51N), stored as lon/lat like every layer."""
    shapes = gpd.GeoSeries(list(boxes_m), crs=UTM51).to_crs("EPSG:4326")
    return grids([grid_row(chr(ord("a") + i)) for i in range(len(shapes))], shapes)


SQUARE = (350_000, 3_300_000, 350_100, 3_300_100)  # 100 m × 100 m near Ningbo


def test_a_square_moved_by_5_mm_is_unchanged():
    x0, y0, x1, y1 = SQUARE
    result = diff(_squares(box(*SQUARE)), _squares(box(x0 + 0.005, y0, x1 + 0.005, y1)), "grid_id")
    assert result.changed == [] and result.unchanged == ["a"]
    assert result.to_dict()["counts"] == {"added": 0, "removed": 0, "changed": 0, "unchanged": 1}


def test_a_square_moved_by_2_cm_has_moved_and_kept_its_area():
    x0, y0, x1, y1 = SQUARE
    [change] = diff(_squares(box(*SQUARE)), _squares(box(x0 + 0.02, y0, x1 + 0.02, y1)), "grid_id").changed
    assert change == {"key": "a", "fields": [], "geometry": True, "geometry_change": "moved", "area_delta_m2": 0.0}


def test_a_square_widened_by_2_cm_is_reshaped_by_2_m2():
    x0, y0, x1, y1 = SQUARE
    [change] = diff(_squares(box(*SQUARE)), _squares(box(x0, y0, x1 + 0.02, y1)), "grid_id").changed
    # 100 m high × 0.02 m wider = 2 m² more
    assert (change["geometry_change"], change["area_delta_m2"]) == ("reshaped", 2.0)


def test_a_ring_that_starts_elsewhere_or_runs_the_other_way_is_unchanged():
    ring = [(121.5, 29.8), (121.51, 29.8), (121.51, 29.81), (121.5, 29.81)]
    old = grids([grid_row("a"), grid_row("b")], [Polygon(ring), Polygon(ring)])
    new = grids([grid_row("a"), grid_row("b")], [Polygon(ring[2:] + ring[:2]), Polygon(ring[::-1])])
    result = diff(old, new, "grid_id")
    assert result.changed == [] and result.unchanged == ["a", "b"]


def test_a_geojson_round_trip_at_7_decimals_is_unchanged():
    # irregular coordinates, as surveyed: 7 decimals (~1 cm) is what GeoJSON writers keep
    rng = np.random.default_rng(1)
    shapes = [Polygon([(121.5 + i * 0.01 + dx, 29.8 + dy) for dx, dy in rng.uniform(0, 0.009, (5, 2))]).convex_hull
              for i in range(20)]
    old = grids([grid_row(f"g{i}") for i in range(20)], shapes)
    new = gpd.read_file(io.StringIO(old.set_geometry(shapely.set_precision(old.geometry.values, 1e-7))
                                    .to_json(drop_id=True)))
    assert not shapely.equals_exact(old.geometry.values, new.geometry.values, tolerance=0).all()  # really moved
    result = diff(old, new, "grid_id")
    assert result.changed == [] and len(result.unchanged) == 20


@pytest.mark.parametrize("before,after", [(3, 3.0), (None, float("nan")), (None, pd.NA), (float("nan"), pd.NA)])
def test_values_that_are_one_value_are_unchanged(before, after):
    old = grids([grid_row("a", population=before)])
    new = grids([grid_row("a", population=after)])
    assert diff(old, new, "grid_id").changed == []


def test_a_value_against_no_value_is_a_change():
    old = grids([grid_row("a"), grid_row("b")])
    new = old.assign(population=pd.array([pd.NA, 1000], dtype="Int64"), remark=[None, float("nan")])
    result = diff(old, new, "grid_id")  # a column only the new version has, holding no values: no change
    assert [(c["key"], c["fields"]) for c in result.changed] == [("a", ["population"])]
    assert result.unchanged == ["b"]
