"""OGC API – Features Part 2 (crs, bbox-crs, Content-Crs) and the one geometry type features are served as."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from geodata.validate import validate
from server import create_app
from tests.factories import center_row, centers, six_grids
from tests.http import get_json

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
SERVED = [CRS84, *(f"{EPSG}{code}" for code in (4326, 4490, 4549, 4550, 3857))]
PART2 = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(params=["sqlite", "postgis"])
def app(request, data_dir):
    """The app on either engine: texts from both stores are served (promoted, transformed) alike."""
    url = request.getfixturevalue("postgis_url") if request.param == "postgis" else ""
    app = create_app({"DATA_DIR": str(data_dir), "DATABASE_URL": url, "DEMO": False, "TESTING": True})
    yield app
    app.extensions["gridmap"].jobs.close()
    app.extensions["gridmap"].store.close()


@pytest.fixture
def loaded(store):
    """Six 0.01° grids (g00 a two-part MultiPolygon) and two centres, c1 at (121.505, 29.805)."""
    grids = six_grids()
    g00 = grids.geometry.iloc[0]
    grids.loc[0, "geometry"] = shapely.MultiPolygon([g00, shapely.affinity.translate(g00, 0.5, 0)])
    store.write("grids", validate(grids, "grids").data, author="tester")
    store.write("centers", validate(centers([center_row("c1", "community"), center_row("d1", "district")]),
                                    "centers").data, author="tester")
    return store


def vertices(geometry: dict) -> np.ndarray:
    """Every position of a GeoJSON geometry, in order, as rows."""
    return shapely.get_coordinates(shapely.from_geojson(json.dumps(geometry)))


def ids(body: dict) -> list[str]:
    return [f["id"] for f in body["features"]]


# --- crs --------------------------------------------------------------------------------------

def test_conformance_and_collections_name_the_crs(client, loaded):
    assert PART2 in get_json(client, "/api/conformance")["conformsTo"]
    for collection in get_json(client, "/api/collections")["collections"]:
        assert collection["crs"] == SERVED and collection["storageCrs"] == CRS84


def test_gauss_kruger_coordinates_are_pyprojs_to_a_millimetre(client, loaded, store):
    body = get_json(client, f"/api/collections/grids/items?crs={EPSG}4549&limit=100")
    assert len(body["features"]) == 6
    to_4549 = Transformer.from_crs("OGC:CRS84", "EPSG:4549")  # northing, easting: the CRS's own order
    stored = store.read("grids").set_index("grid_id").geometry
    for feature in body["features"]:
        lonlat = shapely.get_coordinates(stored[feature["id"]])
        expected = np.column_stack(to_4549.transform(lonlat[:, 0], lonlat[:, 1]))
        got = vertices(feature["geometry"])
        assert got.shape == expected.shape and np.abs(got - expected).max() < 0.001, feature["id"]


def test_a_point_checked_by_hand(client, loaded):
    """c1 at 121.505°E 29.805°N; Debian's own PROJ 9.1 (gdaltransform -s_srs OGC:CRS84 -t_srs EPSG:4549) gives
    E 645503.43683455, N 3299447.48405508: answered northing first, as EPSG:4549 orders its axes."""
    resp = client.get("/api/collections/centers/items/c1?crs=EPSG:4549")
    assert resp.headers["Content-Crs"] == f"<{EPSG}4549>"
    assert resp.get_json()["geometry"]["coordinates"] == pytest.approx([3299447.48405508, 645503.43683455], abs=1e-3)


@pytest.mark.parametrize("crs, expected", [
    (CRS84, [121.505, 29.805]), (f"{EPSG}4326", [29.805, 121.505]), (f"{EPSG}4490", [29.805, 121.505]),
    (f"{EPSG}4550", [3299434.899, 355463.476]), (f"{EPSG}3857", [13525874.729, 3478508.957])])  # gdaltransform
def test_each_crs_in_its_own_axis_order(client, loaded, crs, expected):
    """Latitude first for EPSG:4326 and 4490, northing first for the Gauss-Kruger zones, x first otherwise."""
    body = get_json(client, f"/api/collections/centers/items?crs={crs}")
    assert body["features"][0]["geometry"]["coordinates"] == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("url", [
    "/api/collections/grids/items", "/api/collections/grids/items/g10", "/api/collections/coverage/items",
    "/api/collections/gaps/items?limit=1", "/api/collections/centers/items/c1",
    "/api/collections/grids/items?bbox=1,2,3,4",
])
def test_content_crs_on_every_items_and_item_answer(client, loaded, url):
    joiner = "&" if "?" in url else "?"
    assert client.get(url).headers["Content-Crs"] == f"<{CRS84}>"  # the default too
    for crs in SERVED:
        resp = client.get(f"{url}{joiner}crs={crs}")
        assert resp.status_code == 200 and resp.headers["Content-Crs"] == f"<{crs}>"


@pytest.mark.parametrize("url", ["/api/collections/grids/items", "/api/collections/grids/items/g10",
                                 "/api/download/grids.geojson"])
@pytest.mark.parametrize("crs", ["EPSG:32651", "http://www.opengis.net/def/crs/EPSG/0/4527", "WGS84", "<script>"])
def test_an_unsupported_crs_is_a_400_naming_those_served(client, loaded, url, crs):
    resp = client.get(url, query_string={"crs": crs})
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "bad_request" and "crs" in error["message"] and error["details"] == SERVED


def test_an_unsupported_bbox_crs_is_a_400(client, loaded):
    for query in ({"bbox": "1,2,3,4", "bbox-crs": "EPSG:32651"}, {"bbox-crs": "EPSG:2000"}):
        resp = client.get("/api/collections/grids/items", query_string=query)
        assert resp.status_code == 400 and "bbox-crs" in resp.get_json()["error"]["message"]


def test_crs_does_not_change_the_etag_of_another_crs(client, loaded):
    plain = client.get("/api/collections/grids/items")
    other = client.get(f"/api/collections/grids/items?crs={EPSG}4549")
    assert plain.headers["ETag"] != other.headers["ETag"]
    again = client.get(f"/api/collections/grids/items?crs={EPSG}4549", headers={"If-None-Match": other.headers["ETag"]})
    assert again.status_code == 304


# --- bbox-crs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("box", [(121.505, 29.805, 121.515, 29.815), (121.499, 29.799, 121.5005, 29.8005),
                                 (121.52, 29.81, 121.6, 29.9)])
def test_a_latitude_first_cgcs2000_box_selects_what_the_same_crs84_box_does(client, loaded, box):
    minlon, minlat, maxlon, maxlat = box
    crs84 = get_json(client, "/api/collections/grids/items",
                     query_string={"bbox": f"{minlon},{minlat},{maxlon},{maxlat}"})
    cgcs = get_json(client, "/api/collections/grids/items", query_string={
        "bbox": f"{minlat},{minlon},{maxlat},{maxlon}", "bbox-crs": f"{EPSG}4490"})
    assert ids(cgcs) == ids(crs84) and ids(crs84)
    assert cgcs["numberMatched"] == crs84["numberMatched"]


def test_a_gauss_kruger_box_is_northing_first(client, loaded):
    """A box around c1 alone, in EPSG:4549 metres (minN,minE,maxN,maxE), finds c1 and not d1 (1.1 km east)."""
    near = "3299400,645450,3299500,645550"
    assert ids(get_json(client, "/api/collections/centers/items", query_string={
        "bbox": near, "bbox-crs": f"{EPSG}4549"})) == ["c1"]
    swapped = "645450,3299400,645550,3299500"  # easting first: somewhere else altogether
    assert ids(get_json(client, "/api/collections/centers/items", query_string={
        "bbox": swapped, "bbox-crs": f"{EPSG}4549"})) == []


@pytest.mark.parametrize("bbox", ["1,2,3", "3299500,645450,3299400,645550", "nan,1,2,3", "1e400,0,1,1"])
def test_bad_boxes_in_another_crs_are_400(client, loaded, bbox):
    resp = client.get("/api/collections/centers/items", query_string={"bbox": bbox, "bbox-crs": f"{EPSG}4549"})
    assert resp.status_code == 400, resp.get_data(as_text=True)


# --- one geometry type ------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/api/collections/grids/items?limit=100", "/api/collections/coverage/items?limit=100",
                                 "/api/collections/grids/items?limit=100&crs=EPSG:4549", "/api/download/grids.geojson",
                                 "/api/download/grids.geojson?crs=EPSG:4549"])
def test_every_grid_is_a_multipolygon(client, loaded, store, url):
    """Stored as they came (five Polygons and a MultiPolygon), served as the one type the layer declares."""
    assert sorted(store.read("grids").geom_type) == ["MultiPolygon"] + ["Polygon"] * 5
    body = json.loads(client.get(url).data)
    assert len(body["features"]) == 6
    assert {f["geometry"]["type"] for f in body["features"]} == {"MultiPolygon"}
    g10 = next(f for f in body["features"] if f["id"] == "g10")
    assert len(g10["geometry"]["coordinates"]) == 1 and len(vertices(g10["geometry"])) == 5  # one part, as stored
    doc = get_json(client, "/api/openapi")
    assert doc["components"]["schemas"]["grids.feature"]["properties"]["geometry"]["properties"]["type"]["enum"] \
        == ["MultiPolygon"]


def test_one_item_is_a_multipolygon_too(client, loaded):
    assert get_json(client, "/api/collections/grids/items/g10")["geometry"]["type"] == "MultiPolygon"
    assert get_json(client, "/api/collections/centers/items/c1")["geometry"]["type"] == "Point"


# --- downloads --------------------------------------------------------------------------------

@pytest.fixture
def ogrinfo():
    binary = shutil.which("ogrinfo")
    if binary is None:
        if IN_CI:
            pytest.fail("GDAL's ogrinfo is not installed (CI=true)", pytrace=False)
        pytest.skip("GDAL's ogrinfo is not installed: apt-get install gdal-bin")

    def run(path, *args: str) -> str:
        done = subprocess.run([binary, "-ro", *args, str(path)], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "CPL_DEBUG": "OFF"})
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


@pytest.mark.parametrize("fmt", ["gpkg", "zip", "geojson", "csv"])
def test_downloads_in_a_gauss_kruger_zone(client, loaded, store, tmp_path, ogrinfo, fmt):
    """The file's coordinates are EPSG:4549 metres, easting first as files are read; the CRS is named (CSV has
    no place for it)."""
    resp = client.get(f"/api/download/grids.{fmt}?crs=EPSG:4549")
    assert resp.status_code == 200
    path = tmp_path / f"grids.{fmt}"
    path.write_bytes(resp.data)
    report = ogrinfo(f"/vsizip/{path}" if fmt == "zip" else path, "-so", "-al")
    if fmt != "csv":
        assert re.search(r'ID\["EPSG",4549\]|CM 120E', report), report
    got = pyogrio.read_dataframe(f"/vsizip/{path}" if fmt == "zip" else path)
    expected = store.read("grids").to_crs(4549)
    assert len(got) == 6
    minx, miny, maxx, maxy = shapely.total_bounds(got.geometry.values)
    assert np.allclose([minx, miny, maxx, maxy], expected.total_bounds, atol=0.001)  # easting first
    assert 600_000 < minx < 700_000 and 3_000_000 < miny < 3_400_000


def test_kml_is_wgs84_only(client, loaded):
    resp = client.get("/api/download/grids.kml?crs=EPSG:4549")
    assert resp.status_code == 400 and "KML" in resp.get_json()["error"]["message"]
    assert client.get(f"/api/download/grids.kml?crs={EPSG}4326").status_code == 200


def test_a_download_box_in_another_crs(client, loaded):
    body = json.loads(client.get("/api/download/grids.geojson", query_string={
        "bbox": "29.805,121.505,29.815,121.515", "bbox-crs": f"{EPSG}4490"}).data)
    assert sorted(ids(body)) == ["g00", "g01", "g10", "g11"]


def test_csv_geometry_is_read_by_gdal_without_options(client, loaded, tmp_path, ogrinfo):
    """Named WKT, GDAL takes it for the geometry (it reported 'Geometry: None' for a column named geometry)."""
    for layer, kind, extent in (("grids", "MULTIPOLYGON", r"\(121\.500000, 29\.800000\) - \(122\.010000, 29\.820000\)"),
                                ("centers", "POINT", r"\(121\.505000, 29\.805000\) - \(121\.515000, 29\.805000\)")):
        path = tmp_path / f"{layer}.csv"
        path.write_bytes(client.get(f"/api/download/{layer}.csv").data)
        summary = ogrinfo(path, "-so", "-al")
        assert "Geometry: None" not in summary and re.search(rf"^Extent: {extent}$", summary, re.M), summary
        features = ogrinfo(path, "-al")
        assert len(re.findall(rf"^  {kind} \(", features, re.M)) == (6 if layer == "grids" else 2), features


def test_points_have_lon_and_lat_columns_for_spreadsheets(client, loaded):
    text = client.get("/api/download/centers.csv").data.decode("utf-8-sig")
    header, first = text.splitlines()[:2]
    assert header.split(",")[-3:] == ["lon", "lat", "WKT"]
    assert first.split(",")[-3:] == ["121.505", "29.805", "POINT (121.505 29.805)"]
    assert "lon" not in client.get("/api/download/grids.csv").data.decode("utf-8-sig").splitlines()[0].split(",")


def test_csv_in_another_crs_keeps_wgs84_lon_lat(client, loaded):
    import pandas as pd

    table = pd.read_csv(io.BytesIO(client.get("/api/download/centers.csv?crs=EPSG:4549").data), encoding="utf-8-sig")
    c1 = table.set_index("center_id").loc["c1"]
    assert (c1["lon"], c1["lat"]) == (121.505, 29.805)
    assert shapely.from_wkt(c1["WKT"]).coords[0] == pytest.approx((645503.43683455, 3299447.48405508), abs=1e-3)
