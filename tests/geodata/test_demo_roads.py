"""The demo's fictional roads (geodata.demo_roads): deterministic, valid, walkable, crossing rivers at bridges."""

import numpy as np
import pytest
import shapely

from geodata import network
from geodata.demo import build_demo
from geodata.demo_roads import METRIC, build_roads, rivers_m
from geodata.validate import validate


@pytest.fixture(scope="module")
def demo():
    return build_demo()


@pytest.fixture(scope="module")
def roads(demo):
    return build_roads(demo.grids)


def test_roads_are_valid_and_deterministic(demo, roads):
    report = validate(roads, "roads")
    assert report.ok and len(roads) > 10_000
    assert set(roads.highway) == {"primary", "residential"} and roads.walkable.all()
    again = build_roads(demo.grids)
    assert shapely.equals_identical(again.geometry.values, roads.geometry.values).all()
    assert roads.road_id.is_unique


def test_most_of_the_network_is_one_connected_whole(roads):
    net = network.build(roads.to_crs(METRIC).geometry.values)
    sizes = np.bincount(net.components())
    assert sizes.max() / sizes.sum() > 0.8


def test_rivers_are_crossed_only_at_bridges(roads):
    lines = roads.to_crs(METRIC).geometry.values
    crossing = np.zeros(len(lines), dtype=bool)
    for river in rivers_m():
        crossing |= shapely.intersects(lines, river)
    names = roads.name.fillna("")
    assert crossing.any()
    assert names[crossing].str.contains("桥").all()  # every road over a river is a bridge
    assert names.str.contains("桥").sum() == crossing.sum()


def test_arterials_join_the_urban_cores(roads):
    primary = roads[roads.highway == "primary"]
    assert len(primary) and primary.name.str.contains("演示大道|桥").all()  # avenues, and their bridges
    net = network.build(primary.to_crs(METRIC).geometry.values)
    assert np.bincount(net.components()).max() == len(net.xy)  # one connected whole
