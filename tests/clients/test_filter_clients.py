"""Filters pushed to the server by GIS clients, on the Ningbo demo served by ``python -m server``.

- QGIS: the request sequence its OAPIF provider sends (landing page, conformance, collections, the
  collection, queryables, a first page, then ``filter=`` with ``limit=1`` for the count and pages of
  features), for =, LIKE, IN, BETWEEN, CASEI and S_INTERSECTS; each count equals the same expression
  evaluated here, with pandas and shapely, on the layer downloaded whole.
- GDAL 3.6: ``ogr2ogr -where`` against ``OAPIF:`` sends ``filter=…&filter-lang=cql-text`` (seen in the
  server's access log) and copies exactly the features the expression selects, ``ILIKE`` included.
"""

from __future__ import annotations

import io
import re
from urllib.parse import unquote_plus

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from tests.live import live_server

from .conftest import Server, run_gdal

CQL2, PART3 = "http://www.opengis.net/spec/cql2/1.0/conf/", "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"


@pytest.fixture(scope="module")
def served(demo_data_dir, tmp_path_factory):
    """The demo server and its log (gunicorn's access log: one line a request)."""
    log_path = tmp_path_factory.mktemp("logs") / "filter-server.log"
    with live_server(demo_data_dir, log_path, demo=True) as base:
        yield Server(base, demo_data_dir), log_path


@pytest.fixture(scope="module")
def grids(served) -> gpd.GeoDataFrame:
    """The grids layer as a client downloads it whole."""
    server, _ = served
    resp = server.get("/api/download/grids.geojson")
    assert resp.status_code == 200
    return gpd.read_file(io.BytesIO(resp.content))


def requested(log_path, path: str) -> list[str]:
    """The query strings of the requests to ``path`` the server logged, decoded."""
    lines = log_path.read_text(errors="replace").splitlines()
    return [unquote_plus(m.group(1)) for line in lines if (m := re.search(re.escape(path) + r"\?(\S+)", line))]


def test_qgis_request_sequence_gets_every_filter_evaluated_by_the_server(served, grids):
    server, log_path = served
    api = "/api"
    assert server.get(api).status_code == 200
    conformance = set(server.get(f"{api}/conformance").json()["conformsTo"])
    # QGIS sends filters only when all four are declared (else it downloads everything and filters itself)
    assert {CQL2 + "basic-cql2", CQL2 + "cql2-text", PART3 + "filter", PART3 + "features-filter"} <= conformance
    assert {CQL2 + "advanced-comparison-operators", CQL2 + "case-insensitive-comparison",
            CQL2 + "basic-spatial-functions"} <= conformance
    assert "grids" in [c["id"] for c in server.get(f"{api}/collections").json()["collections"]]
    assert server.get(f"{api}/collections/grids").status_code == 200
    queryables = server.get(f"{api}/collections/grids/queryables",
                            headers={"Accept": "application/schema+json"}).json()["properties"]
    # one type string a property (QGIS skips ["integer", "null"]); the geometry by its format
    assert queryables["population"]["type"] == "integer" and queryables["district"]["type"] == "string"
    assert queryables["geometry"]["format"].startswith("geometry-")
    assert len(server.get(f"{api}/collections/grids/items", params={"limit": 10}).json()["features"]) == 10

    district = grids["district"].value_counts().index[0]
    others = grids["district"].value_counts().index[1:3].tolist()
    prefix = grids["name"].iloc[len(grids) // 2][:3]
    minx, miny, maxx, maxy = grids.total_bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    w, h = (maxx - minx) / 10, (maxy - miny) / 10
    area = shapely.box(cx - w, cy - h, cx + w, cy + h)
    line = shapely.LineString([(minx, cy), (maxx, cy)])
    population = grids["population"]
    cases = {  # the filter QGIS sends -> the same selection, evaluated here
        f"\"district\" = '{district}'": grids["district"] == district,
        f"\"name\" LIKE '{prefix}%'": grids["name"].str.startswith(prefix),
        "\"district\" IN (" + ", ".join(f"'{d}'" for d in others) + ")": grids["district"].isin(others),
        "\"population\" BETWEEN 500 AND 1500": population.notna() & (population >= 500) & (population <= 1500),
        "CASEI(\"grid_type\") = casei('INDUSTRIAL_PARK')": grids["grid_type"].str.lower() == "industrial_park",
        f"S_INTERSECTS(\"geometry\", {area.wkt})": grids.intersects(area),
        f"S_INTERSECTS(geometry, {line.wkt})": grids.intersects(line),
        f"\"district\" = '{district}' AND \"population\" > 1000":
            (grids["district"] == district) & population.notna() & (population > 1000),
    }
    for text, local in cases.items():
        local = np.asarray(local.fillna(False) if hasattr(local, "fillna") else local, dtype=bool)
        expected = set(grids["grid_id"][local])
        counted = server.get(f"{api}/collections/grids/items", params={"filter": text, "filter-lang": "cql2-text",
                                                                        "limit": 1})
        assert counted.status_code == 200, (text, counted.text)
        assert counted.json()["numberMatched"] == len(expected) > 0, text
        page = server.get(f"{api}/collections/grids/items", params={"filter": text, "limit": 10_000}).json()
        assert {f["id"] for f in page["features"]} == expected, text
    # every one of them reached the server (QGIS filters locally only what the server cannot)
    seen = requested(log_path, "/api/collections/grids/items")
    for text in cases:
        assert any(f"filter={text}" in query for query in seen), text


def test_ogr2ogr_where_is_sent_as_a_cql_text_filter(gdal_tools, served, grids, tmp_path):
    server, log_path = served
    district = grids["district"].value_counts().index[0]
    where = f"district = '{district}' AND population > 1000"
    out = tmp_path / "filtered.geojson"
    result = run_gdal([gdal_tools["ogr2ogr"], "-f", "GeoJSON", str(out), f"OAPIF:{server.api}", "grids",
                       "-where", where])
    assert result.returncode == 0, result.stderr
    copied = pyogrio.read_dataframe(out)
    population = grids["population"]
    expected = set(grids["grid_id"][(grids["district"] == district) & population.notna() & (population > 1000)])
    assert set(copied["grid_id"]) == expected and len(expected) > 0
    seen = requested(log_path, "/api/collections/grids/items")
    pushed = [q for q in seen if "filter-lang=cql-text" in q and f"district = '{district}'" in q
              and "population > 1000" in q]
    assert pushed, seen[-5:]  # GDAL sent the filter; the server answered it


def test_ogr2ogr_where_ilike_is_answered_case_insensitively(gdal_tools, served, grids, tmp_path):
    server, log_path = served
    prefix = grids["grid_id"].iloc[0][:9]  # a district's code prefix, e.g. 330203-01
    out = tmp_path / "ilike.geojson"
    result = run_gdal([gdal_tools["ogr2ogr"], "-f", "GeoJSON", str(out), f"OAPIF:{server.api}", "grids",
                       "-where", f"grid_id ILIKE '{prefix}%' AND grid_type ILIKE '%PARK'"])
    assert result.returncode == 0, result.stderr
    expected = set(grids["grid_id"][grids["grid_id"].str.startswith(prefix) & (grids["grid_type"] == "industrial_park")])
    assert set(pyogrio.read_dataframe(out)["grid_id"]) == expected and len(expected) > 0
    assert any("ILIKE" in q and "filter-lang=cql-text" in q for q in requested(log_path, "/api/collections/grids/items"))
