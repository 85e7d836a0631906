"""Walking catchments on hand-made networks with hand-computed answers (issue #16, SPEC §2).

Lengths in metres in a metric CRS.  A catchment is the reached road buffered by ``a`` with round ends of
``network.BUFFER_QUAD_SEGS`` segments a quarter circle, so a whole circle there is a regular N-gon,
N = 4q, of area ``(N/2)·a²·sin(2π/N)`` (0.16 % short of πa² for q = 16, as the discs are): the hand
formula for a straight reach of length L is ``2·a·L + (N/2)·a²·sin(2π/N)``.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.affinity
from shapely import LineString, Point, box

from geodata import network
from geodata.coverage import Params, analyse, catchments
from geodata.errors import BadRequest
from tests.factories import center_row, grid_row

A = 100.0  # the walk access distance
N = 4 * network.BUFFER_QUAD_SEGS


def circle(a: float = A) -> float:
    """The area of the buffer's polygonal circle of radius ``a``."""
    return N / 2 * a * a * math.sin(2 * math.pi / N)


def capsule(length: float, a: float = A) -> float:
    return 2 * a * length + circle(a)


def build(*lines) -> network.Network:
    return network.build(np.array([LineString(line) for line in lines], dtype=object))


def reached(net, xy, radius) -> tuple[float, list]:
    """Total reached length, and the reached pieces as (a, b) tuples, rounded to the millimetre."""
    found = network.reach(net, np.array([xy], dtype=float), np.array([radius]))
    lines = found.lines()
    union = shapely.line_merge(shapely.union_all(lines)) if len(lines) else LineString()
    return float(shapely.length(union)), union


def catchment(net, xy, radius, a=A):
    return network.catchments(net, np.array([xy], dtype=float), np.array([radius]), a)[0]


def test_straight_road_from_one_end_reaches_exactly_r():
    net = build([(0, 0), (2000, 0)])
    length, line = reached(net, (0, 0), 700)
    assert length == pytest.approx(700, abs=1e-9)
    assert shapely.hausdorff_distance(line, LineString([(0, 0), (700, 0)])) < 1e-6
    area = catchment(net, (0, 0), 700).area
    assert area == pytest.approx(capsule(700), rel=1e-6)
    assert area == pytest.approx(2 * A * 700 + math.pi * A * A, rel=2e-3)  # the exact figure, to the polygon's 0.2 %


def test_a_centre_off_the_road_is_snapped_to_its_nearest_point():
    net = build([(0, 0), (2000, 0)])
    length, line = reached(net, (1000, 40), 300)  # snapped to (1000, 0): 300 m each way
    assert length == pytest.approx(600)
    assert shapely.hausdorff_distance(shapely.normalize(line), LineString([(700, 0), (1300, 0)])) < 1e-6
    assert catchment(net, (1000, 40), 300).area == pytest.approx(capsule(600), rel=1e-6)


def test_junction_shares_the_distance_left():
    # a T: the main road has a vertex at (500, 0) where the side road starts
    net = build([(0, 0), (500, 0), (1000, 0)], [(500, 0), (500, 800)])
    length, line = reached(net, (0, 0), 700)
    assert length == pytest.approx(700 + 200)  # 700 along the main road, 700 - 500 up the side road
    assert line.covers(LineString([(500, 0), (500, 200)])) and not line.intersects(Point(500, 200.001))


def test_dead_end_stops_the_walk():
    net = build([(0, 0), (300, 0)])
    length, _ = reached(net, (0, 0), 1000)
    assert length == pytest.approx(300)
    assert catchment(net, (0, 0), 1000).area == pytest.approx(capsule(300), rel=1e-6)


def test_partially_reached_edge_is_cut_at_the_exact_remaining_distance():
    net = build([(0, 0), (1000, 0)], [(1000, 0), (1000, 1000)])
    found = network.reach(net, np.array([[300.0, 0.0]]), np.array([1000.0]))
    ends = {tuple(np.round(p, 9)) for p in np.vstack([found.a, found.b])}
    assert (1000.0, 300.0) in ends  # 1,000 - 700 m left at the corner
    length, _ = reached(net, (300, 0), 1000)
    assert length == pytest.approx(1000 + 300)
    # the centre's own edge from both sides: 300 m back to the start, 700 m on to the corner
    length, _ = reached(net, (300, 0), 250)
    assert length == pytest.approx(500)


def test_a_way_round_reaches_the_far_end_of_the_centres_own_edge_sooner():
    # a long edge (0,0)-(1000,0) and a short way round from (0,0) to (1000,0) by two edges (0,0)-(500,10)-(1000,0)
    net = build([(0, 0), (1000, 0)], [(0, 0), (500, 10), (1000, 0)])
    length, line = reached(net, (0, 0), 1100)
    ring = 1000 + 2 * math.hypot(500, 10)
    assert length == pytest.approx(ring)  # all of it: the long edge from both ends


def test_crossing_without_a_shared_vertex_is_a_bridge_not_a_junction():
    net = build([(0, 0), (1000, 0)], [(500, -500), (500, 500)])  # crosses at (500, 0): no vertex there
    length, line = reached(net, (0, 0), 1000)
    assert length == pytest.approx(1000)
    assert not line.intersects(Point(500, 200))


def test_unreachable_island():
    net = build([(0, 0), (1000, 0)], [(0, 500), (1000, 500)])
    assert len(np.unique(net.components())) == 2
    length, line = reached(net, (0, 0), 5000)
    assert length == pytest.approx(1000) and line.bounds[3] == 0
    # a centre nearer the island walks the island only
    length, line = reached(net, (100, 400), 5000)
    assert length == pytest.approx(1000) and line.bounds[1] == 500


def test_the_union_of_every_centres_walk_is_what_each_reaches():
    net = build([(0, 0), (500, 0), (1000, 0)], [(500, 0), (500, 800)], [(1000, 0), (3000, 0)],
                [(0, 2000), (900, 2000)])
    xy, radii = np.array([[0.0, 0.0], [2000.0, 10.0], [300.0, 2000.0]]), np.array([700.0, 400.0, 1000.0])
    each = network.reach(net, xy, radii).lines()
    union = network.reached(net, xy, radii).lines()
    assert shapely.length(shapely.union_all(union)) == pytest.approx(shapely.length(shapely.union_all(each)))
    assert shapely.length(shapely.union_all(union)) == pytest.approx(700 + 200 + 800 + 900)
    land = shapely.union_all(network.covered_land(network.reached(net, xy, radii), A))
    assert land.area == pytest.approx(shapely.union_all(network.catchments(net, xy, radii, A)).area, rel=1e-9)


def test_no_roads_reach_nothing():
    net = network.build(np.array([], dtype=object))
    assert net.empty and catchment(net, (0, 0), 1000).is_empty


def test_walkable_false_roads_are_left_out():
    roads = gpd.GeoDataFrame({"walkable": [True, False, None]},
                             geometry=[LineString([(0, 0), (1, 0)]), LineString([(1, 0), (2, 0)]),
                                       LineString([(2, 0), (3, 0)])])
    assert len(network.walkable(roads)) == 2


# --- the analysis ------------------------------------------------------------------------------

UTM = "EPSG:32651"  # Ningbo's zone, which geodata.crs.metric_crs chooses for these
X0, Y0 = 370_000.0, 3_305_000.0


def frame(rows: list[dict], geoms) -> gpd.GeoDataFrame:
    moved = [shapely.affinity.translate(g, X0, Y0) for g in geoms]
    return gpd.GeoDataFrame(rows, geometry=moved, crs=UTM).to_crs("EPSG:4326")


def river_town():
    """Two banks 400 m apart, joined by one bridge 1,500 m east; a community centre at the south bank's west end.

    Grid ``north`` is across the river, 300–500 m from the centre: inside its 1,000 m disc, 2 km away on foot.
    Grid ``edge`` is on the south bank where the walk ends at x = 1,000 m: its covered part is the square
    x 900–1,000 × y -100–0 and a quarter of the round end's polygonal circle.
    """
    roads = frame([{"road_id": "south", "walkable": True}, {"road_id": "north", "walkable": True},
                   {"road_id": "bridge", "walkable": True}],
                  [LineString([(0, 0), (1500, 0), (3000, 0)]), LineString([(0, 400), (1500, 400), (3000, 400)]),
                   LineString([(1500, 0), (1500, 400)])])
    grids = frame([grid_row("north"), grid_row("edge")], [box(0, 300, 200, 500), box(900, -200, 1300, 0)])
    centers = frame([center_row("c1", "community")], [Point(0, 0)])
    return grids, centers, roads


def test_analysis_network_coverage_is_the_hand_computed_ratio():
    grids, centers, roads = river_town()
    network_result = analyse(grids, centers, None, Params(catchment="network"), roads=roads)
    ratio = dict(zip(network_result.coverage.grid_id, network_result.coverage.coverage_ratio))
    assert ratio["north"] == 0.0  # across the river: the bridge is 1,500 m away
    expected = (100 * 100 + circle() / 4) / (400 * 200)
    assert ratio["edge"] == pytest.approx(expected, rel=1e-6)
    disc = analyse(grids, centers, None, Params(), roads=roads)
    assert dict(zip(disc.coverage.grid_id, disc.coverage.coverage_ratio))["north"] == pytest.approx(1.0)


def test_network_without_roads_is_the_disc():
    grids, centers, _ = river_town()
    with_net = analyse(grids, centers, None, Params(catchment="network"), roads=None)
    disc = analyse(grids, centers, None, Params())
    assert with_net.coverage.coverage_ratio.tolist() == disc.coverage.coverage_ratio.tolist()


def test_catchments_hook_follows_the_params():
    grids, centers, roads = river_town()
    c_m, r_m = centers.to_crs(UTM), roads.to_crs(UTM)
    walk = catchments(c_m, Params(catchment="network", walk_access_m=50), r_m)  # tiles of the union
    assert shapely.union_all(walk).area == pytest.approx(capsule(1000, 50), rel=1e-6)
    assert catchments(c_m, Params(), r_m)[0].area == pytest.approx(math.pi * 1000 ** 2, rel=2e-3)


def test_catchment_parameter_is_checked():
    assert Params().with_request({"catchment": "network"}).catchment == "network"
    with pytest.raises(BadRequest):
        Params(catchment="bus")
    with pytest.raises(BadRequest):
        Params().with_request({"catchment": "as the crow flies"})


def test_the_catalog_analyses_again_when_the_roads_change(tmp_path):
    from geodata.catalog import Catalog
    from geodata.store import open_store
    from geodata.validate import validate

    grids, centers, roads = river_town()
    store = open_store(tmp_path)
    for name, layer in (("grids", grids), ("centers", centers), ("roads", roads)):
        store.write(name, validate(layer, name).data, author="t")
    walking = Catalog(store, Params(catchment="network"))

    def north() -> float:
        coverage = walking.analysis().coverage
        return float(coverage.coverage_ratio[coverage.grid_id == "north"].iloc[0])

    assert north() == 0.0
    bridged = frame([{"road_id": "footbridge"}], [LineString([(0, 0), (0, 400)])])
    store.write("roads", validate(gpd.GeoDataFrame(
        gpd.pd.concat([roads, bridged], ignore_index=True), crs="EPSG:4326"), "roads").data, author="t")
    assert north() > 0.5  # a footbridge at the centre's door: the north bank is a short walk now
    assert Catalog(store).analysis().coverage.coverage_ratio.max() == pytest.approx(1.0)  # discs ignore roads


def test_jobs_read_the_roads_version_they_are_given(tmp_path):
    from geodata import jobs
    from geodata.store import open_store
    from geodata.validate import validate

    grids, centers, roads = river_town()
    store = open_store(tmp_path)
    for name, layer in (("grids", grids), ("centers", centers), ("roads", roads)):
        store.write(name, validate(layer, name).data, author="t")
    versions = {"grids": 1, "centers": 1, "districts": None, "roads": 1}
    result = jobs.analyse_versions(store, versions, Params(catchment="network"))
    assert dict(zip(result.coverage.grid_id, result.coverage.coverage_ratio))["north"] == 0.0
    summaries = jobs.whatif_summaries(store, versions, Params(catchment="network"), ((121.0, 29.0, "community"),))
    assert summaries["city"]["grids"].iloc[0] == 2


# --- the disc against the walk, and the life circles (issue #16) ---------------------------------------------

def walking_town():
    """The river town with a third grid ``bank``: x 300–500 × y -300–0 on the south bank, all inside the centre's
    disc (its far corner 583 m away); the walk along the south road reaches its top 100 m only."""
    grids, centers, roads = river_town()
    bank = frame([grid_row("bank")], [box(300, -300, 500, 0)])
    return gpd.GeoDataFrame(gpd.pd.concat([grids, bank], ignore_index=True), crs="EPSG:4326"), centers, roads


def test_walk_gap_is_the_land_inside_the_disc_beyond_the_walk():
    grids, centers, roads = walking_town()
    result = analyse(grids, centers, None, Params(catchment="network"), roads=roads)
    gaps = result.gaps[result.gaps.kind == "walk_gap"].set_index("grid_id")
    # north: all 200 × 200 m across the river; bank: the 200 × 200 m below the walk's 100 m strip
    assert gaps.loc["north", "area_m2"] == pytest.approx(200 * 200, abs=0.1)
    assert gaps.loc["bank", "area_m2"] == pytest.approx(200 * 200, abs=0.1)
    assert gaps.loc["north", "gap_id"] == "walk_gap.north"
    # edge: its land inside the disc (x ≤ 1,000) that the walk leaves (below y = -100) is a walk gap too
    coverage = result.coverage.set_index("grid_id")
    assert coverage.loc["north", "disc_covered_population"] == 1000
    assert coverage.loc["north", "walk_gap_population"] == 1000
    assert coverage.loc["bank", "disc_covered_population"] == 1000
    assert coverage.loc["bank", "covered_population"] == round(1000 * 200 * 100 / 60000)  # 333
    assert coverage.loc["bank", "walk_gap_population"] == round(1000 * 200 * 200 / 60000)  # 667
    total = result.summaries["total"].iloc[0]
    assert total["walk_gap"] == 3
    assert total["walk_gap_population"] == coverage["walk_gap_population"].sum()
    assert total["disc_covered_population"] == coverage["disc_covered_population"].sum()
    assert total["disc_covered_share"] == pytest.approx(round(total["disc_covered_population"] / 3000, 4))
    community = result.summaries["community"].iloc[0]
    assert community["walk_gap_population"] == total["walk_gap_population"]


def test_disc_analyses_have_no_walk_gap():
    grids, centers, roads = walking_town()
    result = analyse(grids, centers, None, Params(), roads=roads)
    assert "walk_gap" not in set(result.gaps.kind)
    assert result.summaries["total"]["walk_gap"].iloc[0] == 0
    assert "walk_gap_population" not in result.summaries["total"].columns
    assert "disc_covered_population" not in result.coverage.columns


def test_life_circle_rings_count_the_people_within_each_walk():
    grids, centers, roads = walking_town()
    result = analyse(grids, centers, None, Params(catchment="network"), roads=roads)
    coverage = result.coverage.set_index("grid_id")
    # bank (x 300–500, 60,000 m²): 300 m reach the road's x = 300 — only the round end's quarter circle is in it;
    # 500 m the strip x 300–500 × y -100–0; 1,000 m the same strip
    assert coverage.loc["bank", "ring_300_population"] == round(1000 * (circle() / 4) / 60000)  # 130
    assert coverage.loc["bank", "ring_500_population"] == round(1000 * 200 * 100 / 60000)
    assert coverage.loc["bank", "ring_1000_population"] == round(1000 * 200 * 100 / 60000)
    # edge (x 900–1,300 × y -200–0): only the 1,000 m walk reaches it, as its coverage
    assert coverage.loc["edge", "ring_500_population"] == 0
    assert coverage.loc["edge", "ring_1000_population"] == coverage.loc["edge", "covered_population"]
    assert coverage.loc["north", "ring_1000_population"] == 0
    total = result.summaries["total"]
    assert list(total.columns[-3:]) == ["ring_300_population", "ring_500_population", "ring_1000_population"]
    assert total["ring_300_population"].iloc[0] == 130
    assert total["ring_500_population"].iloc[0] == 333


def test_life_circles_are_a_parameter():
    grids, centers, roads = walking_town()
    params = Params(catchment="network").with_request({"life_circles_m": "800, 300"})
    assert params.life_circles_m == (300.0, 800.0)
    result = analyse(grids, centers, None, params, roads=roads)
    assert [c for c in result.summaries["total"].columns if c.startswith("ring_")] == [
        "ring_300_population", "ring_800_population"]
    assert Params().with_request({"life_circles_m": ""}).life_circles_m == ()  # none: no rings
    for bad in ("0", "-5", "a,b", "1,2,3,4,5,6", "60000"):
        with pytest.raises(BadRequest):
            Params().with_request({"life_circles_m": bad})


def test_catchments_collection_holds_the_walk_and_each_ring():
    from geodata.coverage import catchment_frame

    grids, centers, roads = walking_town()
    frame_ = catchment_frame(grids, centers, roads, Params(catchment="network"))
    label = [f"{k}{d:g}" if d is not None else k for k, d in zip(frame_["kind"], frame_["distance_m"])]
    metric = frame_.to_crs(UTM)
    area = {k: shapely.union_all(metric.geometry.values[np.array(label) == k]).area for k in set(label)}
    # one centre walking 1,000 m east along the south road (it stands at the road's west end): the capsule
    assert area["walk"] == pytest.approx(capsule(1000), rel=1e-6)
    for d in (300, 500, 1000):
        assert area[f"ring{d}"] == pytest.approx(capsule(d), rel=1e-6)
    assert frame_["catchment_id"].is_unique
    rings = [d for d in frame_["distance_m"] if d is not None]
    assert rings == sorted(rings, reverse=True)  # the largest drawn first, the nearest on top
    discs = catchment_frame(grids, centers, roads, Params())
    assert discs[["catchment_id", "kind", "level", "center_id", "distance_m"]].values.tolist() == [
        ["disc.c1", "disc", "community", "c1", 1000.0]]
    assert float(discs.to_crs(UTM).area.iloc[0]) == pytest.approx(math.pi * 1000 ** 2, rel=2e-3)


def test_walking_siting_picks_a_site_the_disc_would_not():
    """Three grids, no centre: A (1,000 people) on the north bank at x 400–600, B and C (700 each) on the south
    bank at x 0–200 and 800–1,000, their demand points 25 m from the south road; the bridge is at x 1,500.
    As the crow flies a site in A reaches all three (B and C 621 m away): 2,400 people, the first of the ties.
    On foot a site in A reaches A only (1,000); a site in B walks 800 m along the south road to C: 1,400."""
    from geodata.siting import recommend

    _, _, roads = river_town()
    roads = frame([{"road_id": "south"}, {"road_id": "north"}, {"road_id": "bridge"}],
                  [LineString([(-500, 0), (1500, 0), (3000, 0)]), LineString([(-500, 400), (1500, 400), (3000, 400)]),
                   LineString([(1500, 0), (1500, 400)])])
    grids = frame([grid_row("A", population=1000), grid_row("B", population=700), grid_row("C", population=700)],
                  [box(400, 300, 600, 500), box(0, -150, 200, 0), box(800, -150, 1000, 0)])
    centers = gpd.GeoDataFrame({"center_id": [], "level": []}, geometry=[], crs="EPSG:4326")

    def site(params, solver="greedy"):
        rec = recommend(grids, centers, "community", 1, params, roads=roads, solver=solver)
        assert rec.solver == solver
        at = shapely.Point(rec.sites.geometry.iloc[0].coords[0])
        inside = grids[grids.contains(at)].grid_id.tolist()
        return inside, int(rec.sites.new_population.iloc[0])

    assert site(Params()) == (["A"], 2400) and site(Params(), "mclp")[1] == 2400  # (C ties: the optimum is not one)
    for solver in ("greedy", "mclp"):  # the exact solver walks too
        inside, people = site(Params(catchment="network"), solver)
        assert inside in (["B"], ["C"]) and people == 1400


def test_a_kept_walking_analysis_reads_back_whole_and_a_units_total_sums_it():
    from geodata import kept, summaries

    grids, centers, roads = walking_town()
    params = Params(catchment="network")
    result = analyse(grids, centers, None, params, roads=roads)
    back = kept.from_bytes(kept.to_bytes(result), grids, params)
    for column in ("disc_covered_population", "walk_gap_population", "ring_300_population"):
        assert back.coverage[column].tolist() == result.coverage[column].tolist()
    assert back.summaries["district"].equals(result.summaries["district"])
    row = summaries.rows(result, "total", {"district": "海曙区"}).iloc[0]
    whole = result.summaries["total"].iloc[0]
    assert row["walk_gap_population"] == whole["walk_gap_population"]
    assert row["disc_covered_share"] == whole["disc_covered_share"] and row["covered_share"] == whole["covered_share"]
