"""Tests of the deterministic Ningbo demo dataset (geodata.demo)."""

import hashlib
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geodata.demo import (DISTRICTS_PATH, PROVINCE_CITIES_PATH, PROVINCE_DISTRICTS_PATH, Demo, build_demo,
                          build_province_demo, load_districts, load_province_cities, load_province_districts)
from geodata.validate import validate

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
    counts = {name: store.current(name).features for name in store.layer_names}
    assert counts.pop("roads") > 10_000  # the fictional walking network (tests/geodata/test_demo_roads.py)
    assert counts == {"grids": len(demo.grids), "centers": len(demo.centers), "districts": 10}
    assert install_if_empty(store) is False
    assert store.current("grids").version == 1


def test_install_leaves_a_store_with_data_alone(tmp_path, demo):
    from geodata.demo import install_if_empty
    from geodata.store import open_store

    store = open_store(tmp_path)
    store.write("districts", demo.districts.iloc[:1], author="staff")
    assert install_if_empty(store) is False
    assert store.current("grids") is None


def digest(demo: Demo) -> str:
    """Attributes and lattice coordinates of every layer: equal digests, equal demos."""
    h = hashlib.sha256()
    for gdf in (demo.districts, demo.grids, demo.centers):
        h.update(gdf.drop(columns="geometry").to_json().encode())
        h.update(np.rint(shapely.get_coordinates(gdf.geometry.values) * 1e6).astype(np.int64).tobytes())
        h.update(shapely.get_num_coordinates(gdf.geometry.values).tobytes())
    return h.hexdigest()


def test_ningbo_demo_unchanged(demo):
    # the province demo shares its code: the Ningbo demo stays exactly what it was
    assert digest(demo) == "a3b5397155b65dd937039f88cdc48cfd0fdbf163c5dffe6877c8e3f6c5db228d"


# --- the Zhejiang files and the province demo ----------------------------------------------------

@pytest.fixture(scope="module")
def province_districts() -> gpd.GeoDataFrame:
    return load_province_districts()


def test_zhejiang_files(province_districts):
    cities = load_province_cities()
    assert len(cities) == 11 and cities.name.is_unique and "宁波市" in set(cities.name)
    assert len(province_districts) == 90
    assert province_districts.adcode.is_unique and province_districts.name.is_unique
    assert list(province_districts.columns) == ["adcode", "name", "name_en", "city", "geometry"]
    assert set(province_districts.city) == set(cities.name)
    assert province_districts.name_en.str.fullmatch(r"[A-Z][a-z']+").all()
    city_code = province_districts.city.map(dict(zip(cities.name, cities.adcode)))
    assert (province_districts.adcode.str[:4] == city_code.str[:4]).all()
    for gdf in (province_districts, cities):
        assert gdf.crs.to_epsg() == 4326 and shapely.is_valid(gdf.geometry.values).all()
        coords = shapely.get_coordinates(gdf.geometry.values) * 1e6
        assert np.abs(coords - np.rint(coords)).max() < 1e-6
    for path in (PROVINCE_DISTRICTS_PATH, PROVINCE_CITIES_PATH):
        assert path.stat().st_size < 2e6


def test_zhejiang_districts_tile_their_cities(province_districts):
    # simplified as one coverage: neighbours share borders exactly, never overlap
    assert shapely.coverage_is_valid(province_districts.geometry.values)
    districts = province_districts.to_crs(METRIC)
    cities = load_province_cities().to_crs(METRIC).set_index("name").geometry
    outside = shapely.area(shapely.difference(districts.geometry.values, cities.loc[districts.city].values))
    assert (outside / districts.area.to_numpy()).max() < 0.005
    union = districts.geometry.groupby(districts.city).agg(lambda s: shapely.coverage_union_all(s.values))
    error = np.abs(shapely.area(union.values) - cities.loc[union.index].area.to_numpy()) / cities.loc[union.index].area
    assert error.max() < 0.005


def test_zhejiang_ningbo_districts_are_the_ningbo_file_simplified(province_districts):
    ningbo = load_districts().to_crs(METRIC).set_index("adcode")
    mine = province_districts[province_districts.city == "宁波市"].to_crs(METRIC).set_index("adcode")
    assert sorted(mine.index) == sorted(ningbo.index)
    assert (mine.name == ningbo.name.loc[mine.index]).all() and (mine.name_en == ningbo.name_en.loc[mine.index]).all()
    assert (np.abs(mine.area / ningbo.area.loc[mine.index] - 1) < 0.001).all()  # same CRS, same place
    assert shapely.hausdorff_distance(mine.geometry.values, ningbo.geometry.loc[mine.index].values).max() < 150


@pytest.fixture(scope="module")
def province() -> Demo:
    return build_province_demo()  # read-only; about half a minute


@pytest.mark.slow
def test_province_counts(province):
    grids, centers = province.grids, province.centers
    assert list(grids.columns) == GRID_COLUMNS[:3] + ["city"] + GRID_COLUMNS[3:]
    assert list(centers.columns) == CENTER_COLUMNS[:3] + ["city"] + CENTER_COLUMNS[3:]
    assert 83_000 <= len(grids) <= 87_000 and 22_500 <= len(centers) <= 25_500
    assert grids.city.nunique() == 11 and grids.district.nunique() == 90
    assert 1_250 <= len(grids[["district", "street"]].drop_duplicates()) <= 1_450
    assert 22_000 <= len(grids[["district", "street", "community"]].drop_duplicates()) <= 25_000
    assert 55e6 <= grids.population.sum() <= 70e6
    for ids in (grids.grid_id, centers.center_id):
        assert ids.is_unique and ids.map(lambda s: bool(KEY.match(s))).all()
    counts = centers.level.value_counts()
    assert counts["district"] == 89  # one district lacks its centre, as in Ningbo
    assert grids.street.str.contains(r"(?:街道|镇|乡)$").all() and grids.community.str.contains(r"(?:社区|村)$").all()
    # Ningbo's districts keep their real streets
    assert {"月湖街道", "龙观乡"} <= set(grids.loc[grids.district == "海曙区", "street"])


@pytest.mark.slow
def test_province_city_on_every_grid_and_centre(province):
    city_of = dict(zip(province.districts.name, province.districts.city))
    for gdf in (province.grids, province.centers):
        assert gdf.city.notna().all()
        assert (gdf.city == gdf.district.map(city_of)).all()
    for name in ("districts", "grids", "centers"):  # validated as an upload, city kept
        report = validate(getattr(province, name), name)
        assert report.ok, report.errors[:3]
        assert "city" in report.data


@pytest.mark.slow
def test_province_grids_tile_their_districts(province):
    grids, districts = province.grids, province.districts.set_index("name").geometry
    parents = districts.loc[grids.district].values
    shapely.prepare(parents)
    assert shapely.covered_by(grids.geometry.values, parents).all()
    # with the districts one coverage, no two grids of the province overlap
    assert grids.geometry.groupby(grids.district).agg(lambda s: shapely.coverage_is_valid(s.values)).all()
    grids_m = grids.to_crs(METRIC)
    union = grids_m.geometry.groupby(grids_m.district).agg(lambda s: shapely.coverage_union_all(s.values))
    area = province.districts.to_crs(METRIC).set_index("name").area.loc[union.index]
    assert (np.abs(shapely.area(union.values) - area) / area).max() < 1e-4


@pytest.mark.slow
def test_province_centres_inside_the_unit_they_serve(province):
    centers, grids = province.centers, province.grids
    hits = gpd.sjoin(centers, grids, predicate="intersects", lsuffix="c", rsuffix="g")
    for level, keys in UNITS.items():
        at = hits[hits.level == level]
        match = np.logical_and.reduce([at[f"{k}_c"] == at[f"{k}_g"] for k in ["city", *keys]])
        assert set(at.index[match]) == set(centers.index[centers.level == level]), level


@pytest.mark.slow
def test_province_is_deterministic(province):
    # the same frames on every run (and on every machine with the pinned libraries)
    assert digest(province) == "8d224fd5812d0c40882e8a57719cefdaf88487c5a8b6fbbbbb3edb58d2522072"
