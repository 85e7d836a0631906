"""OGC API – Tiles over HTTP: the tile matrix set, each collection's tilesets, tiles as MVT with
strong ETags, 204 for an empty tile, JSON errors, and GDAL's MVT driver reading a tile."""

from __future__ import annotations

import json
import shutil
import subprocess

import mapbox_vector_tile
import pandas as pd
import pytest
import shapely.affinity
import shapely.geometry

from geodata import tiles
from geodata.validate import validate
from server import create_app
from tests.factories import grid_row, grids, six_grids, square
from tests.postgres import HEARD_WITHIN_S, heard_within

Z = 14
X, Y = tiles.tile_of(121.515, 29.805, Z)  # inside the six grids' block


@pytest.fixture
def filled(store):
    store.write("grids", validate(six_grids(), "grids").data, author="t")
    return store


def url(collection: str = "grids", z: int = Z, y: int = Y, x: int = X) -> str:
    return f"/api/collections/{collection}/tiles/WebMercatorQuad/{z}/{y}/{x}"


def test_a_tile_is_mvt_of_the_grids_it_meets(client, filled):
    resp = client.get(url())
    assert resp.status_code == 200 and resp.mimetype == tiles.MVT
    layer = mapbox_vector_tile.decode(resp.data)["grids"]
    ids = sorted(f["properties"]["grid_id"] for f in layer["features"])
    assert ids == sorted(six_grids()["grid_id"])  # each meets the tile (121.509° to 121.531° E)
    assert not any({"instructor", "party_members"} & set(f["properties"]) for f in layer["features"])


def test_a_tile_has_a_strong_etag_and_revalidates(client, filled):
    first = client.get(url())
    assert first.headers["ETag"].startswith('"') and not first.headers["ETag"].startswith("W/")
    assert client.get(url(), headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    filled.write("grids", validate(six_grids().assign(population=1), "grids").data, author="t")
    # a new version, but tiles carry no population: the same bytes, the same ETag
    assert client.get(url(), headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    filled.write("grids", validate(six_grids().assign(name="新名"), "grids").data, author="t")
    assert client.get(url(), headers={"If-None-Match": first.headers["ETag"]}).status_code == 200


def test_an_empty_tile_is_204_and_a_tile_below_the_layers_zoom_too(client, filled):
    assert client.get(url(x=X + 50)).status_code == 204
    assert client.get(url(z=5, x=X >> 9, y=Y >> 9)).status_code == 204


@pytest.mark.parametrize("path, status", [
    (url(z=23, x=0, y=0), 404), (url(z=2, x=4, y=0), 404), (url("nothing"), 404),
    ("/api/collections/grids/tiles/WorldCRS84Quad/1/0/0", 404), (url() + "?bbox=1,2,3,4", 400),
])
def test_wrong_tiles_are_json_errors(client, filled, path, status):
    resp = client.get(path)
    assert resp.status_code == status and resp.get_json()["error"]["message"]


def test_the_tilesets_documents_lead_to_the_tiles(client, filled):
    collection = client.get("/api/collections/grids").get_json()
    (link,) = [l for l in collection["links"] if l["rel"].endswith("tilesets-vector")]
    listing = client.get(link["href"]).get_json()
    (summary,) = listing["tilesets"]
    assert summary["dataType"] == "vector" and summary["tileMatrixSetURI"] == tiles.TMS_URI
    self_link = next(l["href"] for l in summary["links"] if l["rel"] == "self")
    tileset = client.get(self_link).get_json()
    item = next(l for l in tileset["links"] if l["rel"] == "item")
    assert item["templated"] and item["type"] == tiles.MVT
    href = item["href"].replace("{tileMatrix}", str(Z)).replace("{tileRow}", str(Y)).replace("{tileCol}", str(X))
    assert client.get(href).status_code == 200
    limits = {l["tileMatrix"]: l for l in tileset["tileMatrixSetLimits"]}
    assert limits[str(Z)]["minTileCol"] <= X <= limits[str(Z)]["maxTileCol"]
    assert min(int(k) for k in limits) == tiles.MIN_ZOOM["grids"]
    assert tileset["layers"][0]["geometryType"] == "polygons"
    scheme = next(l["href"] for l in tileset["links"] if l["rel"].endswith("tiling-scheme"))
    assert client.get(scheme).get_json()["id"] == "WebMercatorQuad"
    sets = client.get("/api/tileMatrixSets").get_json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad"]


def test_conformance_names_tiles(client):
    classes = client.get("/api/conformance").get_json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in classes


def test_derived_collections_have_tiles_too(client, filled):
    layer = mapbox_vector_tile.decode(client.get(url("coverage")).data)["coverage"]
    assert {f["properties"]["coverage_status"] for f in layer["features"]} == {"uncovered"}  # no centres


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL's ogrinfo is not installed (apt install gdal-bin)")
def test_gdal_reads_a_tile(client, filled, tmp_path):
    path = tmp_path / str(Z) / str(X) / f"{Y}.pbf"  # the z/x/y layout GDAL's MVT driver georeferences by
    path.parent.mkdir(parents=True)
    path.write_bytes(client.get(url()).data)
    out = subprocess.run(["ogrinfo", "-ro", "-al", "-so", f"MVT:{path}"], capture_output=True, text=True, check=True)
    assert "Layer name: grids" in out.stdout and "Feature Count: 6" in out.stdout, out.stdout
    assert "grid_id: String" in out.stdout


@pytest.fixture
def postgis_client(tmp_path, postgis_url):
    from server import create_app

    app = create_app({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": postgis_url, "DEMO": False,
                      "TESTING": True})
    app.extensions["gridmap"].store.write("grids", validate(six_grids(), "grids").data, author="t")
    yield app.test_client()
    app.extensions["gridmap"].jobs.close()


def test_postgis_cuts_stored_layers_as_the_app_would(postgis_client, client, filled, monkeypatch):
    from geodata.store.postgis import PostGISStore

    cut = []
    real = PostGISStore.tile
    monkeypatch.setattr(PostGISStore, "tile", lambda self, *a: cut.append(a[:5]) or real(self, *a))
    by_database = mapbox_vector_tile.decode(postgis_client.get(url()).data)["grids"]["features"]
    in_process = mapbox_vector_tile.decode(client.get(url()).data)["grids"]["features"]
    assert cut == [("grids", 1, Z, X, Y)]  # ST_AsMVT, not the app
    key = lambda f: f["properties"]["grid_id"]  # noqa: E731
    by_database, in_process = sorted(by_database, key=key), sorted(in_process, key=key)
    assert [f["properties"] for f in by_database] == [f["properties"] for f in in_process]
    assert "instructor" not in str(by_database)
    for a, b in zip(by_database, in_process):
        box_a, box_b = (shapely.geometry.shape(f["geometry"]).bounds for f in (a, b))
        assert max(abs(p - q) for p, q in zip(box_a, box_b)) <= 1  # the same place, to a tile unit
    assert postgis_client.get(url(x=X + 50)).status_code == 204


def test_coverage_tiles_below_the_grids_zoom_hold_them_dissolved_by_status(client, filled):
    """A province's first view: its coverage tiles hold a shape per district and status, not every grid."""
    z = tiles.MIN_ZOOM["coverage"] - 2
    resp = client.get(url("coverage", z, Y >> (Z - z), X >> (Z - z)))
    assert resp.status_code == 200
    features = mapbox_vector_tile.decode(resp.data)["coverage"]["features"]
    statuses = sorted(f["properties"]["coverage_status"] for f in features)
    assert len(features) == len(set(statuses)) and not any("grid_id" in f["properties"] for f in features)
    coverage = client.get("/api/collections/coverage/items?limit=100").get_json()["features"]
    assert set(statuses) == {f["properties"]["coverage_status"] for f in coverage}
    tileset = client.get("/api/collections/coverage/tiles/WebMercatorQuad").get_json()
    assert tileset["layers"][0]["minTileMatrix"] == "0"
    assert client.get(url("grids", z, Y >> (Z - z), X >> (Z - z))).status_code == 204  # grids: none that far out


# --- an edit re-cuts only the tiles it touches ------------------------------------------------------

FAR = 0.1  # degrees east of the six grids: a block of six more, many tiles away at zoom 14


def two_blocks():
    near = six_grids()
    # in units of their own: a unit's gaps (a missing centre) span all its grids
    far = grids([grid_row(f"h{i % 3}{i // 3}", district="江北区", street="庄桥街道", community="桃苑社区")
                 for i in range(6)],
                [shapely.affinity.translate(g, FAR) for g in near.geometry])
    return validate(pd.concat([near, far], ignore_index=True), "grids").data


def far_url(collection: str) -> str:
    x, y = tiles.tile_of(121.515 + FAR, 29.805, Z)
    return url(collection, Z, y, x)


NEAR_X, NEAR_Y = tiles.tile_of(121.495, 29.805, Z)  # where g00 grows to


def near_url(collection: str = "grids") -> str:
    return url(collection, Z, NEAR_Y, NEAR_X)


def patch_g00(client, app) -> None:
    """A Part 4 PATCH of one grid's shape: g00 reaches one square further west (no gap, no overlap)."""
    token = app.extensions["gridmap_users"].add("editor1", "editor")[1]
    shape = shapely.geometry.mapping(shapely.union_all([square(0, 0), square(-1, 0)]))
    resp = client.patch("/api/collections/grids/items/g00", data=json.dumps({"geometry": shape}),
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"})
    assert resp.status_code == 200, resp.get_json()


@pytest.mark.parametrize("collection", ["grids", "coverage", "gaps"])
def test_an_edit_recuts_only_the_tiles_it_touches(app, client, store, data_dir, collection, monkeypatch):
    store.write("grids", two_blocks(), author="t")
    before = {u: client.get(u) for u in (near_url(collection), far_url(collection))}
    assert all(r.status_code == 200 for r in before.values())
    cut = []
    real = tiles.TileSource.tile
    monkeypatch.setattr(tiles.TileSource, "tile", lambda self, z, x, y: cut.append((z, x, y)) or real(self, z, x, y))
    patch_g00(client, app)

    far = client.get(far_url(collection))
    assert far.headers["ETag"] == before[far_url(collection)].headers["ETag"]  # clients' caches stay valid
    assert far.data == before[far_url(collection)].data and not cut  # and nothing was cut again
    assert client.get(far_url(collection), headers={"If-None-Match": far.headers["ETag"]}).status_code == 304
    near = client.get(near_url(collection))
    assert near.headers["ETag"] != before[near_url(collection)].headers["ETag"] and cut == [(Z, NEAR_X, NEAR_Y)]
    west = [shapes(r.data, collection)["g00"].bounds[0] for r in (before[near_url(collection)], near)]
    assert west[1] < west[0]  # g00 reaches further west now

    cold = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})  # the new version, cut anew
    try:
        assert cold.test_client().get(near_url(collection)).data == near.data
    finally:
        cold.extensions["gridmap"].jobs.close()


def shapes(data: bytes, collection: str) -> dict:
    layer = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})[collection]
    return {f["properties"].get("grid_id"): shapely.geometry.shape(f["geometry"]) for f in layer["features"]}


def test_postgis_recuts_only_the_tiles_an_edit_touches(tmp_path, postgis_url, monkeypatch):
    from geodata.store.postgis import PostGISStore

    app = create_app({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": postgis_url, "DEMO": False,
                      "TESTING": True})
    try:
        client = app.test_client()
        app.extensions["gridmap"].store.write("grids", two_blocks(), author="t")
        before = {u: client.get(u) for u in (near_url(), far_url("grids"))}
        cut = []
        real = PostGISStore.tile
        monkeypatch.setattr(PostGISStore, "tile", lambda self, *a: cut.append(a[2:5]) or real(self, *a))
        patch_g00(client, app)
        # stored by a job's process: this one hears of the new version by the database's notice
        heard_within(HEARD_WITHIN_S, lambda: app.extensions["gridmap"].store.current("grids").version == 2)
        far = client.get(far_url("grids"))
        assert (far.headers["ETag"], far.data) == (before[far_url("grids")].headers["ETag"],
                                                   before[far_url("grids")].data) and not cut
        near = client.get(near_url())
        assert near.headers["ETag"] != before[near_url()].headers["ETag"] and cut == [(Z, NEAR_X, NEAR_Y)]
    finally:
        app.extensions["gridmap"].jobs.close()


def test_a_warm_tile_is_sent_as_gzipped_once_when_cut(client, filled, monkeypatch):
    import flask_compress.flask_compress as compress_module
    import gzip

    first = client.get(url(), headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip" and first.headers["ETag"].endswith(':gzip"')
    plain = client.get(url())  # a client that takes no gzip: the plain bytes, the plain ETag
    assert "Content-Encoding" not in plain.headers and gzip.decompress(first.data) == plain.data
    assert plain.headers["ETag"] == first.headers["ETag"].replace(":gzip", "")
    assert "Accept-Encoding" in first.headers["Vary"]
    gzipped = []
    monkeypatch.setattr(compress_module, "_compress_data", lambda *a: gzipped.append(a) or b"")
    monkeypatch.setattr(gzip, "compress", lambda *a, **k: gzipped.append(a) or b"")
    again = client.get(url(), headers={"Accept-Encoding": "gzip"})
    assert (again.data, again.headers["ETag"]) == (first.data, first.headers["ETag"]) and not gzipped
    assert client.get(url(), headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]}
                      ).status_code == 304


# --- seeding: the low zooms cut before anyone asks ------------------------------------------------------

def low(collection: str = "coverage", z: int = 8) -> str:
    x, y = tiles.tile_of(121.515, 29.805, z)
    return url(collection, z, y, x)


def test_seeded_tiles_are_cut_before_anyone_asks_and_again_after_an_edit(app, client, store, data_dir, monkeypatch):
    from server.tiles import Seeder

    store.write("grids", two_blocks(), author="t")
    seeder = Seeder(app, ["coverage", "districts", "gaps"], max_zoom=8)
    cut = []
    real = tiles.TileSource.tile
    monkeypatch.setattr(tiles.TileSource, "tile", lambda self, z, x, y: cut.append((self.name, z)) or real(self, z, x, y))
    assert seeder.seed() > 0 and ("coverage", 8) in cut and not any(z > 8 for _, z in cut)
    assert not any(name == "gaps" for name, _ in cut)  # drawn from zoom 11 on: nothing to seed
    del cut[:]
    before = client.get(low())
    assert before.status_code == 200 and not cut  # the first visitor's tile was seeded
    assert seeder.seed() == 0  # nothing changed: nothing asked for

    app.extensions["gridmap_seeder"] = seeder
    patch_g00(client, app)  # g00 grows a square west: the coverage's low zooms change
    assert seeder._wake.is_set()  # the edit woke the seeder
    assert seeder.seed() > 0 and ("coverage", 8) in cut
    del cut[:]
    after = client.get(low())
    assert not cut and after.data != before.data and after.headers["ETag"] != before.headers["ETag"]
    cold = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})  # the new version, cut anew
    try:
        assert cold.test_client().get(low()).data == after.data
    finally:
        cold.extensions["gridmap"].jobs.close()


def test_readers_who_differ_only_in_fields_no_tile_holds_share_its_cut(app, client, filled, editor, monkeypatch):
    cut = []
    real = tiles.TileSource.tile
    monkeypatch.setattr(tiles.TileSource, "tile", lambda self, z, x, y: cut.append(z) or real(self, z, x, y))
    anonymous = client.get(url())
    signed_in = client.get(url(), headers=editor)  # sees instructor and party_members, which tiles never carry
    assert anonymous.data == signed_in.data and len(cut) == 1
