"""Site recommendations on layouts with a known best answer."""

import itertools
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely import Point, box

from geodata.coverage import Params
from geodata.errors import BadRequest
from geodata.siting import greedy, mclp, recommend
from tests.factories import center_row, grid_row

UTM = "EPSG:32651"
X0, Y0 = 360_000.0, 3_305_000.0


def grids_m(rows, shapes):
    return gpd.GeoDataFrame(rows, geometry=list(shapes), crs=UTM).to_crs(4326)


def centers_m(rows, points):
    return gpd.GeoDataFrame(rows, geometry=[Point(X0 + x, Y0 + y) for x, y in points], crs=UTM).to_crs(4326)


def square(x, y, size=400):
    return box(X0 + x, Y0 + y, X0 + x + size, Y0 + y + size)


def two_clusters():
    """Cluster A: four 400 m grids of 250 people at x 0–800; cluster B: one grid of 500 people 20 km away."""
    rows = [grid_row(f"a{i}", population=250) for i in range(4)] + [grid_row("b", population=500, community="白云社区")]
    shapes = [square(0, 0), square(400, 0), square(0, 400), square(400, 400), square(20_000, 0)]
    return grids_m(rows, shapes)


NO_CENTRES = centers_m([], []).assign(level=[])


def test_the_best_site_first_then_the_next():
    result = recommend(two_clusters(), NO_CENTRES, "community", k=2)
    assert result.sites["new_population"].tolist() == [1000, 500]
    assert result.sites["cumulative_population"].tolist() == [1000, 1500]
    assert result.sites["covered_share"].tolist() == [pytest.approx(2 / 3, abs=1e-4), 1.0]
    assert result.sites["community"].tolist() == ["青石社区", "白云社区"]
    assert (result.solver, result.population, result.covered_before) == ("greedy", 1500, 0)


def test_more_sites_than_useful_come_back_fewer_with_a_reason():
    result = recommend(two_clusters(), NO_CENTRES, "community", k=5)
    assert len(result.sites) == 2 and "only 2" in result.reason


def test_existing_centres_stay_and_their_people_are_not_counted_again():
    centres = centers_m([center_row("c1", "community")], [(400, 400)])  # covers cluster A
    result = recommend(two_clusters(), centres, "community", k=1)
    assert result.covered_before == 1000
    assert result.sites["new_population"].tolist() == [500] and result.sites["community"].tolist() == ["白云社区"]


def test_a_site_never_duplicates_an_existing_centre_of_its_level():
    # a community centre with a 1 m catchment stands on the best spot: a new site must keep 100 m away
    centres = centers_m([center_row("s1", "community")], [(375, 375)])
    result = recommend(two_clusters(), centres, "community", k=1, params=Params(radius_community_m=1))
    site = gpd.GeoSeries(result.sites.geometry, crs=4326).to_crs(UTM).iloc[0]
    assert site.distance(Point(X0 + 375, Y0 + 375)) >= 100


def test_restricting_to_a_unit():
    result = recommend(two_clusters(), NO_CENTRES, "community", k=2, unit={"community": "白云社区"})
    assert result.sites["new_population"].tolist() == [500] and result.population == 500
    with pytest.raises(BadRequest):
        recommend(two_clusters(), NO_CENTRES, "community", k=1, unit={"community": "nowhere"})
    with pytest.raises(BadRequest):
        recommend(two_clusters().iloc[:0], NO_CENTRES, "community", k=1, unit={"community": "白云社区"})


@pytest.mark.parametrize("level,k", [("city", 1), ("community", 0), ("community", 51)])
def test_bad_requests(level, k):
    with pytest.raises(BadRequest):
        recommend(two_clusters(), NO_CENTRES, level, k)


def test_greedy_is_within_the_guarantee_of_the_optimum_on_random_instances():
    rng = np.random.default_rng(11)
    ratios = []
    for _ in range(20):
        points = shapely.points(rng.uniform(0, 5000, (60, 2)))
        weights = rng.integers(1, 100, 60).astype(float)
        sites = shapely.points(rng.uniform(0, 5000, (12, 2)))
        k, radius = 3, 1000.0
        chosen, gains = greedy(points, weights, sites, radius, k)
        covers = [set(np.flatnonzero(shapely.dwithin(points, s, radius))) for s in sites]
        best = max(sum(weights[list(set().union(*(covers[i] for i in combo)))])
                   for combo in itertools.combinations(range(len(sites)), k))
        ratios.append(gains.sum() / best)
    assert min(ratios) >= 1 - 1 / math.e
    assert np.median(ratios) >= 0.98  # usually within 2 %


def trap():
    """Four people-groups of 5 on a line and one of 1 between them: the middle site (11) tempts greedy."""
    points = shapely.points([(0, 0), (1.5, 0), (3.5, 0), (5, 0), (2.5, 0)])
    weights = np.array([5.0, 5, 5, 5, 1])
    sites = shapely.points([(2.5, 0), (0.75, 0), (4.25, 0)])  # middle, left pair, right pair
    return points, weights, sites


def test_mclp_finds_the_optimum_where_greedy_does_not():
    points, weights, sites = trap()
    chosen, gains = greedy(points, weights, sites, 1.0, 2)
    assert list(chosen) == [0, 1] and gains.sum() == 16
    chosen, gains = mclp(points, weights, sites, 1.0, 2)
    assert sorted(chosen) == [1, 2] and gains.sum() == 20


def test_mclp_counts_the_pairs_it_is_given_not_straight_lines():
    # the trap's coverage given as pairs (as walking_pairs gives them) while every point and site stands at
    # one spot: by straight lines each site would cover everything
    points, weights, _ = trap()
    here = shapely.points(np.zeros((5, 2)))
    pairs = (np.array([0, 0, 0, 1, 1, 2, 2]), np.array([1, 2, 4, 0, 1, 2, 3]))  # middle; left pair; right pair
    chosen, gains = greedy(here, weights, here[:3], 1.0, 2, pairs=pairs)
    assert list(chosen) == [0, 1] and gains.sum() == 16
    chosen, gains = mclp(here, weights, here[:3], 1.0, 2, pairs=pairs)
    assert sorted(chosen) == [1, 2] and list(gains) == [10, 10]


def test_auto_keeps_the_better_answer_and_names_its_solver():
    result = recommend(two_clusters(), NO_CENTRES, "community", k=2, solver="auto")
    assert result.solver in ("greedy", "mclp") and result.sites["cumulative_population"].iloc[-1] == 1500
    assert recommend(two_clusters(), NO_CENTRES, "community", k=2, solver="mclp").solver == "mclp"
    with pytest.raises(BadRequest):
        recommend(two_clusters(), NO_CENTRES, "community", k=2, solver="magic")


def half_covered():
    """A 2 km grid of 1,000 people with a centre at its corner (a quarter disc: 19.6 % of its area) and one
    400 m grid of 300 people in another street 10 km away."""
    rows = [grid_row("big", population=1000), grid_row("far", population=300, street="南门街道", community="白云社区")]
    return grids_m(rows, [square(0, 0, size=2000), square(10_000, 0)])


def test_the_baseline_is_the_analysis_covered_population():
    from geodata.coverage import analyse

    grids = half_covered()
    centres = centers_m([center_row("c1", "community")], [(0, 0)])
    result = recommend(grids, centres, "community", k=2, solver="greedy")
    summary = analyse(grids, centres).summaries
    assert result.covered_before == summary["city"].loc[0, "covered_population"] == round(1000 * math.pi / 16)
    assert result.population == summary["city"].loc[0, "population"] == 1300
    gains = result.sites["new_population"].cumsum()
    assert (result.sites["cumulative_population"] == result.covered_before + gains).all()
    assert result.sites["cumulative_population"].iloc[-1] <= 1300
    street = recommend(grids, centres, "community", k=1, unit={"street": "月湖街道"}, solver="greedy")
    in_street = summary["street"].set_index("street").loc["月湖街道"]
    assert (street.covered_before, street.population) == (in_street["covered_population"], in_street["population"])
