"""Reading uploads: every format round-trips, Chinese GIS habits are handled, hostile files are refused."""

from __future__ import annotations

import http.server
import io
import json
import stat
import struct
import threading
import warnings
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely import Point, box

from geodata.crs import wgs84_to_bd09, wgs84_to_gcj02
from geodata.errors import BadRequest, TooLarge, Unprocessable, UnsupportedMediaType
from geodata.io import SKIPPED_DRIVERS, Limits, UploadOptions, harden_gdal, read_upload

TEXT = ["grid_id", "name", "grid_type", "district", "street", "community", "instructor", "party_branch"]
NUMBERS = ["population", "households", "party_members", "grid_workers"]
VRT = (b'<OGRVRTDataSource><OGRVRTLayer name="passwd"><SrcDataSource>CSV:/etc/passwd</SrcDataSource>'
       b"<SrcLayer>passwd</SrcLayer></OGRVRTLayer></OGRVRTDataSource>")


def grids(n: int = 3) -> gpd.GeoDataFrame:
    """A small grids layer in Haishu and Jiangbei, Ningbo, WGS84."""
    rows = range(n)
    return gpd.GeoDataFrame({
        "grid_id": [f"HS-{i:03d}" for i in rows],
        "name": [f"月湖社区第{i + 1}网格" for i in rows],
        "grid_type": ["residential", "industrial_park", "commercial_market"][:1] * n,
        "district": ["海曙区"] * n,
        "street": ["月湖街道"] * n,
        "community": ["月湖社区"] * n,
        "population": [1200 + i for i in rows],
        "households": [400 + i for i in rows],
        "party_members": [35 + i for i in rows],
        "grid_workers": [2] * n,
        "instructor": ["王芳"] * n,
        "party_branch": ["月湖社区第一党支部"] * n,
    }, geometry=[box(121.54 + 0.01 * i, 29.86, 121.548 + 0.01 * i, 29.867) for i in rows], crs="EPSG:4326")


def assert_same_grids(parsed, expected, tolerance=1e-9):
    data = parsed.data
    assert isinstance(data.index, pd.RangeIndex) and data.geometry.name == "geometry"
    assert data.crs.to_epsg() == 4326
    for column in TEXT:
        assert data[column].tolist() == expected[column].tolist(), column
    for column in NUMBERS:
        assert [int(v) for v in data[column]] == expected[column].tolist(), column
    distances = shapely.hausdorff_distance(data.geometry.values, expected.geometry.values)
    assert distances.max() < tolerance


def quiet_to_file(gdf, path, **kwargs):
    with warnings.catch_warnings():  # the Shapefile driver's "truncated/laundered field name" warnings
        warnings.simplefilter("ignore")
        gdf.to_file(path, **kwargs)


def shapefile_zip(tmp_path, gdf, *, encoding="UTF-8", drop=(), folder="", name="grids", prj=True,
                  compression=zipfile.ZIP_DEFLATED, extra=None) -> bytes:
    out = tmp_path / "shp"
    out.mkdir(exist_ok=True)
    quiet_to_file(gdf, out / f"{name}.shp", encoding=encoding)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for path in sorted(out.iterdir()):
            if path.suffix.lower() not in drop and (prj or path.suffix != ".prj"):
                archive.write(path, folder + path.name)
        for member, content in (extra or {}).items():
            archive.writestr(member, content)
    return buffer.getvalue()


def file_bytes(tmp_path, gdf, driver, suffix, **kwargs) -> bytes:
    path = tmp_path / f"grids{suffix}"
    quiet_to_file(gdf, path, driver=driver, **kwargs)
    return path.read_bytes()


def to_4549(gdf):
    forward = Transformer.from_crs(4326, 4549, always_xy=True)
    projected = shapely.transform(gdf.geometry.values, lambda c: np.column_stack(forward.transform(c[:, 0], c[:, 1])))
    return gpd.GeoDataFrame(gdf.drop(columns="geometry"), geometry=projected, crs=4549)


def geojson_bytes(features, **members) -> bytes:
    return json.dumps({"type": "FeatureCollection", **members, "features": features}).encode()


def point_feature(x, y, **props):
    return {"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": [x, y]}}


def zip_with(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            info = zipfile.ZipInfo(name)
            if name == symlink:
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


# --- every format round-trips ------------------------------------------------------------------


def test_geojson_round_trip(tmp_path):
    parsed = read_upload(file_bytes(tmp_path, grids(), "GeoJSON", ".geojson"), "grids.geojson", "grids")
    assert parsed.format == "geojson" and parsed.encoding is None
    assert_same_grids(parsed, grids())


def test_shapefile_round_trip_maps_truncated_names_back(tmp_path):
    parsed = read_upload(shapefile_zip(tmp_path, grids()), "grids.zip", "grids")
    assert parsed.format == "shapefile" and parsed.source_crs == "EPSG:4326"
    assert parsed.encoding == "UTF-8 (.cpg)"
    assert_same_grids(parsed, grids())
    assert {"renamed party_memb → party_members", "renamed grid_worke → grid_workers",
            "renamed party_bran → party_branch"} <= set(parsed.notes)
    assert not {"party_memb", "grid_worke", "party_bran"} & set(parsed.data.columns)


def test_geopackage_round_trip(tmp_path):
    parsed = read_upload(file_bytes(tmp_path, grids(), "GPKG", ".gpkg", layer="grids"), "grids.gpkg", "grids")
    assert parsed.format == "gpkg" and parsed.source_crs == "EPSG:4326"
    assert_same_grids(parsed, grids())


def test_kml_round_trip_restores_name_from_placemark_name(tmp_path):
    parsed = read_upload(file_bytes(tmp_path, grids(), "KML", ".kml"), "grids.kml", "grids")
    assert parsed.format == "kml" and parsed.source_crs == "EPSG:4326"
    assert_same_grids(parsed, grids(), tolerance=1e-7)
    assert "renamed Name → name" in parsed.notes and "Description" not in parsed.data.columns


def test_kml_extended_data_of_a_hand_written_file():
    kml = """<?xml version="1.0" encoding="UTF-8"?>
<!-- exported by hand -->
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Folder><name>centers</name>
<Placemark><name>鼓楼街道党群服务中心</name><ExtendedData>
  <Data name="center_id"><value>C-01</value></Data><Data name="level"><value>street</value></Data>
</ExtendedData><Point><coordinates>121.5447,29.8756,0</coordinates></Point></Placemark>
</Folder></Document></kml>""".encode()
    data = read_upload(kml, "centers.kml", "centers").data
    assert data.loc[0, "name"] == "鼓楼街道党群服务中心" and data.loc[0, "center_id"] == "C-01"
    assert data.loc[0, "level"] == "street" and data.geometry[0].distance(Point(121.5447, 29.8756)) < 1e-9


def test_kml_layer_with_ambiguous_placemarks_is_422():
    placemark = ('<Placemark><name>同名</name><ExtendedData><Data name="grid_id"><value>{}</value></Data>'
                 '</ExtendedData><Point><coordinates>121.5,29.8</coordinates></Point></Placemark>')
    kml = ('<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Folder><name>grids</name>' + placemark.format("a")
           + '</Folder><Folder><name>grids</name>' + placemark.format("b") + "</Folder></Document></kml>").encode()
    with pytest.raises(Unprocessable) as caught:
        read_upload(kml, "grids.kml", "grids")
    assert "grids" in caught.value.message


# --- Chinese desktop GIS Shapefiles ----------------------------------------------------------


def test_gbk_shapefile_without_cpg_in_cgcs2000_gauss_kruger(tmp_path):
    upload = shapefile_zip(tmp_path, to_4549(grids()), encoding="GBK", drop={".cpg"})
    assert "grids.cpg" not in zipfile.ZipFile(io.BytesIO(upload)).namelist()
    parsed = read_upload(upload, "网格.zip", "grids")
    assert parsed.encoding == "GBK (detected)"
    assert parsed.source_crs == "EPSG:4549"
    assert_same_grids(parsed, grids(), tolerance=1e-6)


def test_utf8_cpg_shapefile_in_cgcs2000_gauss_kruger(tmp_path):
    upload = shapefile_zip(tmp_path, to_4549(grids()), encoding="UTF-8")
    assert zipfile.ZipFile(io.BytesIO(upload)).read("grids.cpg").strip() == b"UTF-8"
    parsed = read_upload(upload, "grids.zip", "grids")
    assert (parsed.encoding, parsed.source_crs) == ("UTF-8 (.cpg)", "EPSG:4549")
    assert_same_grids(parsed, grids(), tolerance=1e-6)


def test_utf8_shapefile_without_cpg_is_detected(tmp_path):
    parsed = read_upload(shapefile_zip(tmp_path, grids(), drop={".cpg"}), "grids.zip", "grids")
    assert parsed.encoding == "UTF-8 (detected)"
    assert_same_grids(parsed, grids())


def test_encoding_option_is_honoured(tmp_path):
    upload = shapefile_zip(tmp_path, grids(), encoding="GBK", drop={".cpg"})
    parsed = read_upload(upload, "grids.zip", "grids", UploadOptions(encoding="GB18030"))
    assert parsed.encoding == "GB18030 (given)"
    assert_same_grids(parsed, grids())
    with pytest.raises(Unprocessable, match="not UTF-8"):  # given, so not detected: GBK bytes are not UTF-8
        read_upload(upload, "grids.zip", "grids", UploadOptions(encoding="UTF-8"))


def test_cpg_wins_over_the_encoding_option_and_code_pages_are_understood(tmp_path):
    upload = shapefile_zip(tmp_path, grids(), encoding="GBK", drop={".cpg"}, extra={"grids.cpg": b"936\r\n"})
    parsed = read_upload(upload, "grids.zip", "grids", UploadOptions(encoding="UTF-8"))
    assert parsed.encoding == "GBK (.cpg)"
    assert any("encoding UTF-8 not used" in note for note in parsed.notes)
    assert_same_grids(parsed, grids())


def test_undecodable_dbf_asks_for_the_encoding(tmp_path):
    latin = grids(1).assign(name="Þórsmörk ÿÿ", instructor="Ýmir")  # 0xFF bytes are neither UTF-8 nor GBK
    upload = shapefile_zip(tmp_path, latin, encoding="ISO-8859-1", drop={".cpg"})
    with pytest.raises(Unprocessable, match="give encoding"):
        read_upload(upload, "grids.zip", "grids")
    parsed = read_upload(upload, "grids.zip", "grids", UploadOptions(encoding="latin-1"))
    assert parsed.data["name"].tolist() == ["Þórsmörk ÿÿ"] and parsed.encoding == "ISO8859-1 (given)"


def test_cpg_naming_no_known_encoding_falls_back_to_detection(tmp_path):
    upload = shapefile_zip(tmp_path, grids(), encoding="GBK", drop={".cpg"}, extra={"grids.cpg": b"base64"})
    parsed = read_upload(upload, "grids.zip", "grids")
    assert parsed.encoding == "GBK (detected)" and any(".cpg names no known encoding" in n for n in parsed.notes)
    assert_same_grids(parsed, grids())


def test_arcgis_prj_for_cgcs2000_gauss_kruger_is_understood(tmp_path):
    esri = (b'PROJCS["CGCS2000_3_Degree_GK_CM_120E",GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",'
            b'DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
            b'UNIT["Degree",0.0174532925199433]],PROJECTION["Gauss_Kruger"],PARAMETER["False_Easting",500000.0],'
            b'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",120.0],PARAMETER["Scale_Factor",1.0],'
            b'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]')
    upload = shapefile_zip(tmp_path, to_4549(grids()), encoding="GBK", drop={".cpg", ".prj"},
                           extra={"grids.prj": esri})
    parsed = read_upload(upload, "grids.zip", "grids")
    assert parsed.source_crs == "EPSG:4549"
    assert_same_grids(parsed, grids(), tolerance=1e-6)


def test_coordinates_outside_the_crs_area_are_422():
    with pytest.raises(Unprocessable, match="outside the area EPSG:4549 covers"):
        read_upload(geojson_bytes([point_feature(1e12, 1e12)]), "grids.geojson", "grids",
                    UploadOptions(source_crs="EPSG:4549"))


def test_bad_encoding_option_is_400(tmp_path):
    with pytest.raises(BadRequest):
        read_upload(shapefile_zip(tmp_path, grids()), "grids.zip", "grids", UploadOptions(encoding="Klingon"))


def test_zip_with_folder_mac_junk_extra_files_and_upper_case_names(tmp_path):
    upload = shapefile_zip(tmp_path, grids(), folder="导出/", name="GRIDS",
                           extra={"__MACOSX/导出/._GRIDS.shp": b"junk", "导出/GRIDS.shp.xml": b"<metadata/>",
                                  "readme.txt": b"hello"})
    parsed = read_upload(upload, "grids.zip", "grids")
    assert_same_grids(parsed, grids())


def test_truncation_is_only_undone_when_unambiguous():
    features = [point_feature(121.5, 29.8, grid_id="g1", party_memb=3, PARTY_MEMB=4, NAME="x", popu="7")]
    parsed = read_upload(geojson_bytes(features), "grids.geojson", "grids")
    columns = set(parsed.data.columns)
    assert {"party_memb", "PARTY_MEMB", "popu", "name"} <= columns and "party_members" not in columns
    assert parsed.notes == ("the file names no CRS and its coordinates can be longitude/latitude: read as WGS84",
                            "renamed NAME → name")


# --- CRS -------------------------------------------------------------------------------------


def test_projected_coordinates_without_crs_ask_for_source_crs(tmp_path):
    projected = to_4549(grids())
    upload = file_bytes(tmp_path, projected.set_crs(None, allow_override=True), "GeoJSON", ".geojson")
    assert b'"crs"' not in upload
    with pytest.raises(Unprocessable) as caught:
        read_upload(upload, "grids.geojson", "grids")
    assert caught.value.status == 422
    assert "source_crs" in caught.value.message and "EPSG:4549" in caught.value.message
    assert "x up to 6" in caught.value.message
    parsed = read_upload(upload, "grids.geojson", "grids", UploadOptions(source_crs="EPSG:4549"))
    assert parsed.source_crs == "EPSG:4549" and "coordinates read as EPSG:4549 (source_crs)" in parsed.notes
    assert_same_grids(parsed, grids(), tolerance=1e-6)


def test_shapefile_without_prj_uses_source_crs(tmp_path):
    upload = shapefile_zip(tmp_path, to_4549(grids()), prj=False)
    with pytest.raises(Unprocessable, match="give source_crs, e.g. EPSG:4549"):
        read_upload(upload, "grids.zip", "grids")
    parsed = read_upload(upload, "grids.zip", "grids", UploadOptions(source_crs="4549"))
    assert_same_grids(parsed, grids(), tolerance=1e-6)


def test_zone_prefixed_eastings_get_the_zone_suggested(tmp_path):
    features = [point_feature(40_645_027.2, 3_298_886.8, grid_id="g1")]
    with pytest.raises(Unprocessable, match="EPSG:4528"):
        read_upload(geojson_bytes(features), "grids.geojson", "grids")


def test_file_crs_wins_over_source_crs(tmp_path):
    upload = shapefile_zip(tmp_path, to_4549(grids()))
    parsed = read_upload(upload, "grids.zip", "grids", UploadOptions(source_crs="EPSG:4326"))
    assert parsed.source_crs == "EPSG:4549"
    assert "source_crs EPSG:4326 not used: the file says EPSG:4549" in parsed.notes
    assert_same_grids(parsed, grids(), tolerance=1e-6)


def test_geojson_named_crs_member_is_used():
    x, y = Transformer.from_crs(4326, 4549, always_xy=True).transform(121.55, 29.87)
    upload = geojson_bytes([point_feature(x, y, grid_id="g1")],
                           crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4549"}})
    parsed = read_upload(upload, "grids.json", "grids")
    assert parsed.source_crs == "EPSG:4549"
    assert parsed.data.geometry[0].distance(Point(121.55, 29.87)) < 1e-6


def test_geographic_crs_with_projected_coordinates_is_422():
    upload = geojson_bytes([point_feature(645_027, 3_298_886)],
                           crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}})
    with pytest.raises(Unprocessable, match="longitude/latitude"):
        read_upload(upload, "grids.geojson", "grids")


@pytest.mark.parametrize("source_crs", ["EPSG:999999", "/etc/passwd", "+init=epsg:4326", "WGS84 please"])
def test_bad_source_crs_is_400(source_crs):
    with pytest.raises(BadRequest):
        read_upload(geojson_bytes([point_feature(121.5, 29.8)]), "grids.geojson", "grids",
                    UploadOptions(source_crs=source_crs))


@pytest.mark.parametrize("coordinates,shift,name",
                         [("gcj02", wgs84_to_gcj02, "GCJ-02"), ("bd09", wgs84_to_bd09, "BD-09")])
def test_chinese_web_map_coordinates_come_back_to_wgs84(coordinates, shift, name):
    points = [(121.5440, 29.8683), (121.6270, 29.9200), (121.3900, 29.7600)]
    shifted = [shift(lon, lat) for lon, lat in points]
    features = [point_feature(float(lon), float(lat), grid_id=f"c{i}") for i, (lon, lat) in enumerate(shifted)]
    parsed = read_upload(geojson_bytes(features), "centers.geojson", "centers", UploadOptions(coordinates=coordinates))
    lon, lat = np.array(points).T
    geod = Geod(ellps="WGS84")
    error = geod.inv(lon, lat, parsed.data.geometry.x.values, parsed.data.geometry.y.values)[2]
    assert np.abs(error).max() < 1.0
    assert f"converted from {name} to WGS84" in parsed.notes
    unshifted = read_upload(geojson_bytes(features), "centers.geojson", "centers").data
    assert (np.abs(geod.inv(lon, lat, unshifted.geometry.x.values, unshifted.geometry.y.values)[2]) > 100).all()


def test_unknown_coordinates_option_is_400():
    with pytest.raises(BadRequest):
        read_upload(geojson_bytes([point_feature(121.5, 29.8)]), "g.geojson", "grids", UploadOptions(coordinates="utm"))


# --- GeoPackage layers --------------------------------------------------------------------------


def test_geopackage_with_several_layers_picks_the_target(tmp_path):
    path = tmp_path / "ningbo.gpkg"
    grids().to_file(path, layer="districts_outline")
    grids(2).to_file(path, layer="grids")
    grids(1).to_file(path, layer="centers_old")
    assert len(read_upload(path.read_bytes(), "ningbo.gpkg", "grids").data) == 2


def test_geopackage_attribute_tables_are_not_layers(tmp_path):
    path = tmp_path / "ningbo.gpkg"
    grids(2).to_file(path, layer="wangge")
    pyogrio.write_dataframe(grids(3).drop(columns="geometry"), path, layer="lookup_table")
    assert len(read_upload(path.read_bytes(), "ningbo.gpkg", "grids").data) == 2


def test_geopackage_with_unnamed_layers_lists_them(tmp_path):
    path = tmp_path / "ningbo.gpkg"
    grids().to_file(path, layer="layer_a")
    grids(2).to_file(path, layer="layer_b")
    with pytest.raises(Unprocessable) as caught:
        read_upload(path.read_bytes(), "ningbo.gpkg", "grids")
    assert "layer_a" in caught.value.message and "layer_b" in caught.value.message
    assert caught.value.details == ["layer_a", "layer_b"]


# --- hostile files ---------------------------------------------------------------------------------


def test_gdal_is_hardened():
    assert harden_gdal() == []
    drivers = pyogrio.list_drivers()
    assert not set(SKIPPED_DRIVERS) & set(drivers)
    assert {"GeoJSON", "ESRI Shapefile", "GPKG", "KML"} <= set(drivers)
    with pytest.raises(Exception) as caught:  # even bypassing the content checks, GDAL has no VRT driver
        pyogrio.read_dataframe(VRT)
    assert "root:" not in str(caught.value)


@pytest.mark.parametrize("filename", ["grids.geojson", "grids.json", "grids.kml", "grids.gpkg", "grids.zip"])
def test_vrt_pointing_at_etc_passwd_is_refused(filename):
    with pytest.raises(UnsupportedMediaType) as caught:
        read_upload(VRT, filename, "grids")
    assert 400 <= caught.value.status < 500
    assert "root:" not in caught.value.message and "root:" not in repr(caught.value.details)


def test_vrt_disguised_as_the_shp_of_a_zip_is_refused():
    upload = zip_with({"grids.shp": VRT, "grids.shx": VRT, "grids.dbf": VRT})
    with pytest.raises(Unprocessable) as caught:
        read_upload(upload, "grids.zip", "grids")
    assert "not a Shapefile" in caught.value.message and "root:" not in caught.value.message


def test_gdal_pipeline_json_is_not_geojson():
    pipeline = {"type": "gdal_streamed_alg", "command_line": "gdal vector pipeline ! read /etc/passwd ! write"}
    with pytest.raises(Unprocessable, match="not GeoJSON"):
        read_upload(json.dumps(pipeline).encode(), "grids.geojson", "grids")


@pytest.fixture
def http_server():
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
                             b'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]')

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_geojson_crs_link_cannot_make_the_server_fetch_a_url(http_server):
    url, hits = http_server
    for crs in ({"type": "link", "properties": {"href": f"{url}/crs.wkt", "type": "ogcwkt"}},
                {"type": "name", "properties": {"name": f"{url}/crs"}}):
        with pytest.raises(Unprocessable, match="source_crs"):
            read_upload(geojson_bytes([point_feature(121.5, 29.8)], crs=crs), "grids.geojson", "grids")
    assert hits == []


def test_gdal_has_no_network_even_when_asked_directly(http_server, monkeypatch):
    url, hits = http_server
    for name in ("no_proxy", "NO_PROXY"):  # libcurl would connect directly to hosts these list
        monkeypatch.delenv(name, raising=False)
    harden_gdal()
    with pytest.raises(Exception):
        pyogrio.read_info(f"/vsicurl/{url}/grids.geojson")
    # GDAL's GeoJSON driver fetches a "link" CRS itself (an SSRF without hardening)
    crs = {"type": "link", "properties": {"href": f"{url}/crs.wkt", "type": "ogcwkt"}}
    pyogrio.read_info(geojson_bytes([point_feature(121.5, 29.8)], crs=crs))
    assert hits == []


def test_zip_member_escaping_with_dot_dot_is_400():
    with pytest.raises(BadRequest, match=r"\.\."):
        read_upload(zip_with({"../evil.shp": b"x", "grids.dbf": b"x"}), "grids.zip", "grids")


def test_zip_member_escaping_with_backslashes_is_400():
    with pytest.raises(BadRequest, match=r"\.\."):
        read_upload(zip_with({"..\\..\\evil.shp": b"x"}), "grids.zip", "grids")


@pytest.mark.parametrize("member", ["/etc/evil.shp", "C:/Windows/evil.shp", "C:\\evil.shp"])
def test_zip_member_with_absolute_path_is_400(member):
    upload = zip_with({member: b"x"})
    assert zipfile.ZipFile(io.BytesIO(upload)).namelist() == [member]
    with pytest.raises(BadRequest, match="absolute path"):
        read_upload(upload, "grids.zip", "grids")


def test_zip_symlink_member_is_400(tmp_path):
    upload = zip_with({"grids.shp": b"x", "grids.dbf": b"/etc/passwd", "grids.shx": b"x"}, symlink="grids.dbf")
    with pytest.raises(BadRequest, match="symbolic link"):
        read_upload(upload, "grids.zip", "grids")


def no_extraction(*args, **kwargs):
    raise AssertionError("a member was extracted")


def test_zip_bomb_is_413_before_extraction(monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("grids.dbf", bytes(50 * 2**20))
        archive.writestr("grids.shp", b"x")
        archive.writestr("grids.shx", b"x")
    upload = buffer.getvalue()
    assert len(upload) < 100_000
    monkeypatch.setattr(zipfile.ZipFile, "open", no_extraction)
    with pytest.raises(TooLarge) as caught:
        read_upload(upload, "grids.zip", "grids")
    assert caught.value.status == 413 and "times" in caught.value.message


def test_declared_size_is_checked_without_extracting(tmp_path, monkeypatch):
    upload = bytearray(shapefile_zip(tmp_path, grids(), compression=zipfile.ZIP_STORED))
    # claim 2 GiB for the first member in the central directory (uncompressed size at +24); its data stays small
    struct.pack_into("<I", upload, upload.find(b"PK\x01\x02") + 24, 2 * 2**30)
    monkeypatch.setattr(zipfile.ZipFile, "open", no_extraction)
    with pytest.raises(TooLarge, match="expands to 20"):
        read_upload(bytes(upload), "grids.zip", "grids")


def test_too_many_archive_entries_is_413():
    upload = zip_with({f"f{i}.txt": b"" for i in range(101)})
    with pytest.raises(TooLarge, match="101 entries"):
        read_upload(upload, "grids.zip", "grids")


def test_upload_over_max_bytes_is_413():
    upload = geojson_bytes([point_feature(121.5, 29.8)])
    with pytest.raises(TooLarge) as caught:
        read_upload(upload, "grids.geojson", "grids", limits=Limits(max_bytes=len(upload) - 1))
    assert caught.value.status == 413


@pytest.mark.parametrize("fmt", ["geojson", "zip", "gpkg", "kml"])
def test_too_many_features_is_413(tmp_path, fmt):
    if fmt == "zip":
        upload = shapefile_zip(tmp_path, grids(3))
    else:
        upload = file_bytes(tmp_path, grids(3), {"geojson": "GeoJSON", "gpkg": "GPKG", "kml": "KML"}[fmt], f".{fmt}")
    with pytest.raises(TooLarge, match="has 3 features|has more than 2 features"):  # a GeoPackage counts to 3
        read_upload(upload, f"grids.{fmt}", "grids", limits=Limits(max_features=2))
    assert len(read_upload(upload, f"grids.{fmt}", "grids", limits=Limits(max_features=3)).data) == 3


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
HTML = b"<!DOCTYPE html><html><body><kml>not really</kml></body></html>"


@pytest.mark.parametrize("content,filename", [
    (PNG, "grids.gpkg"), (HTML, "grids.kml"), (b"<html><body/></html>", "grids.kml"), (PNG, "grids.zip"),
    (PNG, "grids.geojson"), (b"SQLite format 3\x00" + bytes(200), "grids.gpkg"),
    (b'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY a "aaaa">]><kml/>', "grids.kml"),
])
def test_content_that_is_not_what_the_extension_claims_is_415(content, filename):
    with pytest.raises(UnsupportedMediaType) as caught:
        read_upload(content, filename, "grids")
    assert caught.value.status == 415


@pytest.mark.parametrize("filename", ["grids.csv", "grids", "grids.shp", "grids.geojson.exe", "../../etc/passwd"])
def test_unknown_extension_is_415_naming_the_accepted_ones(filename):
    with pytest.raises(UnsupportedMediaType) as caught:
        read_upload(b"{}", filename, "grids")
    assert ".geojson" in caught.value.message and ".zip" in caught.value.message


@pytest.mark.parametrize("content", [b"{not json", b'{"type": "FeatureCollection", "features": [', b'{"a": 1}',
                                     b'{"type": "Topology", "objects": {}}', b'{"type": "FeatureCollection"}',
                                     b"{" * 100_000, b"\xef\xbb\xbf{\xff}", b""])
def test_garbage_geojson_is_422(content):
    with pytest.raises(Unprocessable) as caught:
        read_upload(content, "grids.geojson", "grids")
    assert caught.value.status == 422 and "/vsimem/" not in caught.value.message


def test_a_broken_geometry_is_left_for_validation():
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": "here"}, "properties": {"grid_id": "a"}}
    data = read_upload(geojson_bytes([feature]), "grids.geojson", "grids").data
    assert data["grid_id"].tolist() == ["a"] and data.geometry.isna().all()


def test_utf8_bom_geojson_is_read():
    upload = b"\xef\xbb\xbf" + geojson_bytes([point_feature(121.5, 29.8, name="宁波")])
    assert read_upload(upload, "grids.geojson", "grids").data["name"].tolist() == ["宁波"]


def test_broken_geopackage_and_kml_are_422(tmp_path):
    gpkg = file_bytes(tmp_path, grids(), "GPKG", ".gpkg")
    with pytest.raises(Unprocessable):
        read_upload(gpkg[:2048], "grids.gpkg", "grids")
    with pytest.raises(Unprocessable):
        read_upload(b'<?xml version="1.0"?><kml><Document><Placemark>', "grids.kml", "grids")


@pytest.mark.parametrize("missing", [".dbf", ".shx"])
def test_zip_missing_a_required_part_is_422_naming_it(tmp_path, missing):
    with pytest.raises(Unprocessable, match=f"no grids\\{missing}"):
        read_upload(shapefile_zip(tmp_path, grids(), drop={missing}), "grids.zip", "grids")


def test_zip_without_exactly_one_shp_is_422(tmp_path):
    with pytest.raises(Unprocessable, match="no .shp"):
        read_upload(zip_with({"grids.geojson": b"{}"}), "grids.zip", "grids")
    upload = shapefile_zip(tmp_path, grids(), extra={"other/grids.shp": b"x"})
    with pytest.raises(Unprocessable, match="2 .shp files"):
        read_upload(upload, "grids.zip", "grids")


def test_damaged_zip_is_422(tmp_path):
    upload = bytearray(shapefile_zip(tmp_path, grids()))
    with pytest.raises(Unprocessable):
        read_upload(b"PK\x03\x04" + bytes(100), "grids.zip", "grids")
    start = upload.find(b"grids.dbf") + 40  # flip bytes inside the compressed .dbf: CRC or inflate fails
    upload[start:start + 16] = bytes(16)
    with pytest.raises(Unprocessable):
        read_upload(bytes(upload), "grids.zip", "grids")


def test_unknown_layer_is_400():
    with pytest.raises(BadRequest):
        read_upload(geojson_bytes([point_feature(121.5, 29.8)]), "grids.geojson", "nope")


# --- resource limits and no silent loss ----------------------------------------------------------


def patched_zip(upload: bytes, suffix: str, patch) -> bytes:
    """The zip with the member ending in ``suffix`` passed through ``patch``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(upload)) as src, zipfile.ZipFile(buffer, "w") as out:
        for info in src.infolist():
            content = src.read(info)
            out.writestr(info.filename, patch(content) if info.filename.endswith(suffix) else content)
    return buffer.getvalue()


def test_shapefile_whose_dbf_says_no_records_is_422_naming_the_counts(tmp_path):
    upload = patched_zip(shapefile_zip(tmp_path, grids(3)), ".dbf", lambda dbf: dbf[:4] + struct.pack("<I", 0) + dbf[8:])
    with pytest.raises(Unprocessable, match="grids.shp holds 3 shapes, grids.shx indexes 3 and grids.dbf has 0 records"):
        read_upload(upload, "grids.zip", "grids")


def test_shapefile_whose_shx_misses_a_record_is_422(tmp_path):
    upload = patched_zip(shapefile_zip(tmp_path, grids(3)), ".shx", lambda shx: shx[:-8])
    with pytest.raises(Unprocessable, match="grids.shx indexes 2") as caught:
        read_upload(upload, "grids.zip", "grids")
    assert caught.value.details == [{"shp": 3, "shx": 2, "dbf": 3}]


def test_truncated_shp_is_422(tmp_path):
    upload = patched_zip(shapefile_zip(tmp_path, grids(3)), ".shp", lambda shp: shp[:-20])
    with pytest.raises(Unprocessable, match="grids.shp is damaged"):
        read_upload(upload, "grids.zip", "grids")


def polygon_feature(n: int, grid_id: str, **props) -> dict:
    """A grid whose ring has ``n`` vertices, the closing one included."""
    angle = np.linspace(0, 2 * np.pi, n - 1, endpoint=False)
    ring = np.column_stack([121.55 + 0.005 * np.cos(angle), 29.87 + 0.005 * np.sin(angle)]).tolist()
    return {"type": "Feature", "properties": {"grid_id": grid_id, **props},
            "geometry": {"type": "Polygon", "coordinates": [ring + ring[:1]]}}


def test_feature_over_the_vertex_limit_is_413_naming_it_before_any_parsing(monkeypatch):
    upload = json.dumps({"type": "FeatureCollection", "features": [
        polygon_feature(10, "a"), polygon_feature(50, "网格-b", name="[1, 2] {"), polygon_feature(10, "c")]},
        indent=2).encode()  # pretty-printed, a bracket in a string, a key in \u escapes
    monkeypatch.setattr(pyogrio, "read_info", lambda *a, **k: pytest.fail("GDAL read a refused file"))
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda text, *a, **k: pytest.fail("the whole file was parsed")
                        if len(text) > 1000 else real_loads(text, *a, **k))
    with pytest.raises(TooLarge) as caught:
        read_upload(upload, "grids.geojson", "grids", limits=Limits(max_feature_vertices=49))
    assert caught.value.status == 413
    assert caught.value.message == "feature 2 (网格-b) has 50 vertices; the limit is 49 vertices a feature"
    assert caught.value.details == [{"limit": "max_feature_vertices", "index": 1, "vertices": 50, "key": "网格-b"}]


def test_file_over_the_total_vertex_limit_is_413():
    upload = geojson_bytes([polygon_feature(10, f"g{i}") for i in range(3)])
    with pytest.raises(TooLarge, match="the file has 30 vertices; the limit is 29 in a file"):
        read_upload(upload, "grids.geojson", "grids", limits=Limits(max_vertices=29))
    assert len(read_upload(upload, "grids.geojson", "grids", limits=Limits(max_vertices=30)).data) == 3


@pytest.mark.parametrize("fmt", ["zip", "gpkg", "kml"])
def test_vertex_limits_hold_for_every_format(tmp_path, fmt):
    layer = grids(3)  # boxes: 5 vertices each
    if fmt == "zip":
        upload = shapefile_zip(tmp_path, layer)
    else:
        upload = file_bytes(tmp_path, layer, {"gpkg": "GPKG", "kml": "KML"}[fmt], f".{fmt}")
    with pytest.raises(TooLarge, match=r"^feature 1\b.* has 5 vertices \(and 2 more\); the limit is 4 vertices a feature") \
            as caught:  # people count from 1; the details' index counts from 0 for scripts
        read_upload(upload, f"grids.{fmt}", "grids", limits=Limits(max_feature_vertices=4))
    assert [d["index"] for d in caught.value.details] == [0, 1, 2]
    with pytest.raises(TooLarge, match="the file has 15 vertices"):
        read_upload(upload, f"grids.{fmt}", "grids", limits=Limits(max_vertices=14))


@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_text_over_the_length_limit_is_413_naming_field_and_feature(tmp_path, fmt):
    layer = grids(3)
    layer.loc[2, "party_branch"] = "党" * 21
    upload = file_bytes(tmp_path, layer, {"geojson": "GeoJSON", "gpkg": "GPKG"}[fmt], f".{fmt}")
    with pytest.raises(TooLarge) as caught:
        read_upload(upload, f"grids.{fmt}", "grids", limits=Limits(max_text_chars=20))
    assert caught.value.message == ("party_branch of feature 3 (HS-002) has 21 characters; "
                                    "the limit is 20 characters a value")
    assert caught.value.details[0]["index"] == 2
    assert read_upload(upload, f"grids.{fmt}", "grids", limits=Limits(max_text_chars=21)).data.loc[2, "party_branch"]


def test_nul_in_geojson_text_is_kept_for_validation_not_cut_short():
    upload = geojson_bytes([point_feature(121.5, 29.8, center_id="c1", name="rt\x00x"),
                            {**point_feature(121.6, 29.8, center_id="c2", name="ok"), "id": 7}])
    assert read_upload(upload, "centers.geojson", "centers").data["name"].tolist() == ["rt\x00x", "ok"]


def gpkg_with_view(tmp_path, view_sql: str, name: str = "grids", table: str = "src") -> bytes:
    """A GeoPackage whose feature layer ``name`` is a view ``view_sql`` over a table of three grids."""
    import sqlite3

    path = tmp_path / "hostile.gpkg"
    quiet_to_file(grids(3), path, driver="GPKG", layer=table)
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE VIEW {name} AS {view_sql}")
        db.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) VALUES (?, 'features', ?, 4326)",
                   (name, name))
        db.execute("INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', 'POLYGON', 4326, 0, 0)", (name,))
    db.close()
    return path.read_bytes()


@pytest.mark.parametrize("view_sql", [
    # 4 rows a grid, each with a 1 MB string, from a file of a few KB
    "SELECT s.fid * 10 + n.k AS fid, s.geom AS geom, s.grid_id || n.k AS grid_id, printf('%.*c', 1000000, 'x') AS name"
    " FROM src s, (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) n",
    # 300,000 rows computed while GDAL counts them
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300000) "
    "SELECT i AS fid, (SELECT geom FROM src LIMIT 1) AS geom, 'g' || i AS grid_id FROM c",
])
def test_geopackage_view_is_422_and_never_read(tmp_path, view_sql, monkeypatch):
    upload = gpkg_with_view(tmp_path, view_sql)
    monkeypatch.setattr(pyogrio, "read_info", lambda *a, **k: pytest.fail("GDAL ran the view"))
    with pytest.raises(Unprocessable, match="layer 'grids' is a view or a virtual table: only tables are read"):
        read_upload(upload, "grids.gpkg", "grids")


def test_geopackage_table_is_read_beside_a_view(tmp_path):
    upload = gpkg_with_view(tmp_path, "SELECT * FROM grids", name="summary", table="grids")
    assert len(read_upload(upload, "grids.gpkg", "grids", limits=Limits(max_text_chars=20)).data) == 3


def test_geopackage_generated_column_is_422_naming_it(tmp_path):
    import sqlite3

    path = tmp_path / "generated.gpkg"
    quiet_to_file(grids(2), path, driver="GPKG", layer="grids")
    with sqlite3.connect(path) as db:  # 0.9 GB a row with zeroblob(1e9); 1 KB is enough to tell
        db.execute("ALTER TABLE grids ADD COLUMN blob BLOB GENERATED ALWAYS AS (zeroblob(1000)) VIRTUAL")
    db.close()
    with pytest.raises(Unprocessable, match=r"table 'grids' has generated columns \(blob\)") as caught:
        read_upload(path.read_bytes(), "grids.gpkg", "grids")
    assert caught.value.details == ["blob"]


def test_geopackage_inspection_has_a_time_limit(tmp_path):
    upload = file_bytes(tmp_path, grids(500), "GPKG", ".gpkg", layer="grids")
    with pytest.raises(TooLarge, match="took more than 0 s") as caught:
        read_upload(upload, "grids.gpkg", "grids", limits=Limits(max_inspect_seconds=0))
    assert caught.value.details == [{"limit": "max_inspect_seconds"}]


def test_geopackage_whose_contents_table_is_a_view_is_422_before_gdal_opens_it(tmp_path, monkeypatch):
    import sqlite3

    path = tmp_path / "contents-view.gpkg"
    quiet_to_file(grids(2), path, driver="GPKG", layer="grids")
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE gpkg_contents RENAME TO real_contents")
        db.execute("CREATE VIEW gpkg_contents AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                   "WHERE i < 1000) SELECT r.* FROM real_contents r, c")
    db.close()
    monkeypatch.setattr(pyogrio, "list_layers", lambda *a, **k: pytest.fail("GDAL opened it"))
    with pytest.raises(Unprocessable, match="gpkg_contents should be tables but are views"):
        read_upload(path.read_bytes(), "grids.gpkg", "grids")


def test_prj_naming_a_server_file_is_422_before_proj_opens_it(tmp_path, monkeypatch):
    prj = ('GEOGCS["x",DATUM["d",SPHEROID["s",6378137,298.257223563]],PRIMEM["G",0],'
           'UNIT["degree",0.0174532925199433],EXTENSION["PROJ4","+proj=longlat +ellps=WGS84 +nadgrids=/etc/passwd"]]')
    upload = shapefile_zip(tmp_path, grids(2), prj=False, extra={"grids.prj": prj})
    # PROJ opens grids when it transforms (its error then: "File not found or invalid")
    monkeypatch.setattr(gpd.GeoDataFrame, "to_crs", lambda *a, **k: pytest.fail("PROJ transformed with the grid"))
    with pytest.raises(Unprocessable, match=r"the file's CRS names a file or grid \(EXTENSION\["):
        read_upload(upload, "grids.zip", "grids")


def test_nul_in_geopackage_text_is_kept_for_validation_not_cut_short(tmp_path):
    import sqlite3

    path = tmp_path / "nul.gpkg"
    quiet_to_file(grids(3), path, driver="GPKG", layer="grids")
    with sqlite3.connect(path) as db:
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f'DROP TRIGGER "{trigger}"')  # GDAL's rtree triggers call its own SQL functions
        db.execute("UPDATE grids SET name = 'rt' || char(0) || 'x' WHERE grid_id = 'HS-002'")
    db.close()
    assert read_upload(path.read_bytes(), "grids.gpkg", "grids").data["name"].tolist()[1:] == [
        "月湖社区第2网格", "rt\x00x"]
