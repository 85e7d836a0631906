"""Tests of the deterministic Ningbo demo dataset (geodata.demo)."""

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geodata.demo import DISTRICTS_PATH, Demo, build_demo, load_districts

METRIC = "EPSG:32651"
KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
GRID_COLUMNS = ["grid_id", "name", "grid_type", "district", "street", "community", "population",
                "households", "party_members", "grid_workers", "instructor", "party_branch", "geometry"]
CENTER_COLUMNS = ["center_id", "name", "level", "district", "street", "community", "floor_area_m2", "geometry"]
UNITS = {"district": ["district"], "street": ["district", "street"],
         "community": ["district", "street", "community"]}


@pytest.fixture(scope="module")
def demo() -> Demo:
    return build_demo()  # read-only in every test: built once, it takes a couple of seconds


@pytest.fixture(scope="module")
def grids_m(demo) -> gpd.GeoDataFrame:
    return demo.grids.to_crs(METRIC)


def test_load_districts():
    districts = load_districts()
    assert DISTRICTS_PATH.name == "ningbo_districts.geojson"
    assert list(districts.columns) == ["adcode", "name", "name_en", "geometry"]
    assert len(districts) == 10 and districts.crs.to_epsg() == 4326
    assert "海曙区" in set(districts.name)
    assert shapely.is_valid(districts.geometry.values).all()


def test_columns_and_crs(demo):
    assert list(demo.grids.columns) == GRID_COLUMNS
    assert list(demo.centers.columns) == CENTER_COLUMNS
    for gdf in (demo.districts, demo.grids, demo.centers):
        assert gdf.crs.to_epsg() == 4326


def test_counts(demo):
    grids = demo.grids
    assert len(grids) >= 8000
    assert len(demo.centers) >= 2400
    assert 150 <= len(grids[UNITS["street"]].drop_duplicates()) <= 170
    assert 2400 <= len(grids[UNITS["community"]].drop_duplicates()) <= 2600
    assert set(grids.district) == set(load_districts().name)
    streets = grids.groupby("district").street.nunique()
    assert streets["鄞州区"] >= 18 and streets["慈溪市"] >= 18 and streets["江北区"] <= 10


def test_keys_unique_and_well_formed(demo):
    for ids in (demo.grids.grid_id, demo.centers.center_id):
        assert ids.is_unique
        assert ids.map(lambda s: bool(KEY.match(s))).all()


def test_geometries_valid_typed_oriented_and_rounded(demo):
    for gdf, types in ((demo.districts, {"Polygon", "MultiPolygon"}),
                       (demo.grids, {"Polygon", "MultiPolygon"}), (demo.centers, {"Point"})):
        geoms = gdf.geometry.values
        assert shapely.is_valid(geoms).all()
        assert not shapely.is_empty(geoms).any()
        assert set(gdf.geom_type) <= types
        coords = shapely.get_coordinates(geoms) * 1e6
        assert np.abs(coords - np.rint(coords)).max() < 1e-6
    for gdf in (demo.districts, demo.grids):
        polygons = shapely.get_parts(gdf.geometry.values)
        assert shapely.is_ccw(shapely.get_exterior_ring(polygons)).all()


def test_names_follow_hierarchy(demo):
    grids = demo.grids
    assert grids.street.str.contains(r"(?:街道|镇|乡)$").all()
    assert grids.community.str.contains(r"(?:社区|村)$").all()
    assert (grids.name.str.replace(r"第\d+网格$", "", regex=True) == grids.community).all()
    assert {"月湖街道", "龙观乡"} <= set(grids.loc[grids.district == "海曙区", "street"])
    # a community name is unique within its street, so it belongs to one street only
    assert grids.groupby(UNITS["community"]).street.nunique().max() == 1
    assert (grids.grid_id.str[:6] == grids.district.map(dict(zip(demo.districts.name, demo.districts.adcode)))).all()


def test_grid_attributes(demo):
    grids = demo.grids
    assert set(grids.grid_type) == {"residential", "industrial_park", "commercial_market", "office_building", "other"}
    assert (grids.grid_type == "residential").mean() > 0.7
    for column in ("population", "households", "party_members", "grid_workers"):
        assert pd.api.types.is_integer_dtype(grids[column]) and (grids[column] >= 0).all()
    assert 8e6 <= grids.population.sum() <= 11e6
    assert 2.3 <= grids.population.sum() / grids.households.sum() <= 2.8
    assert 0.03 <= grids.party_members.sum() / grids.population.sum() <= 0.06
    assert 0 < (grids.grid_workers == 0).sum() < 0.05 * len(grids)
    for column, share in (("instructor", 0.02), ("party_branch", 0.01)):
        missing = grids[column].isna()
        assert 0 < missing.mean() < 2 * share
        assert grids[column][missing].map(lambda v: v is None).all()
    assert grids.instructor.dropna().str.len().between(2, 3).all()


def test_industry_and_offices_where_expected(demo):
    share = demo.grids.groupby("district").grid_type.value_counts(normalize=True).unstack(fill_value=0)
    assert share.loc[["北仑区", "慈溪市", "余姚市"], "industrial_park"].min() > share.loc["海曙区", "industrial_park"]
    assert share.loc["海曙区", "office_building"] > share.loc["宁海县", "office_building"]


def test_grids_denser_in_urban_cores(grids_m):
    core = shapely.points(*gpd.GeoSeries.from_xy([121.55], [29.87], crs=4326).to_crs(METRIC).get_coordinates().iloc[0])
    near = shapely.distance(grids_m.geometry.values, core) < 5000
    area = grids_m.area
    assert near.sum() > 300
    assert area[~near].median() > 10 * area[near].median()


def test_grids_inside_their_district(demo, grids_m):
    districts = demo.districts.to_crs(METRIC).set_index("name").geometry
    outside = shapely.area(shapely.difference(grids_m.geometry.values, districts.loc[grids_m.district].values))
    assert outside.max() < 1.0


def test_grids_do_not_overlap(grids_m):
    geoms = grids_m.geometry.values
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    overlap = pd.Series(shapely.area(shapely.intersection(geoms[left], geoms[right])))
    community = (grids_m.district + "/" + grids_m.street + "/" + grids_m.community).to_numpy()
    same = community[left] == community[right]
    assert overlap[same].groupby(community[left][same]).sum().max() < 1.0
    # across communities and districts too: the whole city is one clean tiling
    assert overlap.sum() < 1.0


def test_grids_tile_each_district(demo, grids_m):
    districts = demo.districts.to_crs(METRIC).set_index("name")
    union = grids_m.dissolve("district").area
    error = (union - districts.area.loc[union.index]).abs() / districts.area.loc[union.index]
    assert len(union) == 10 and error.max() < 1e-4


def test_districts_are_the_real_boundaries(demo):
    real = load_districts()
    assert demo.districts.adcode.tolist() == real.adcode.tolist()
    assert shapely.equals_identical(demo.districts.geometry.values, real.geometry.values).all()


def test_centers_inside_the_unit_they_serve(demo):
    centers, grids = demo.centers, demo.grids
    assert set(centers.level) == set(UNITS)
    assert centers.loc[centers.level != "district", "street"].notna().all()
    assert centers.loc[centers.level == "community", "community"].notna().all()
    assert centers.loc[centers.level == "district", ["street", "community"]].isna().all().all()
    hits = gpd.sjoin(centers, grids, predicate="intersects", lsuffix="c", rsuffix="g")
    for level, keys in UNITS.items():
        at = hits[hits.level == level]
        match = np.logical_and.reduce([at[f"{k}_c"] == at[f"{k}_g"] for k in keys])
        served = set(at.index[match])
        assert served == set(centers.index[centers.level == level]), level
        units = centers.loc[centers.level == level, keys].apply(tuple, axis=1)
        assert units.is_unique


def test_some_centres_missing(demo):
    centers, grids = demo.centers, demo.grids
    counts = centers.level.value_counts()
    units = {level: len(grids[keys].drop_duplicates()) for level, keys in UNITS.items()}
    assert counts["district"] == units["district"] - 1
    assert 0.9 * units["street"] <= counts["street"] < units["street"]
    assert 0.9 * units["community"] <= counts["community"] < units["community"]


def test_floor_areas(demo):
    area = demo.centers.groupby("level").floor_area_m2
    for level, (low, high) in {"district": (2000, 5000), "street": (500, 1500), "community": (150, 600)}.items():
        assert low <= area.min()[level] and area.max()[level] <= high


def test_names_of_centres(demo):
    centers = demo.centers
    unit = centers.district.where(centers.level == "district",
                                  centers.street.where(centers.level == "street", centers.community))
    assert (centers.name == unit + "党群服务中心").all()


def test_same_seed_same_output_other_seed_differs(demo):
    again = build_demo()
    for mine, theirs in ((demo.grids, again.grids), (demo.centers, again.centers)):
        pd.testing.assert_frame_equal(mine.drop(columns="geometry"), theirs.drop(columns="geometry"))
        assert shapely.equals_identical(mine.geometry.values, theirs.geometry.values).all()
    other = build_demo(seed=7)
    assert not shapely.equals_identical(demo.grids.geometry.values[:50], other.grids.geometry.values[:50]).all()


def test_install_fills_an_empty_store_once(tmp_path, demo):
    from geodata.demo import install_if_empty
    from geodata.store import open_store

    store = open_store(tmp_path)
    assert install_if_empty(store) is True
    assert {name: store.current(name).features for name in store.layer_names} == {
        "grids": len(demo.grids), "centers": len(demo.centers), "districts": 10}
    assert install_if_empty(store) is False
    assert store.current("grids").version == 1


def test_install_leaves_a_store_with_data_alone(tmp_path, demo):
    from geodata.demo import install_if_empty
    from geodata.store import open_store

    store = open_store(tmp_path)
    store.write("districts", demo.districts.iloc[:1], author="staff")
    assert install_if_empty(store) is False
    assert store.current("grids") is None
