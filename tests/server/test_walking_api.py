"""Walking analyses through the API (issue #16): the catchments collection and its tiles, walk gaps and the
life circles in the summary, walking recommendations; on the river town of tests/geodata/test_network.py."""

from __future__ import annotations

import mapbox_vector_tile

from geodata import tiles
from tests.geodata.test_network import UTM, X0, Y0, capsule
from tests.server.test_dashboard import walking_client  # noqa: F401  (the fixture)


def test_catchments_collection_and_its_tiles(walking_client):  # noqa: F811
    body = walking_client.get("/api/collections/catchments/items?limit=1000").get_json(force=True)
    kinds = {f["properties"]["kind"] for f in body["features"]}
    assert kinds == {"walk", "ring"}
    rings = {f["properties"]["distance_m"] for f in body["features"] if f["properties"]["kind"] == "ring"}
    assert rings == {300, 500, 1000}
    import geopandas as gpd

    walk = gpd.GeoDataFrame.from_features([f for f in body["features"] if f["properties"]["kind"] == "walk"],
                                          crs="EPSG:4326").to_crs(UTM)
    # the walk's polygons (the analysis' own, a 500 m tile each: they may overlap) cover exactly the capsule
    assert walk.union_all().area == __import__("pytest").approx(capsule(1000), rel=1e-4)
    lon, lat = gpd.GeoSeries.from_xy([X0 + 500], [Y0], crs=UTM).to_crs(4326).iloc[0].coords[0]
    x, y = tiles.tile_of(lon, lat, 14)
    resp = walking_client.get(f"/api/collections/catchments/tiles/WebMercatorQuad/14/{y}/{x}")
    assert resp.status_code == 200
    layer = mapbox_vector_tile.decode(resp.data)["catchments"]
    assert {f["properties"]["kind"] for f in layer["features"]} == {"walk", "ring"}
    assert walking_client.get(f"/api/collections/catchments/tiles/WebMercatorQuad/9/{y >> 5}/{x >> 5}").status_code \
        == 204  # below the layer's first zoom


def test_summary_and_gaps_of_a_walking_analysis(walking_client):  # noqa: F811
    total = walking_client.get("/api/summary?level=total").get_json()["rows"][0]
    assert total["ring_300_population"] == 130 and total["ring_500_population"] == 333
    assert total["walk_gap"] == 3
    gaps = walking_client.get("/api/collections/gaps/items?kind=walk_gap").get_json(force=True)["features"]
    assert sorted(f["properties"]["grid_id"] for f in gaps) == ["bank", "edge", "north"]
    what_if = walking_client.get("/api/summary?level=total&life_circles_m=800")
    assert what_if.status_code in (200, 401, 403)  # a what-if: signed-in users only unless public
