"""Downloads through the API, checked with GDAL's own ``ogrinfo`` on the downloaded files.

``ogrinfo`` comes from Debian's gdal-bin (``scripts/test.sh`` installs it when run as
root), a different GDAL from the one pyogrio bundles: what analysts' QGIS and GDAL
would see.  Without it those tests skip, naming it; with ``CI=true`` they fail.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from xml.etree import ElementTree

import pytest
import shapely

from geodata import downloads
from geodata.validate import validate
from server import api
from tests.factories import center_row, centers, six_grids

IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
FORMATS = ["geojson", "gpkg", "zip", "csv", "kml"]
MEDIA_TYPES = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "zip": "application/zip",
    "csv": "text/csv; charset=utf-8",
    "kml": "application/vnd.google-earth.kml+xml",
}
GRID_FIELDS = ["grid_id", "name", "grid_type", "city", "district", "street", "community", "population",
               "households", "party_members", "grid_workers", "instructor", "party_branch"]


def _unavailable(reason: str):
    """Skip, naming what is missing; in CI a missing tool is a failure, never a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the ogrinfo tests must run in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def loaded(store):
    """Grids: version 1 has six (g20, g21 in 江北区), version 2 drops g21; two centres."""
    grids = six_grids()
    grids.loc[grids.grid_id.isin(["g20", "g21"]), "district"] = "江北区"
    grids.loc[grids.grid_id == "g10", "instructor"] = None  # a null text
    grids["population"] = grids["population"].astype("Int64")
    grids.loc[grids.grid_id == "g11", "population"] = None  # a null integer
    grids = validate(grids, "grids").data
    store.write("grids", grids, author="tester", message="first")
    store.write("grids", grids[grids.grid_id != "g21"], author="tester", message="second")
    store.write("centers", validate(centers([center_row("c1", "community"), center_row("d1", "district")]),
                                    "centers").data, author="tester")
    return store


@pytest.fixture
def ogrinfo(tmp_path):
    """Write downloaded bytes to tmp_path and run ``ogrinfo -so -al`` on them: its output."""
    binary = shutil.which("ogrinfo")
    if binary is None:
        _unavailable("GDAL's ogrinfo is not installed: apt-get install gdal-bin "
                     "(scripts/test.sh does so when run as root)")

    def run(data: bytes, name: str) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        source = f"/vsizip/{path}" if name.endswith(".zip") else str(path)
        done = subprocess.run([binary, "-ro", "-so", "-al", source], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "CPL_DEBUG": "OFF"})
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def feature_count(report: str) -> int:
    counts = re.findall(r"^Feature Count: (\d+)$", report, re.M)
    assert len(counts) == 1, report
    return int(counts[0])


def download(client, url: str, status: int = 200):
    resp = client.get(url)
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    return resp


# --- every format, a stored and a derived layer ----------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("collection, count, filename", [("grids", 5, "grids-v2"), ("coverage", 5, "coverage")])
def test_every_format_is_a_file_gdal_reads_whole(viewer_client, loaded, ogrinfo, fmt, collection, count, filename):
    client = viewer_client  # a signed-in reader: restricted fields included
    resp = download(client, f"/api/download/{collection}.{fmt}")
    assert resp.headers["Content-Type"] == MEDIA_TYPES[fmt]
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{filename}.{fmt}"'
    report = ogrinfo(resp.data, f"{filename}.{fmt}")
    assert feature_count(report) == count
    if fmt in ("gpkg", "zip", "kml"):  # the layer is named after the collection, in WGS84
        assert re.search(rf"^Layer name: {collection}$", report, re.M), report
        assert re.search(r'ID\["EPSG",4326\]|GEOGCS\["WGS 84"|GEOGCRS\["WGS 84"', report), report
    if fmt == "csv":  # the WKT column is a geometry to GDAL without options, and the BOM is not part of the first name
        assert "Geometry: None" not in report and re.search(r"^Extent: \(121\.5", report, re.M), report
        assert re.search(r"^grid_id: String", report, re.M), report
    if fmt in ("gpkg", "zip"):  # integers stay integers
        assert re.search(r"^population: Integer", report, re.M), report
        short = "party_memb" if fmt == "zip" else "party_members"
        assert re.search(rf"^{short}: Integer", report, re.M), report


@pytest.mark.parametrize("fmt", FORMATS)
def test_filters_and_versions_choose_the_features(client, loaded, ogrinfo, fmt):
    def count(url: str) -> int:
        resp = download(client, url)
        return feature_count(ogrinfo(resp.data, f"download.{fmt}"))

    assert count(f"/api/download/grids.{fmt}?district=海曙区") == 4
    assert count(f"/api/download/grids.{fmt}?district=江北区") == 1
    assert count(f"/api/download/grids.{fmt}?version=1") == 6
    assert count(f"/api/download/grids.{fmt}?version=1&district=江北区") == 2
    assert count(f"/api/download/coverage.{fmt}?district=江北区") == 1
    resp = download(client, f"/api/download/grids.{fmt}?version=1&district=江北区")
    assert resp.headers["Content-Disposition"] == f'attachment; filename="grids-v1.{fmt}"'


def test_downloaded_values_are_the_layers(viewer_client, loaded, store):
    """The CSV has the stored values, integers unquoted and whole, nulls empty, Chinese readable."""
    client = viewer_client  # a signed-in reader: restricted fields included
    data = download(client, "/api/download/grids.csv").data
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(GRID_FIELDS + ["WKT"])
    rows = {line.split(",", 1)[0]: line for line in lines[1:]}
    assert sorted(rows) == ["g00", "g01", "g10", "g11", "g20"]
    assert rows["g00"].startswith("g00,g00网格,residential,,海曙区,月湖街道,青石社区,100,400,40,2,王建国,")
    assert ",白云社区,,400,40,2," in rows["g11"]  # null population: empty, not "nan" or 0
    assert ",2,,青石社区第一党支部," in rows["g10"]  # null instructor: empty
    wkt = rows["g20"].rsplit(',"', 1)[1].rstrip('"')
    stored = store.read("grids").set_index("grid_id").geometry["g20"]
    assert shapely.from_wkt(wkt).equals_exact(shapely.MultiPolygon([stored]), 0)  # every digit; the layer's type


def test_derived_layers_have_no_versions(client, loaded):
    for fmt in FORMATS:
        assert download(client, f"/api/download/coverage.{fmt}?version=1", 400).get_json()["error"]["code"] \
            == "bad_request"


def test_an_unknown_format_is_a_json_404_naming_the_formats(client, loaded):
    resp = download(client, "/api/download/grids.shp", 404)
    error = resp.get_json()["error"]
    assert error["code"] == "not_found"
    assert "shp" in error["message"] and "geojson, gpkg, zip, csv, kml" in error["message"]
    assert error["details"] == FORMATS


def test_unknown_collections_bad_filters_and_empty_layers(client, loaded):
    assert download(client, "/api/download/parks.gpkg", 404).get_json()["error"]["code"] == "not_found"
    assert download(client, "/api/download/districts.zip", 404).get_json()["error"]["code"] == "not_found"
    assert "colour" in download(client, "/api/download/grids.kml?colour=red", 400).get_json()["error"]["message"]
    assert download(client, "/api/download/grids.csv?version=9", 404).status_code == 404


# --- caching ---------------------------------------------------------------------------------

def test_whole_layers_are_made_once_per_version_filtered_ones_every_time(app, client, loaded, monkeypatch):
    made = []
    real = downloads.to_format
    monkeypatch.setattr(api.downloads, "to_format", lambda gdf, fmt, name, crs: made.append((fmt, len(gdf))) or
                        real(gdf, fmt, name, crs))
    first = download(client, "/api/download/grids.gpkg").data
    assert download(client, "/api/download/grids.gpkg").data == first
    assert download(client, "/api/download/grids.gpkg?version=2").data == first  # the same content
    assert made == [("gpkg", 5)]
    download(client, "/api/download/grids.gpkg?version=1")
    download(client, "/api/download/grids.zip")
    download(client, "/api/download/coverage.zip")
    download(client, "/api/download/coverage.zip")
    assert made == [("gpkg", 5), ("gpkg", 6), ("zip", 5), ("zip", 5)]
    download(client, "/api/download/grids.gpkg?district=江北区")
    download(client, "/api/download/grids.gpkg?district=江北区")
    assert made[-2:] == [("gpkg", 1), ("gpkg", 1)]  # filtered downloads are not kept
    assert {key[2] for key in app.extensions["gridmap"].responses._items if key[0] == "download"} == {"gpkg", "zip"}


def test_a_new_version_is_a_new_download(client, loaded, store):
    before = download(client, "/api/download/grids.csv").data
    grids = store.read("grids")
    grids.loc[0, "name"] = "改名网格"
    store.write("grids", grids, author="tester")
    resp = download(client, "/api/download/grids.csv")
    assert resp.data != before and "改名网格" in resp.data.decode("utf-8-sig")
    assert resp.headers["Content-Disposition"] == 'attachment; filename="grids-v3.csv"'


# --- a downloaded Shapefile goes back up -------------------------------------------------------

def test_a_downloaded_shapefile_reuploads_with_no_field_lost(app, viewer_client, loaded):
    client = viewer_client  # a signed-in reader: restricted fields included
    token = app.extensions["gridmap_users"].add("e", "editor")[1]
    zipped = download(client, "/api/download/grids.zip").data
    resp = client.post("/api/uploads/grids", data={"file": (io.BytesIO(zipped), "grids-v2.zip"),
                                                   "message": "round trip"},
                       headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["version"] == 3 and body["features"] == 5
    report = body["report"]
    assert report["format"] == "shapefile" and report["encoding"] == "UTF-8（.cpg）"  # Chinese by default
    assert report["errors"] == [] and report["warnings"] == []  # no unknown (truncated) field names
    assert sorted(report["notes"]) == ["字段 grid_worke 已改名为 grid_workers", "字段 party_bran 已改名为 party_branch",
                                       "字段 party_memb 已改名为 party_members"]

    def properties(version: int) -> dict:
        doc = json.loads(download(client, f"/api/download/grids.geojson?version={version}").data)
        return {f["properties"]["grid_id"]: f["properties"] for f in doc["features"]}

    before, after = properties(2), properties(3)
    assert list(after["g00"]) == GRID_FIELDS
    for key, props in before.items():
        # a DBF cannot tell an empty text from a null: both come back null
        assert after[key] == {k: (v if v != "" else None) for k, v in props.items()}, key
    assert after["g11"]["population"] is None and after["g10"]["instructor"] is None


def test_csv_cells_cannot_start_a_formula(client, store):
    """OWASP CSV injection: text starting = + - @ tab CR gets a leading ', numbers stay numbers."""
    grids = six_grids()
    hostile = ["=1+1", "+86", "-x", "@SUM(A1)", "=2", "-cmd|' /C calc'!A0"]  # (a leading tab or CR is trimmed)
    grids["name"] = hostile
    grids["change"] = [-3, 1, 2, 3, 4, 5]  # a numeric column kept from an upload
    store.write("grids", validate(grids, "grids").data, author="tester")
    rows = list(csv.DictReader(io.StringIO(download(client, "/api/download/grids.csv").data.decode("utf-8-sig"),
                                           newline="")))
    by_key = dict(zip(grids["grid_id"], zip(hostile, grids["change"])))
    assert {r["grid_id"]: r["name"] for r in rows} == {k: "'" + name for k, (name, _) in by_key.items()}
    assert {r["grid_id"]: r["change"] for r in rows} == {k: str(change) for k, (_, change) in by_key.items()}


def test_kml_is_well_formed_whatever_the_property_names(client, store, ogrinfo):
    """A property named like markup (kept from an upload) still gives a KML file XML parsers and GDAL read."""
    grids = six_grids()
    grids["<img src=x onerror=alert(1)>"] = "]]><b>"
    grids['say "hi"'] = "x"
    store.write("grids", validate(grids, "grids").data, author="tester")
    data = download(client, "/api/download/grids.kml").data
    root = ElementTree.fromstring(data)
    names = [e.get("name") for e in root.iter("{http://www.opengis.net/kml/2.2}SimpleField")]
    assert "<img src=x onerror=alert(1)>" in names and 'say "hi"' in names
    assert feature_count(ogrinfo(data, "grids.kml")) == 6
