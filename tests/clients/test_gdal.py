"""GDAL's OAPIF driver, as QGIS and scripts use it: ogrinfo lists and filters, ogr2ogr copies."""

from __future__ import annotations

import re

import pyogrio
import pytest

from .conftest import run_gdal


@pytest.fixture(scope="module")
def collections(demo_api) -> list[str]:
    return [c["id"] for c in demo_api.get("/api/collections").json()["collections"]]


def matched(server, path: str) -> int:
    return server.get(path, params={"limit": 1}).json()["numberMatched"]


def test_ogrinfo_lists_every_collection(gdal_tools, demo_api, collections):
    result = run_gdal([gdal_tools["ogrinfo"], "-ro", f"OAPIF:{demo_api.api}"])
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^\d+: (\S+) \(title: ([^)]*)\)", result.stdout, flags=re.M)
    assert [name for name, _ in listed] == collections
    assert ("grids", "网格") in listed  # titles in the default language: GDAL asks for none


def test_ogrinfo_summary_counts_and_types(gdal_tools, demo_api):
    result = run_gdal([gdal_tools["ogrinfo"], "-ro", "-so", f"OAPIF:{demo_api.api}", "centers"])
    assert result.returncode == 0, result.stderr
    assert f"Feature Count: {matched(demo_api, '/api/collections/centers/items')}" in result.stdout
    assert re.search(r"^Extent: \(1[12]\d\.\d+, [23]\d\.\d+\) - \(1[12]\d\.\d+, [23]\d\.\d+\)", result.stdout, re.M)
    assert "floor_area_m2: Real" in result.stdout and "name: String" in result.stdout


def test_ogr2ogr_copies_every_grid_with_chinese_names(gdal_tools, demo_api, tmp_path):
    out = tmp_path / "grids.gpkg"
    result = run_gdal([gdal_tools["ogr2ogr"], "-f", "GPKG", str(out), f"OAPIF:{demo_api.api}", "grids"], timeout=600)
    assert result.returncode == 0, result.stderr
    copied = pyogrio.read_dataframe(out, layer="grids")
    expected = matched(demo_api, "/api/collections/grids/items")
    assert len(copied) == expected > 8000
    assert copied["grid_id"].is_unique
    by_id = copied.set_index("grid_id")
    page = demo_api.get("/api/collections/grids/items", params={"limit": 50, "offset": 4000}).json()["features"]
    for feature in page:
        row = by_id.loc[feature["id"]]
        assert row["name"] == feature["properties"]["name"] and re.search(r"[\u4e00-\u9fff]", row["name"])
        assert row["community"] == feature["properties"]["community"]
        assert row["population"] == feature["properties"]["population"]
    assert copied.geometry.is_valid.all()
    # the layer's declared type is the truth: GDAL took it from the first page, with no -nlt PROMOTE_TO_MULTI
    assert pyogrio.read_info(out, layer="grids")["geometry_type"] == "MultiPolygon"
    assert set(copied.geom_type) == {"MultiPolygon"}
    assert "geometry type" not in result.stderr.lower() and "not normally allowed" not in result.stderr, result.stderr


def test_ogrinfo_names_each_layers_crs_and_one_geometry_type(gdal_tools, demo_api, collections):
    """GDAL 3.6 reads collections as WGS84 whatever they list (its OAPIF driver takes Part 2's crs lists from
    3.7 on), and each layer's type from the first page: MultiPolygon for every polygonal one, MultiLineString for roads."""
    result = run_gdal([gdal_tools["ogrinfo"], "-ro", "-so", "-al", f"OAPIF:{demo_api.api}"])
    assert result.returncode == 0, result.stderr
    layers = re.split(r"^Layer name: ", result.stdout, flags=re.M)[1:]
    assert [layer.split("\n", 1)[0] for layer in layers] == collections
    for layer in layers:
        name = layer.split("\n", 1)[0]
        assert re.search(r'GEOGCRS\["WGS 84"', layer), layer
        kind = re.search(r"^Geometry: (.+)$", layer, re.M).group(1)
        expected = {"centers": "Point", "roads": "Multi Line String"}.get(name, "Multi Polygon")
        assert kind == expected, (name, kind)


def test_ogr2ogr_copies_the_geojson_download_as_multipolygons(gdal_tools, demo_api, tmp_path):
    source = tmp_path / "grids.geojson"
    source.write_bytes(demo_api.get("/api/download/grids.geojson").content)
    out = tmp_path / "grids.gpkg"
    result = run_gdal([gdal_tools["ogr2ogr"], "-f", "GPKG", str(out), str(source)])
    assert result.returncode == 0, result.stderr
    assert pyogrio.read_info(out)["geometry_type"] == "MultiPolygon"
    assert len(pyogrio.read_dataframe(out)) == matched(demo_api, "/api/collections/grids/items") > 8000
    assert "not normally allowed" not in result.stderr, result.stderr


def test_attribute_and_spatial_filters_run_on_the_server(gdal_tools, demo_api):
    """GDAL reads the items parameters from the OpenAPI document: with filter-lang's enum holding cql-text
    it sends -where as ?filter=…&filter-lang=cql-text (Part 3), beside the bbox."""
    result = run_gdal([gdal_tools["ogrinfo"], "--debug", "on", "-ro", "-so", f"OAPIF:{demo_api.api}", "centers",
                       "-where", "district = '海曙区'", "-spat", "121.4", "29.7", "121.7", "30.0"])
    assert result.returncode == 0, result.stderr
    fetched = re.findall(r"Fetch\((\S+/collections/centers/items\S*)\)", result.stderr)
    assert any("filter=district+%3D+'%E6%B5%B7%E6%9B%99%E5%8C%BA'" in url and "filter-lang=cql-text" in url
               and "bbox=" in url for url in fetched), fetched
    count = int(re.search(r"Feature Count: (\d+)", result.stdout).group(1))
    assert count == demo_api.get("/api/collections/centers/items", params={
        "district": "海曙区", "bbox": "121.4,29.7,121.7,30.0", "limit": 1}).json()["numberMatched"] > 0
