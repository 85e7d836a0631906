"""Downloads: every format round-trips a small hand-made layer, read back with pyogrio (GDAL) or pandas."""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from xml.etree import ElementTree

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely import MultiPolygon, box

from geodata import downloads
from geodata.downloads import FORMATS, shapefile_field_names, to_format
from geodata.io import _normalise_names, read_upload
from geodata.schema import DERIVED, LAYERS
from geodata.validate import validate

# pyogrio reads bytes from an extension-less /vsimem/ file, which GDAL remarks on for GeoPackages
pytestmark = pytest.mark.filterwarnings("ignore:.*non conformant file extension:RuntimeWarning")

INTEGERS = ["population", "households", "party_members", "grid_workers"]
TEXT = ["grid_id", "name", "grid_type", "district", "street", "community", "instructor", "party_branch"]


def layer() -> gpd.GeoDataFrame:
    """Three grids as stored: nullable integers with a gap, Chinese text with a comma and quotes,
    a MultiPolygon, coordinates that are not round numbers, and an extra nested field kept from an upload."""
    x, y = 121.543217891, 29.861234567
    return gpd.GeoDataFrame({
        "grid_id": ["HS-001", "HS-002", "JB-001"],
        "name": ["月湖第一网格", '白云,"二号"网格', "甬江网格"],
        "grid_type": ["residential", "industrial_park", "office_building"],
        "district": ["海曙区", "海曙区", "江北区"],
        "street": ["月湖街道", "白云街道", "甬江街道"],
        "community": ["青石社区", "白云社区", "湾头社区"],
        "population": pd.array([1234, None, 2_000_000_000], dtype="Int64"),  # the last beyond 32 bits
        "households": pd.array([400, 0, 7], dtype="Int64"),
        "party_members": pd.array([35, 12, None], dtype="Int64"),
        "grid_workers": pd.array([2, 1, 3], dtype="Int64"),
        "instructor": ["王芳", None, ""],
        "party_branch": ["月湖社区第一党支部", "白云社区党支部", None],
        "survey": [{"year": 2024, "by": "街道办"}, None, {"tags": ["老旧小区"]}],
    }, geometry=[
        box(x, y, x + 0.0071, y + 0.0063),
        MultiPolygon([box(x + 0.01, y, x + 0.015, y + 0.005), box(x + 0.016, y, x + 0.019, y + 0.004)]),
        box(x + 0.03, y + 0.01, x + 0.0371, y + 0.0163),
    ], crs="EPSG:4326")


def same_shapes(a, b) -> bool:
    """The same polygons (a Polygon may come back as a one-part MultiPolygon), to 1e-9°."""
    return bool((shapely.get_num_geometries(a) == shapely.get_num_geometries(b)).all()
                and shapely.hausdorff_distance(a, b).max() < 1e-9)


def nullable(values) -> list:
    return [None if pd.isna(v) else v for v in values]


def text(values) -> list:
    """Text with empty and null alike: a DBF or a KML <SimpleData> cannot tell them apart."""
    return [v if isinstance(v, str) and v else None for v in values]


def zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --- GeoPackage ---------------------------------------------------------------------------

def test_gpkg_round_trips_values_integer_types_text_and_coordinates():
    expected = layer()
    data = to_format(expected, "gpkg", "grids")
    assert data.startswith(b"SQLite format 3\x00") and data[68:72] == b"GPKG"
    assert [name for name, _ in pyogrio.list_layers(data)] == ["grids"]
    info = pyogrio.read_info(data, layer="grids")
    assert info["crs"] == "EPSG:4326" and info["geometry_type"] == "MultiPolygon"
    types = dict(zip(info["fields"], info["dtypes"]))
    assert all(types[c] == "int64" for c in INTEGERS), types  # never float: 1000, not 1000.0
    got = pyogrio.read_dataframe(data, layer="grids")
    for column in TEXT:
        assert nullable(got[column]) == nullable(expected[column]), column
    for column in INTEGERS:
        assert nullable(got[column]) == nullable(expected[column]), column
    assert [json.loads(v) if isinstance(v, str) else None for v in got["survey"]] == expected["survey"].tolist()
    assert same_shapes(got.geometry.values, expected.geometry.values)


def test_gpkg_names_the_layer_after_the_collection_and_describes_it():
    data = to_format(layer(), "gpkg", "coverage")
    assert [name for name, _ in pyogrio.list_layers(data)] == ["coverage"]
    assert data[60:64] == (10200).to_bytes(4, "big")  # GeoPackage 1.2: what every GDAL/QGIS/ArcGIS reads


# --- zipped Shapefile -----------------------------------------------------------------------

def test_shapefile_zip_has_its_parts_with_utf8_cpg_and_wgs84_prj():
    members = zip_members(to_format(layer(), "zip", "grids"))
    assert sorted(members) == ["grids.cpg", "grids.dbf", "grids.prj", "grids.shp", "grids.shx"]
    assert members["grids.cpg"].strip() == b"UTF-8"
    assert b"WGS_1984" in members["grids.prj"] or b"WGS 84" in members["grids.prj"]


def test_shapefile_round_trips_with_short_names_and_integer_fields():
    expected = layer()
    data = to_format(expected, "zip", "grids")
    info = pyogrio.read_info(data)
    assert info["layer_name"] == "grids" and info["crs"] == "EPSG:4326"
    types = dict(zip(info["fields"], info["dtypes"]))
    assert list(types) == ["grid_id", "name", "grid_type", "district", "street", "community", "population",
                           "households", "party_memb", "grid_worke", "instructor", "party_bran", "survey"]
    assert types["households"] == "int32"  # DBF N(9,0): an integer ("Long") in ArcGIS and QGIS alike
    assert types["population"] == "int64"  # 2,000,000,000 needs more than 9 digits: still an integer
    got = pyogrio.read_dataframe(data)
    assert got["name"].tolist() == expected["name"].tolist()  # UTF-8 Chinese, comma and quotes intact
    assert got["party_bran"].tolist()[:2] == expected["party_branch"].tolist()[:2]
    assert [int(v) for v in got["households"]] == [400, 0, 7]
    assert int(got["population"][2]) == 2_000_000_000 and pd.isna(got["party_memb"][2])
    assert json.loads(got["survey"][0]) == {"year": 2024, "by": "街道办"}
    assert same_shapes(got.geometry.values, expected.geometry.values)


def test_a_downloaded_shapefile_reuploads_with_every_field_back():
    expected = layer()
    parsed = read_upload(to_format(expected, "zip", "grids"), "grids.zip", "grids")
    assert parsed.encoding == "UTF-8 (.cpg)"
    assert set(parsed.notes) == {"renamed party_memb → party_members", "renamed grid_worke → grid_workers",
                                 "renamed party_bran → party_branch"}
    report = validate(parsed.data, "grids")
    assert report.ok, report.errors
    assert [w.field for w in report.warnings] == ["survey"]  # the extra field, as on its first upload
    for column in TEXT:
        assert text(report.data[column]) == text(expected[column]), column
    for column in INTEGERS:
        assert nullable(report.data[column]) == nullable(expected[column]), column
    assert same_shapes(report.data.geometry.values, expected.geometry.values)


def test_shapefile_names_of_extra_fields_never_pass_for_schema_fields():
    extras = pd.DataFrame({"party_memb_old": ["a", "b", "c"], "grid_worke": ["d", "e", "f"],
                           "population_2020": pd.array([1, 2, 3], dtype="Int64"), "NAME": ["x", "y", "z"],
                           "备注说明文字": ["甲", "乙", "丙"]})
    gdf = gpd.GeoDataFrame(pd.concat([extras, pd.DataFrame(layer())], axis=1), crs=4326)  # extras first
    names = shapefile_field_names([c for c in gdf.columns if c != "geometry"], "grids")
    assert names["grid_workers"] == "grid_worke" and names["grid_worke"] == "grid_wor_1"
    assert names["population"] == "population" and names["population_2020"] == "populati_1"
    assert names["party_members"] == "party_memb" and names["party_memb_old"] == "party_me_1"
    assert names["name"] == "name" and names["NAME"] == "NAME_1"
    parsed = read_upload(to_format(gdf, "zip", "grids"), "grids.zip", "grids")
    data = parsed.data
    assert nullable(data["population"]) == [1234, None, 2_000_000_000]  # not the extra's 1, 2, 3
    assert [int(v) for v in data["populati_1"]] == [1, 2, 3]
    assert nullable(data["party_members"]) == [35, 12, None] and data["party_me_1"].tolist() == ["a", "b", "c"]
    assert data["name"].tolist() == layer()["name"].tolist()
    assert nullable(data["grid_workers"]) == [2, 1, 3] and data["grid_wor_1"].tolist() == ["d", "e", "f"]
    assert data["备注说"].tolist() == ["甲", "乙", "丙"]  # cut at a character, never inside one


@pytest.mark.parametrize("name", [*LAYERS, *DERIVED])
def test_every_layer_shapefile_names_are_unique_and_read_back_as_the_schema(name):
    spec = LAYERS.get(name) or DERIVED[name]
    names = shapefile_field_names(spec.field_names, name)
    assert all(len(short.encode()) <= 10 for short in names.values())
    assert len({short.lower() for short in names.values()}) == len(names)
    assert all(short == field[:10] for field, short in names.items())  # the plain cut, as GDAL would
    if name in LAYERS:  # the upload reader maps each back
        frame = gpd.GeoDataFrame({short: [] for short in names.values()}, geometry=[])
        assert _normalise_names(frame, spec, []).columns.tolist()[:-1] == spec.field_names


def test_shapefile_names_cut_chinese_names_at_a_character():
    names = shapefile_field_names(["备注说明文字", "备注说明"], "grids")
    assert names == {"备注说明文字": "备注说", "备注说明": "备注_1"}
    assert all(len(v.encode()) <= 10 for v in names.values())


def test_shapefile_leaves_no_temporary_files(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert to_format(layer(), "zip", "grids").startswith(b"PK")
    assert list(tmp_path.iterdir()) == []


# --- CSV ------------------------------------------------------------------------------------

def test_csv_is_utf8_with_bom_one_row_per_feature_and_wkt_last():  # named WKT: GDAL's geometry column
    expected = layer()
    data = to_format(expected, "csv", "grids")
    assert data.startswith(b"\xef\xbb\xbf") and not data.startswith(b"\xef\xbb\xbf\xef\xbb\xbf")
    got = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype={"population": "Int64"})
    assert got.columns.tolist() == [c for c in expected.columns if c != "geometry"] + ["WKT"]
    assert len(got) == 3
    assert got["name"].tolist() == expected["name"].tolist()
    assert nullable(got["population"]) == [1234, None, 2_000_000_000]
    assert json.loads(got["survey"][0]) == {"year": 2024, "by": "街道办"}
    assert same_shapes(shapely.from_wkt(got["WKT"].to_numpy()), expected.geometry.values)


def test_csv_numbers_are_unquoted_integers():
    text = to_format(layer(), "csv", "grids").decode("utf-8-sig")
    first, second = text.splitlines()[1:3]
    assert first.startswith("HS-001,月湖第一网格,residential,海曙区,月湖街道,青石社区,1234,400,35,2,王芳,")
    assert ',"白云,""二号""网格",' in second and ",,0,12,1," in second  # null population: empty
    assert not re.search(r"\d\.0,", text.split("POLYGON")[0])  # no 1234.0


# --- KML ------------------------------------------------------------------------------------

def test_kml_opens_with_gdal_named_after_the_layer_with_names_and_extended_data():
    expected = layer()
    data = to_format(expected, "kml", "grids")
    info = pyogrio.read_info(data, force_feature_count=True)
    assert info["driver"] == "KML" and info["layer_name"] == "grids" and info["features"] == 3
    assert info["crs"] == "EPSG:4326"
    text = data.decode("utf-8")
    assert text.count("<Placemark") == 3 and "<name>月湖第一网格</name>" in text
    assert '<SimpleField name="households" type="int">' in text
    assert '<SimpleData name="party_branch">月湖社区第一党支部</SimpleData>' in text
    got = pyogrio.read_dataframe(data)
    assert same_shapes(got.geometry.values, expected.geometry.values)


def test_kml_extended_data_reads_back_through_gridmaps_reader():
    expected = layer()
    parsed = read_upload(to_format(expected, "kml", "grids"), "grids.kml", "grids")
    assert "renamed Name → name" in parsed.notes
    report = validate(parsed.data, "grids")
    assert report.ok, report.errors
    for column in TEXT:
        assert text(report.data[column]) == text(expected[column]), column
    for column in INTEGERS:
        assert nullable(report.data[column]) == nullable(expected[column]), column
    assert json.loads(report.data["survey"][2]) == {"tags": ["老旧小区"]}
    assert same_shapes(report.data.geometry.values, expected.geometry.values)


@pytest.mark.parametrize("name, field", [("streets", "street"), ("communities", "community"), ("gaps", "gap_id")])
def test_kml_names_placemarks_by_the_layers_name_field(name, field):
    gdf = gpd.GeoDataFrame({field: ["月湖街道"], "district": ["海曙区"]}, geometry=[box(0, 0, 1, 1)], crs=4326)
    assert "<name>月湖街道</name>" in to_format(gdf, "kml", name).decode("utf-8")


HOSTILE_NAMES = ["<img src=x onerror=alert(1)>", 'say "hi"', "a b", "1x", "&amp;", "中文名"]


def test_kml_is_well_formed_xml_whatever_the_field_names_and_text():
    """GDAL writes field names into attributes unescaped: a name like <img …> made the file unreadable."""
    values = ["]]><x>", "a\x00b", "c\x01\x1fd", "e\ufffef", "tab\tok", "<![CDATA[x]]>"]
    gdf = gpd.GeoDataFrame({"center_id": ["c1"], "name": ["x\x02y"], **{n: [v] for n, v in zip(HOSTILE_NAMES, values)},
                            "x\x01y": [1]}, geometry=[shapely.Point(121.5, 29.8)], crs=4326)
    data = to_format(gdf, "kml", "centers")
    root = ElementTree.fromstring(data)  # well-formed
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    fields = [e.get("name") for e in root.iterfind(".//k:SimpleField", ns)]
    assert fields == ["center_id", *HOSTILE_NAMES, "x\ufffdy"]
    data_values = {e.get("name"): e.text for e in root.iterfind(".//k:SimpleData", ns)}
    assert [data_values[n] for n in HOSTILE_NAMES] == ["]]><x>", "a\ufffdb", "c\ufffd\ufffdd", "e\ufffdf", "tab\tok",
                                                       "<![CDATA[x]]>"]
    assert root.find(".//k:Placemark/k:name", ns).text == "x\ufffdy"
    got = read_upload(data, "centers.kml", "centers").data  # and gridmap's reader has every name back
    assert set(HOSTILE_NAMES) <= set(got.columns) and got[HOSTILE_NAMES[0]][0] == "]]><x>"


# --- all formats ----------------------------------------------------------------------------

def test_geojson_keys_features_by_the_layers_key():
    doc = json.loads(to_format(layer(), "geojson", "grids"))
    assert [f["id"] for f in doc["features"]] == ["HS-001", "HS-002", "JB-001"]
    assert doc["features"][0]["properties"]["survey"] == {"year": 2024, "by": "街道办"}  # nested as it is


@pytest.mark.parametrize("fmt", ["gpkg", "zip", "kml"])
def test_other_crs_are_written_as_wgs84(fmt):
    expected = layer()
    data = to_format(expected.to_crs(32651), fmt, "grids")  # UTM 51N metres in, lon/lat out
    got = pyogrio.read_dataframe(data)
    assert pyogrio.read_info(data)["crs"] == "EPSG:4326"
    assert shapely.hausdorff_distance(got.geometry.values, expected.geometry.values).max() < 1e-7


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "csv"])
def test_an_empty_layer_is_a_valid_empty_file(fmt):
    empty = validate(layer().iloc[:0], "grids").data
    data = to_format(empty, fmt, "grids")
    assert pyogrio.read_info(data, force_feature_count=True)["features"] == 0


def test_an_empty_layer_is_a_csv_header():
    empty = validate(layer().iloc[:0].drop(columns="survey"), "grids").data
    assert to_format(empty, "csv", "grids").decode("utf-8-sig").strip() == ",".join(LAYERS["grids"].field_names
                                                                                    + ["WKT"])


def test_points_layers_stay_points():
    gdf = gpd.GeoDataFrame({"center_id": ["c1"], "name": ["月湖中心"], "floor_area_m2": pd.array([350.5])},
                           geometry=[shapely.Point(121.55, 29.87)], crs="EPSG:4326")
    for fmt in ("gpkg", "zip", "kml"):
        data = to_format(gdf, fmt, "centers")
        assert pyogrio.read_info(data)["geometry_type"] == "Point", fmt
        assert read_upload(data, f"centers.{fmt}", "centers").data["floor_area_m2"][0] == 350.5, fmt


def test_an_unknown_format_is_refused_naming_the_formats():
    with pytest.raises(ValueError, match="gpkg, zip, csv, kml"):
        to_format(layer(), "shp", "grids")
    assert list(downloads.FORMATS) == ["geojson", "gpkg", "zip", "csv", "kml"]


# --- CRS, geometry type and GIS-readable CSV (issue #17) -------------------------------------

def test_csv_geometry_column_is_wkt_with_every_polygon_a_multipolygon():
    text = to_format(layer(), "csv", "grids").decode("utf-8-sig")
    table = pd.read_csv(io.StringIO(text))
    assert table.columns[-1] == "WKT" and "lon" not in table.columns
    assert all(w.startswith("MULTIPOLYGON (((") for w in table["WKT"])


def test_a_property_named_wkt_steps_aside_for_the_geometry():
    gdf = layer()
    gdf["wkt"] = "an upload's own column"
    table = pd.read_csv(io.BytesIO(to_format(gdf, "csv", "grids")), encoding="utf-8-sig")
    assert table["wkt_1"].tolist() == ["an upload's own column"] * 3 and table.columns[-1] == "WKT"


def test_point_csv_has_lon_lat_before_wkt_and_keeps_them_in_wgs84():
    gdf = gpd.GeoDataFrame({"center_id": ["c1"], "lon": ["an upload's own"]}, geometry=[shapely.Point(121.55, 29.87)],
                           crs="EPSG:4326")
    table = pd.read_csv(io.BytesIO(to_format(gdf, "csv", "centers", "EPSG:4549")), encoding="utf-8-sig")
    assert table.columns.tolist() == ["center_id", "lon", "lon_1", "lat", "WKT"]
    assert (table["lon_1"][0], table["lat"][0]) == (121.55, 29.87)
    easting, northing = shapely.from_wkt(table["WKT"][0]).coords[0]  # files: easting first
    assert 600_000 < easting < 700_000 and 3_000_000 < northing < 3_500_000


def test_geojson_in_another_crs_names_it_before_the_features():
    data = to_format(layer(), "geojson", "grids", "http://www.opengis.net/def/crs/EPSG/0/4490")
    assert data.startswith(b'{"type":"FeatureCollection","crs":{"type":"name","properties":'
                           b'{"name":"urn:ogc:def:crs:EPSG::4490"}},"features":[')
    doc = json.loads(data)
    assert {f["geometry"]["type"] for f in doc["features"]} == {"MultiPolygon"}
    assert pyogrio.read_info(data)["crs"] == "EPSG:4490"
    assert "crs" not in json.loads(to_format(layer(), "geojson", "grids"))  # RFC 7946 in WGS84


@pytest.mark.parametrize("fmt", ["gpkg", "zip"])
def test_files_in_a_gauss_kruger_zone_say_so(fmt):
    data = to_format(layer(), fmt, "grids", "EPSG:4550")
    assert pyogrio.read_info(data)["crs"] == "EPSG:4550"
    assert shapely.total_bounds(pyogrio.read_dataframe(data).geometry.values)[0] > 200_000  # easting first


def test_kml_in_another_crs_is_refused():
    with pytest.raises(downloads.BadRequest):
        to_format(layer(), "kml", "grids", "EPSG:4549")
