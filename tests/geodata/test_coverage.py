"""Coverage and gaps on hand-made layouts whose answers can be worked out by hand.

Layouts are drawn in metres in UTM zone 51N (where Ningbo lies) and stored in
WGS84, as real layers are; the analysis must pick that zone again by itself.
"""

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import Point, box

from geodata import gapdetail
from geodata.coverage import Params, analyse, catchments, grid_coverage, tiling_problems
from geodata.crs import metric_crs
from geodata.errors import BadRequest
from tests.factories import center_row, grid_row

UTM = "EPSG:32651"
X0, Y0 = 360_000.0, 3_305_000.0  # about 121.55 E, 29.87 N


def metres(x, y, w, h):
    return box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


def grids_m(rows, shapes) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=list(shapes), crs=UTM).to_crs(4326)


def centers_m(rows, points) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=[Point(X0 + x, Y0 + y) for x, y in points], crs=UTM).to_crs(4326)


def districts_m(shapes, names=("海曙区",)) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"adcode": [f"33020{i}" for i in range(len(names))], "name": list(names),
                             "name_en": list(names)}, geometry=list(shapes), crs=UTM).to_crs(4326)


def one_grid(**row):
    return grids_m([grid_row("g1", **row)], [metres(0, 0, 2000, 2000)])


def test_metric_crs_is_the_utm_zone_of_the_data():
    assert metric_crs(one_grid()).to_epsg() == 32651
    assert metric_crs(gpd.GeoDataFrame(geometry=[Point(-74.0, 40.7)], crs=4326)).to_epsg() == 32618
    assert metric_crs(gpd.GeoDataFrame(geometry=[Point(151.2, -33.9)], crs=4326)).to_epsg() == 32756


def test_catchment_discs_are_fine_enough():
    centers = gpd.GeoDataFrame({"level": ["community", "street", "district"]},
                               geometry=[Point(0, 0)] * 3, crs=UTM)
    discs = catchments(centers, Params())
    for disc, r in zip(discs, (1000, 2500, 5000)):
        assert abs(disc.area / (math.pi * r * r) - 1) < 0.002


def test_corner_centre_covers_a_sixteenth_of_pi():
    # a 2 km square with a community centre (r = 1 km) at a corner: a quarter disc inside → π/16
    grids = one_grid(population=1600)
    centers = centers_m([center_row("c1", "community")], [(0, 0)])
    result = analyse(grids, centers)
    row = result.coverage.iloc[0]
    assert row["coverage_ratio"] == pytest.approx(math.pi / 16, rel=0.005)
    assert row["covered_population"] == round(1600 * row["coverage_ratio"])
    assert row["coverage_status"] == "partial"
    [gap] = result.gaps[result.gaps.kind == "service_gap"].itertuples()
    assert gap.area_m2 == pytest.approx(4e6 * (1 - math.pi / 16), rel=0.002)
    assert (gap.grid_id, gap.community) == ("g1", "青石社区")


def test_status_thresholds():
    # 2 km squares at x = 0, 2 and 8 km; a district centre (r = 5 km) at (-2 km, 1 km): the first square's
    # farthest corner is √(4² + 1²) = 4.12 km away (inside), the second's 6.08 km (partly), the third's nearest 10 km
    grids = grids_m([grid_row(f"g{i}") for i in range(3)],
                    [metres(0, 0, 2000, 2000), metres(2000, 0, 2000, 2000), metres(8000, 0, 2000, 2000)])
    centers = centers_m([center_row("d1", "district")], [(-2000, 1000)])
    status = analyse(grids, centers).coverage.set_index("grid_id")["coverage_status"]
    assert status.to_dict() == {"g0": "covered", "g1": "partial", "g2": "uncovered"}
    strict = analyse(grids, centers, params=Params(covered_ratio=1.0, partial_ratio=0.99))
    assert strict.coverage["coverage_status"].tolist() == ["covered", "uncovered", "uncovered"]


def test_radius_parameters_change_the_answer():
    grids = one_grid()
    centers = centers_m([center_row("c1", "community")], [(1000, 1000)])
    small = analyse(grids, centers, params=Params(radius_community_m=500)).coverage.iloc[0]["coverage_ratio"]
    assert small == pytest.approx(math.pi * 500 ** 2 / 4e6, rel=0.005)
    big = analyse(grids, centers, params=Params(radius_community_m=1500)).coverage.iloc[0]["coverage_ratio"]
    assert big == 1.0


def test_no_centres_means_nothing_is_covered():
    result = analyse(one_grid(population=10), centers_m([], []).assign(level=[]))
    assert result.coverage.iloc[0]["coverage_ratio"] == 0
    assert result.summaries["city"].loc[0, "covered_population"] == 0


def test_community_without_its_own_centre_is_listed():
    # two communities in one street; only 青石 has a community centre, the street has a street centre
    grids = grids_m([grid_row("a1"), grid_row("b1", community="白云社区")],
                    [metres(0, 0, 1000, 1000), metres(1000, 0, 1000, 1000)])
    centers = centers_m([center_row("c1", "community"), center_row("s1", "street"), center_row("d1", "district")],
                        [(500, 500), (600, 500), (700, 500)])
    gaps = analyse(grids, centers).gaps
    missing = gaps[gaps.kind == "missing_center"]
    assert missing[["level", "district", "street", "community"]].values.tolist() == [
        ["community", "海曙区", "月湖街道", "白云社区"]]
    assert missing.iloc[0]["area_m2"] == pytest.approx(1e6, rel=1e-6)


def test_a_centre_counts_for_the_unit_it_stands_in_not_the_one_it_names():
    # the community centre names 青石社区 but stands in 白云社区's grid: 青石 lacks one
    grids = grids_m([grid_row("a1"), grid_row("b1", community="白云社区")],
                    [metres(0, 0, 1000, 1000), metres(1000, 0, 1000, 1000)])
    centers = centers_m([center_row("c1", "community")], [(1500, 500)])
    missing = analyse(grids, centers).gaps.query("kind == 'missing_center' and level == 'community'")
    assert missing["community"].tolist() == ["青石社区"]


def test_every_level_is_checked():
    grids = one_grid()
    gaps = analyse(grids, centers_m([center_row("c1", "community")], [(500, 500)])).gaps
    assert sorted(gaps.query("kind == 'missing_center'")["level"]) == ["district", "street"]


def test_two_grids_overlapping_by_a_known_area():
    # 1 km squares overlapping by a 200 m × 1 km strip = 200,000 m²
    grids = grids_m([grid_row("a"), grid_row("b")], [metres(0, 0, 1000, 1000), metres(800, 0, 1000, 1000)])
    [overlap] = analyse(grids, centers_m([], []).assign(level=[])).gaps.query("kind == 'overlap'").itertuples()
    assert overlap.area_m2 == pytest.approx(200_000, rel=1e-6)
    assert overlap.grid_id == "a" and "b" in overlap.detail


def test_slivers_below_tolerance_are_not_overlaps():
    # overlapping by 0.05 m × 1 km = 50 m² (under 100 m²)
    grids = grids_m([grid_row("a"), grid_row("b")], [metres(0, 0, 1000, 1000), metres(999.95, 0, 1000, 1000)])
    assert analyse(grids, centers_m([], []).assign(level=[])).gaps.query("kind == 'overlap'").empty


def test_a_hole_in_the_tiling_is_a_gap():
    # the district is 3 km × 1 km; grids cover it but for a 500 m × 400 m hole in the middle grid
    district = metres(0, 0, 3000, 1000)
    middle = metres(1000, 0, 1000, 1000).difference(metres(1200, 300, 500, 400))
    grids = grids_m([grid_row("a"), grid_row("b"), grid_row("c")],
                    [metres(0, 0, 1000, 1000), middle, metres(2000, 0, 1000, 1000)])
    gaps = analyse(grids, centers_m([], []).assign(level=[]), districts_m([district])).gaps
    [hole] = gaps.query("kind == 'tiling_gap'").itertuples()
    assert hole.area_m2 == pytest.approx(200_000, rel=1e-6)
    assert hole.district == "海曙区" and hole.grid_id is None


def test_district_land_in_no_grid_is_a_gap():
    # the grids leave the district's eastern 1 km × 1 km uncovered
    gaps = analyse(grids_m([grid_row("a")], [metres(0, 0, 2000, 1000)]), centers_m([], []).assign(level=[]),
                   districts_m([metres(0, 0, 3000, 1000)])).gaps
    assert gaps.query("kind == 'tiling_gap'")["area_m2"].tolist() == pytest.approx([1e6], rel=1e-6)


def test_without_district_boundaries_holes_in_the_grids_are_gaps():
    ring = metres(0, 0, 3000, 3000).difference(metres(1000, 1000, 1000, 1000))
    gaps = analyse(grids_m([grid_row("a")], [ring]), centers_m([], []).assign(level=[])).gaps
    assert gaps.query("kind == 'tiling_gap'")["area_m2"].tolist() == pytest.approx([1e6], rel=1e-6)


def test_hairline_gaps_along_a_boundary_are_slivers():
    # a 0.4 m wide, 3 km long strip (1,200 m² — above the area tolerance, but a hairline)
    gaps = analyse(grids_m([grid_row("a")], [metres(0, 0, 3000, 999.6)]), centers_m([], []).assign(level=[]),
                   districts_m([metres(0, 0, 3000, 1000)])).gaps
    assert gaps.query("kind == 'tiling_gap'").empty


def test_tiling_check_of_a_100k_vertex_grid_measures_no_buffer_of_it(monkeypatch):
    # a negative buffer of the district around a 100,000-vertex grid took minutes and gigabytes
    angle = np.linspace(0, 2 * np.pi, 100_000, endpoint=False)
    radius = 500 + np.where(np.arange(100_000) % 2, 0.5, 0.0)  # zig-zag: nothing to simplify away
    big = shapely.Polygon(np.column_stack([X0 + 1000 + radius * np.cos(angle), Y0 + 1000 + radius * np.sin(angle)]))
    buffered, real_buffer = [], shapely.buffer
    monkeypatch.setattr(shapely, "buffer", lambda g, *a, **k: buffered.append(shapely.get_num_coordinates(g))
                        or real_buffer(g, *a, **k))
    gaps = tiling_problems(grids_m([grid_row("a")], [big]), districts_m([metres(0, 0, 2000, 2000)]))
    assert gaps["area_m2"].tolist() == pytest.approx([4e6 - big.area], rel=1e-3)
    assert max((int(np.max(n, initial=0)) for n in buffered), default=0) < 10_000


def test_hairlines_with_many_vertices_are_slivers_and_wide_parts_are_not():
    from geodata.coverage import SMALL_PART_VERTICES, _significant

    x = np.linspace(0, 20_000, SMALL_PART_VERTICES)
    y = 0.7 * x + 30 * np.sin(x / 50)
    hairline = shapely.Polygon(np.vstack([np.column_stack([x, y + 0.4]), np.column_stack([x[::-1], y[::-1]])]))
    wide = shapely.Polygon(np.vstack([np.column_stack([x, y + 5]), np.column_stack([x[::-1], y[::-1]])]))
    assert _significant(np.array([hairline, wide]), Params()).tolist() == [False, True]


def test_a_grid_in_the_wrong_district_is_flagged():
    # 海曙区 is x 0–2 km, 江北区 x 2–4 km; grid "b" says 海曙区 but lies in 江北区
    districts = districts_m([metres(0, 0, 2000, 1000), metres(2000, 0, 2000, 1000)], ("海曙区", "江北区"))
    grids = grids_m([grid_row("a"), grid_row("b"), grid_row("c", district="江北区")],
                    [metres(0, 0, 2000, 1000), metres(2000, 0, 1000, 1000), metres(3000, 0, 1000, 1000)])
    tiling = analyse(grids, centers_m([], []).assign(level=[]), districts).gaps.query("kind == 'tiling_gap'")
    outside = tiling[tiling.grid_id == "b"]
    assert outside["area_m2"].tolist() == pytest.approx([1e6], rel=1e-6)
    assert "超出所属区县 海曙区" in outside.iloc[0]["detail"]  # the analysis writes Chinese; English is said later
    assert "outside its district 海曙区" in gapdetail.in_language(outside.iloc[0]["detail"], "en")
    # and 江北区's land under "b" belongs to none of its own grids
    assert tiling[(tiling.district == "江北区") & tiling.grid_id.isna()]["area_m2"].tolist() == pytest.approx(
        [1e6], rel=1e-6)


def test_staffing_gaps_name_what_is_missing():
    grids = grids_m([grid_row("ok"), grid_row("no_instructor", instructor=None), grid_row("no_branch", party_branch=" "),
                     grid_row("no_workers", grid_workers=0), grid_row("unknown_workers", grid_workers=None)],
                    [metres(i * 1000, 0, 1000, 1000) for i in range(5)])
    staffing = analyse(grids, centers_m([], []).assign(level=[])).gaps.query("kind == 'staffing_gap'")
    assert staffing["grid_id"].tolist() == ["no_instructor", "no_branch", "no_workers", "unknown_workers"]
    details = dict(zip(staffing.grid_id, staffing.detail))
    assert details["no_instructor"] == "no_instructor网格：无党建指导员"
    assert details["no_branch"] == "no_branch网格：无党支部"
    assert gapdetail.in_language(details["no_workers"], "en") == "no_workers网格: no grid worker"


def test_gaps_have_the_spec_fields_and_wgs84_geometry():
    result = analyse(one_grid(instructor=None), centers_m([], []).assign(level=[]))
    assert list(result.gaps.columns) == ["gap_id", "kind", "level", "district", "street", "community", "grid_id",
                                         "area_m2", "detail", "geometry"]
    assert result.gaps.crs.to_epsg() == 4326
    assert result.gaps["gap_id"].is_unique
    minx, miny, maxx, maxy = result.gaps.total_bounds
    assert 121 < minx < maxx < 122 and 29 < miny < maxy < 30


def test_summaries_roll_up_population_and_gaps():
    # 青石 (two grids, 1,000 people each) fully covered; 白云 (one grid, 500 people) not at all
    grids = grids_m([grid_row("a1"), grid_row("a2"), grid_row("b1", community="白云社区", population=500)],
                    [metres(0, 0, 500, 500), metres(500, 0, 500, 500), metres(20000, 0, 500, 500)])
    centers = centers_m([center_row("c1", "community")], [(500, 250)])
    result = analyse(grids, centers)
    city = result.summaries["city"].iloc[0]
    assert (city["grids"], city["population"], city["covered_population"]) == (3, 2500, 2000)
    assert city["covered_share"] == pytest.approx(0.8)
    assert (city["grids_covered"], city["grids_uncovered"]) == (2, 1)
    communities = result.summaries["community"].set_index("community")
    assert communities.loc["青石社区", "covered_share"] == 1.0
    assert communities.loc["白云社区", "covered_share"] == 0.0
    assert communities.loc["白云社区", "service_gap"] == 1
    assert communities.loc["白云社区", "missing_center"] == 1 and communities.loc["青石社区", "missing_center"] == 0
    # the street and district lack centres of their own level: counted at their levels and in the city
    assert result.summaries["street"].iloc[0]["missing_center"] == 2  # its own + 白云's
    assert city["missing_center"] == 3


@pytest.mark.parametrize("bad", [{"radius_community_m": -1}, {"radius_street_m": float("nan")},
                                 {"covered_ratio": 0.05}, {"sliver_m2": -3}])
def test_bad_parameters_are_bad_requests(bad):
    with pytest.raises(BadRequest):
        Params(**bad)


def test_request_parameters():
    params = Params().with_request({"radius_community_m": "1500", "other": "x"})
    assert params.radius("community") == 1500 and params.radius("street") == 2500
    with pytest.raises(BadRequest, match="radius_street_m"):
        Params().with_request({"radius_street_m": "far"})


def naive_ratio(grids: np.ndarray, discs: np.ndarray) -> np.ndarray:
    union = shapely.union_all(discs)
    return shapely.area(shapely.intersection(grids, union)) / shapely.area(grids)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.floats(0, 6000), st.floats(0, 6000), st.sampled_from([300.0, 1000.0, 2500.0])),
                max_size=12),
       st.integers(2, 6))
def test_fast_ratios_equal_the_naive_idiom(discs, cells):
    size = 6000 / cells
    grid_geoms = np.array([box(i * size, j * size, (i + 1) * size, (j + 1) * size)
                           for i in range(cells) for j in range(cells)], dtype=object)
    disc_geoms = np.array([Point(x, y).buffer(r, quad_segs=16) for x, y, r in discs], dtype=object)
    ratio, uncovered = grid_coverage(grid_geoms, disc_geoms)
    expected = naive_ratio(grid_geoms, disc_geoms) if len(discs) else np.zeros(len(grid_geoms))
    np.testing.assert_allclose(ratio, expected, atol=1e-9)
    np.testing.assert_allclose(shapely.area(uncovered), shapely.area(grid_geoms) * (1 - expected), atol=1e-3)


def test_a_catchment_with_a_discs_vertex_count_that_is_no_disc_is_measured():
    # 64 vertices (65 with the closing one) from east, clockwise, as a disc's, but a star: every
    # other vertex at 300 m. Taken for a disc of 1 km, the boxes would be inside it.
    angle = -2 * np.pi / 64 * np.append(np.arange(64), 0)
    radius = np.where(np.arange(65) % 2 == 0, 1000.0, 300.0)
    star = shapely.Polygon(np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]))
    grids = np.array([box(400, 400, 600, 600), box(-650, -100, -450, 100), box(5000, 0, 5100, 100)], dtype=object)
    ratio, uncovered = grid_coverage(grids, np.array([star], dtype=object))
    expected = naive_ratio(grids, np.array([star], dtype=object))
    assert expected[0] < 0.5 and expected[2] == 0  # the first box is mostly between two spikes
    np.testing.assert_allclose(ratio, expected, atol=1e-9)
    np.testing.assert_allclose(shapely.area(uncovered), shapely.area(grids) * (1 - expected), atol=1e-6)


def test_regular_discs_cover_the_grids_inside_them_at_once():
    discs = catchments(gpd.GeoDataFrame({"level": ["community"]}, geometry=[Point(0, 0)], crs="EPSG:32651"), Params())
    grids = np.array([box(-600, -600, 600, 600), box(600, 600, 800, 800), box(2000, 0, 2100, 100)], dtype=object)
    ratio, uncovered = grid_coverage(grids, discs)
    np.testing.assert_allclose(ratio, naive_ratio(grids, discs), atol=1e-9)
    assert ratio[0] == 1 and shapely.is_empty(uncovered[0]) and ratio[2] == 0 and 0 < ratio[1] < 1
