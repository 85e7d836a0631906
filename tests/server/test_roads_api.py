"""The roads layer (SPEC §1, issue #16) through the API: uploaded with network warnings, downloaded in
every format and uploaded back the same, served as an OGC collection and edited by Part 4."""

from __future__ import annotations

import io
import json

import geopandas as gpd
import pytest
from shapely import LineString, MultiLineString

X, Y = 121.55, 29.87  # Ningbo
D = 0.001


def roads() -> gpd.GeoDataFrame:
    """A T junction, a road drawn twice over one block, and an island across the river."""
    return gpd.GeoDataFrame({
        "road_id": ["r1", "r2", "r3", "r4"],
        "name": ["中山路", "解放路", None, "江东路"],
        "highway": ["primary", "residential", "footway", "residential"],
        "walkable": [True, None, False, True],
    }, geometry=[
        LineString([(X, Y), (X + D, Y), (X + 2 * D, Y)]),
        LineString([(X + D, Y), (X + D, Y + D)]),
        MultiLineString([[(X + 2 * D, Y), (X + D, Y)]]),  # repeats r1's second segment, reversed
        LineString([(X, Y + 5 * D), (X + D, Y + 5 * D)]),  # shares no vertex with the rest
    ], crs="EPSG:4326")


def post(client, headers, data: bytes, name: str, **form):
    return client.post("/api/uploads/roads", data={**form, "file": (io.BytesIO(data), name)}, headers=headers,
                       content_type="multipart/form-data")


def test_roads_upload_with_network_warnings_and_defaults(client, editor, store):
    resp = client.post("/api/uploads/roads?lang=en", headers=editor,
                       data={"file": (io.BytesIO(roads().to_json(drop_id=True).encode()), "roads.geojson")},
                       content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    report = resp.get_json()["report"]
    assert report["errors"] == []
    warned = {w["key"]: w["message"] for w in report["warnings"]}
    assert set(warned) == {"r3", "r4"}  # r1, r2 meet at a shared vertex; the footway r3 repeats r1
    assert "repeats one of feature 1" in warned["r3"]
    assert "not connected" in warned["r4"]
    assert store.current("roads").features == 4
    items = client.get("/api/collections/roads/items").get_json(force=True)["features"]
    by_id = {f["id"]: f for f in items}
    assert by_id["r2"]["properties"]["walkable"] is True  # blank: the default
    assert by_id["r3"]["properties"]["walkable"] is False
    assert {f["geometry"]["type"] for f in items} == {"MultiLineString"}  # one type, as for polygons
    assert "roads" in [c["id"] for c in client.get("/api/collections").get_json(force=True)["collections"]]


def ids(client, query: str) -> list[str]:
    resp = client.get(f"/api/collections/roads/items?{query}")
    assert resp.status_code == 200, resp.get_json()
    return sorted(f["id"] for f in resp.get_json(force=True)["features"])


def test_filtering_roads_by_walkable(client, editor, store):
    """?walkable=true|false answers the roads stored as JSON true / false (r2's blank is stored true)."""
    resp = post(client, editor, roads().to_json(drop_id=True).encode(), "roads.geojson")
    assert resp.status_code == 201, resp.get_json()
    assert ids(client, "walkable=true") == ["r1", "r2", "r4"]
    assert ids(client, "walkable=false") == ["r3"]
    assert ids(client, "walkable=1&highway=residential") == ["r2", "r4"]
    assert ids(client, "walkable=true&filter=highway%3D%27primary%27") == ["r1"]
    assert client.get("/api/collections/roads/items?walkable=false").get_json(force=True)["numberMatched"] == 1
    download = client.get("/api/download/roads.geojson?walkable=false")  # a whole frame filtered (not the store)
    assert download.status_code == 200
    assert [f["properties"]["road_id"] for f in download.get_json(force=True)["features"]] == ["r3"]
    bad = client.get("/api/collections/roads/items?walkable=sometimes")
    assert bad.status_code == 400 and "walkable" in bad.get_json()["error"]["message"]


def test_bad_walkable_and_wrong_geometry_are_errors(client, editor, store):
    bad = roads()
    bad["walkable"] = bad["walkable"].astype(object)
    bad.loc[0, "walkable"] = "sometimes"
    resp = post(client, editor, bad.to_json(drop_id=True).encode(), "roads.geojson")
    assert resp.status_code == 422
    assert any(e["field"] == "walkable" and e["key"] == "r1" for e in resp.get_json()["report"]["errors"])
    points = roads()
    points.loc[1, "geometry"] = points.geometry[1].centroid
    resp = post(client, editor, points.to_json(drop_id=True).encode(), "roads.geojson")
    assert resp.status_code == 422 and store.current("roads") is None


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "zip", "kml", "csv"])
def test_every_download_format_holds_the_roads(client, editor, store, fmt):
    assert post(client, editor, roads().to_json(drop_id=True).encode(), "roads.geojson").status_code == 201
    got = client.get(f"/api/download/roads.{fmt}")
    assert got.status_code == 200, got.get_data(as_text=True)[:300]
    if fmt == "csv":
        text = got.get_data(as_text=True)
        assert "MULTILINESTRING" in text and "r4" in text
        return
    again = post(client, editor, got.data, f"roads.{fmt}", dry_run="1")  # what we give back, we take back
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["report"]["errors"] == []
    name = {"zip": "roads.zip"}.get(fmt, f"roads.{fmt}")
    resp = post(client, editor, got.data, name)
    assert resp.status_code == 201, resp.get_json()
    items = {f["id"]: f["properties"] for f in
             client.get("/api/collections/roads/items").get_json(force=True)["features"]}
    assert {k: v["walkable"] for k, v in items.items()} == {"r1": True, "r2": True, "r3": False, "r4": True}
    assert items["r1"]["name"] == "中山路"


def test_part4_creates_a_road(client, editor, store):
    assert post(client, editor, roads().to_json(drop_id=True).encode(), "roads.geojson").status_code == 201
    body = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[X, Y], [X, Y - D]]},
            "properties": {"road_id": "r5", "highway": "service"}}
    resp = client.post("/api/collections/roads/items", data=json.dumps(body),
                       headers={**editor, "Content-Type": "application/geo+json"})
    assert resp.status_code == 201, resp.get_json()
    assert store.current("roads").features == 5
    assert client.get("/api/collections/roads/items/r5").get_json(force=True)["properties"]["walkable"] is True


def test_a_what_if_asks_for_network_catchments(client, editor, store):
    from geodata.validate import validate
    from tests.geodata.test_network import river_town

    grids, centers, roads_ = river_town()
    for name, layer in (("grids", grids), ("centers", centers), ("roads", roads_)):
        store.write(name, validate(layer, name).data, author="t")

    def north(query: str = "") -> float:
        resp = client.get(f"/api/collections/coverage/items/north{query}", headers=editor)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
        return resp.get_json(force=True)["properties"]["coverage_ratio"]

    assert north() == pytest.approx(1.0)  # the disc crosses the river
    assert north("?catchment=network") == 0.0  # walking, the bridge is 1,500 m away
    assert client.get("/api/collections/coverage/items?catchment=bus", headers=editor).status_code == 400


def test_the_upload_and_history_pages_offer_roads(client, editor, store):
    assert post(client, editor, roads().to_json(drop_id=True).encode(), "roads.geojson").status_code == 201
    page = client.get("/upload?lang=en", headers=editor).get_data(as_text=True)
    assert 'value="roads" data-key="road_id"' in page and "Roads (walking network)" in page
    history = client.get("/history/roads?lang=en", headers=editor)
    assert history.status_code == 200 and "Roads" in history.get_data(as_text=True)
