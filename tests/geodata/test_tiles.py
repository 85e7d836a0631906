"""Vector tiles cut from a collection: WebMercatorQuad arithmetic, clipping, the 4096 grid with y
down, shared edges kept shared, only the map's properties, and each layer from its zoom on."""

from __future__ import annotations

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
import shapely
import shapely.geometry
from shapely import box

from geodata import tiles
from geodata.errors import NotFound

Z, X, Y = 14, 13723, 6766  # over Ningbo: 301.55/360·2¹⁴ = 13723.9; (1 − asinh(tan 29.87°)/π)/2·2¹⁴ = 6766.6


def quarter(col: int, row: int, z: int = Z, x: int = X, y: int = Y):
    """A quarter of the tile (col, row in 0..1, row 0 at the top) as a Web Mercator box."""
    minx, miny, maxx, maxy = tiles.tile_bounds(z, x, y)
    half = (maxx - minx) / 2
    return box(minx + col * half, maxy - (row + 1) * half, minx + (col + 1) * half, maxy - row * half)


def layer(name: str, rows: list[dict], geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=list(geoms), crs=3857).to_crs(4326)


def decoded(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def test_tile_boxes_by_hand():
    o = tiles.ORIGIN
    assert tiles.tile_bounds(0, 0, 0) == (-o, -o, o, o)
    assert tiles.tile_bounds(1, 1, 0) == (0, 0, o, o)  # column 1, row 0: the north-east quarter
    assert tiles.tile_of(0.0, 0.0, 1) == (1, 1) and tiles.tile_of(-180, 85.06, 3) == (0, 0)
    assert tiles.tile_of(121.55, 29.87, Z) == (X, Y)


def test_two_grids_on_the_4096_grid_with_their_shared_edge_shared():
    grids = layer("grids", [{"grid_id": "a", "name": "甲", "instructor": "王", "population": 5},
                            {"grid_id": "b", "name": "乙", "instructor": "李", "population": 7}],
                  [quarter(0, 0), quarter(1, 0)])
    source = tiles.TileSource.of("grids", grids, list(grids.columns))
    features = decoded(source.tile(Z, X, Y))["grids"]["features"]
    assert [f["properties"] for f in features] == [{"grid_id": "a", "name": "甲"}, {"grid_id": "b", "name": "乙"}]
    rings = [{tuple(p) for p in f["geometry"]["coordinates"][0]} for f in features]
    assert rings[0] == {(0, 0), (2048, 0), (2048, 2048), (0, 2048)}
    assert rings[1] == {(2048, 0), (4096, 0), (4096, 2048), (2048, 2048)}
    assert {(2048, 0), (2048, 2048)} <= rings[0] & rings[1]  # the same edge in both
    # MVT's winding: exteriors clockwise on screen, so counter-clockwise in these y-down numbers
    assert all(shapely.is_ccw(shapely.LinearRing(f["geometry"]["coordinates"][0])) for f in features)


def test_a_feature_is_clipped_a_little_beyond_the_tile():
    minx, miny, maxx, maxy = tiles.tile_bounds(Z, X, Y)
    wide = box(minx - (maxx - minx), miny, maxx + (maxx - minx), maxy)  # three tiles wide
    source = tiles.TileSource.of("districts", layer("districts", [{"adcode": "330203", "name": "海曙区"}], [wide]),
                                 ["adcode", "name"])
    (feature,) = decoded(source.tile(Z, X, Y))["districts"]["features"]
    xs = {p[0] for p in feature["geometry"]["coordinates"][0]}
    assert xs == {-tiles.BUFFER, tiles.EXTENT + tiles.BUFFER}


def test_points_keep_their_place_and_hidden_fields_stay_out():
    minx, miny, maxx, maxy = tiles.tile_bounds(Z, X, Y)
    from shapely import Point
    centers = layer("centers", [{"center_id": "c1", "name": "中心", "level": "community", "floor_area_m2": 3.0}],
                    [Point(minx + (maxx - minx) / 4, maxy - (maxy - miny) / 4)])
    source = tiles.TileSource.of("centers", centers, ["center_id", "level"])  # "name" hidden from this reader
    (feature,) = decoded(source.tile(Z, X, Y))["centers"]["features"]
    assert feature["geometry"]["coordinates"] == [1024, 1024]
    assert feature["properties"] == {"center_id": "c1", "level": "community"}


def test_nothing_below_the_layers_zoom_or_outside_its_features():
    grids = layer("grids", [{"grid_id": "a", "name": "甲"}], [quarter(0, 0)])
    source = tiles.TileSource.of("grids", grids, ["grid_id", "name"])
    assert source.tile(tiles.MIN_ZOOM["grids"] - 1, X >> 4, Y >> 4) is None
    assert source.tile(Z, X + 2, Y) is None
    assert source.tile(Z - 3, X >> 3, Y >> 3) is not None


def test_coverage_below_the_grids_zoom_is_the_grids_dissolved_by_district_and_status():
    """A province's first view: not 85,000 grids a tile, one shape per district and status."""
    rows = [{"grid_id": g, "name": g, "district": d, "coverage_status": status, "population": 1}
            for g, d, status in (("a", "海曙区", "covered"), ("b", "海曙区", "covered"), ("c", "海曙区", "uncovered"),
                                 ("d", "江北区", "covered"))]
    coverage = layer("coverage", rows, [quarter(0, 0), quarter(1, 0), quarter(0, 1), quarter(1, 1)])
    source = tiles.TileSource.of("coverage", coverage, list(coverage.columns))
    z = tiles.MIN_ZOOM["coverage"] - 1
    assert tiles.first_zoom("coverage") == 0
    features = decoded(source.tile(z, X >> (Z - z), Y >> (Z - z)))["coverage"]["features"]
    assert sorted(tuple(sorted(f["properties"].items())) for f in features) == [
        (("coverage_status", "covered"), ("district", "江北区")), (("coverage_status", "covered"), ("district", "海曙区")),
        (("coverage_status", "uncovered"), ("district", "海曙区"))]
    covered = next(f for f in features if f["properties"] == {"district": "海曙区", "coverage_status": "covered"})
    assert covered["geometry"]["type"] == "Polygon"  # a and b merged along their shared edge
    # from the grids' zoom on, each grid again, with what the map shows of it
    assert len(decoded(source.tile(Z, X, Y))["coverage"]["features"]) == 4


@pytest.mark.parametrize("z, x, y", [(23, 0, 0), (-1, 0, 0), (2, 4, 0), (2, 0, 4), (2, -1, 0)])
def test_tiles_outside_the_matrix_set_are_not_found(z, x, y):
    with pytest.raises(NotFound):
        tiles.check_tile(z, x, y)


def test_matrix_set_by_hand():
    doc = tiles.tile_matrix_set()
    assert [m["id"] for m in doc["tileMatrices"]] == [str(z) for z in range(tiles.MAX_ZOOM + 1)]
    zero = doc["tileMatrices"][0]
    assert zero["matrixWidth"] == 1 and zero["pointOfOrigin"] == [-tiles.ORIGIN, tiles.ORIGIN]
    assert zero["cellSize"] == pytest.approx(156543.03392804097)  # 2π·6378137 m / 256
    limits = tiles.matrix_limits("districts", [121.5, 29.8, 121.6, 29.9])
    assert limits[Z]["minTileCol"] <= X <= limits[Z]["maxTileCol"] and limits[0]["maxTileRow"] == 0


def test_a_source_updated_from_the_last_version_cuts_what_a_cold_one_does():
    rows = [{"grid_id": f"g{i}", "name": f"网格{i}", "population": i} for i in range(4)]
    old = layer("grids", rows, [quarter(i % 2, i // 2) for i in range(4)])
    source = tiles.TileSource.of("grids", old, list(old.columns))
    # g1 renamed, g2 reshaped, g3 gone, g4 new; g0 only changes a field tiles do not carry
    new = layer("grids", [{**rows[0], "population": 99}, {**rows[1], "name": "新名"}, rows[2],
                          {"grid_id": "g4", "name": "网格4", "population": 4}],
                [quarter(0, 0), quarter(1, 0), quarter(0, 1).buffer(-1e-4), quarter(1, 1)]).iloc[::-1]
    updated = source.updated(new)
    assert list(updated.keys) == ["g0", "g1", "g2", "g4"]  # in key order, as a cold source
    assert updated.geometries[0] is source.geometries[0]  # unchanged: not projected again
    # the old and new boxes of g1, g2, g3 (gone) and g4 (new); not g0's
    assert len(updated.touched) == 6
    cold = tiles.TileSource.of("grids", new, list(new.columns))
    for z, x, y in [(Z, X, Y), (Z + 1, 2 * X, 2 * Y), (Z + 1, 2 * X + 1, 2 * Y + 1)]:
        assert updated.tile(z, x, y) == cold.tile(z, x, y)
    assert tiles.TileSource.of("grids", new.drop(columns="grid_id"), ["name"]).updated(new) is None  # no keys


def test_mercator_boxes_are_the_projected_corners():
    boxes = tiles.mercator_boxes([[121.5, 29.8, 121.6, 29.9]])
    corners = tiles.to_mercator(np.array([shapely.Point(121.5, 29.8), shapely.Point(121.6, 29.9)], dtype=object))
    assert np.allclose(boxes[0], [*shapely.get_coordinates(corners).ravel()])


def test_an_updated_coverage_keeps_the_overview_shapes_its_change_has_no_part_in():
    rows = [{"grid_id": g, "name": g, "district": d, "coverage_status": "covered"}
            for g, d in (("a", "海曙区"), ("b", "海曙区"), ("c", "江北区"), ("d", "江北区"))]
    old = layer("coverage", rows, [quarter(0, 0), quarter(1, 0), quarter(0, 1), quarter(1, 1)])
    source = tiles.TileSource.of("coverage", old, list(old.columns))
    z = tiles.MIN_ZOOM["coverage"] - 1
    source.tile(z, X >> (Z - z), Y >> (Z - z))  # the overview made
    new = old.assign(coverage_status=["covered", "covered", "uncovered", "covered"])  # c: 江北区 changes
    updated = source.updated(new)
    overview = updated.overview.func(*updated.overview.args)
    kept = dict(zip(overview.table.district, overview.geometries))["海曙区"]
    assert kept is dict(zip(source.overview.table.district, source.overview.geometries))["海曙区"]  # not merged again
    cold = tiles.TileSource.of("coverage", new, list(new.columns))
    assert updated.tile(z, X >> (Z - z), Y >> (Z - z)) == cold.tile(z, X >> (Z - z), Y >> (Z - z))


# --- below the grids' zoom: shapes generalised once a zoom ------------------------------------------------

def block(step_m: float = 400.0, n: int = 10):
    """n × n grids of ``step_m`` metres (Web Mercator) near Ningbo: the left half covered but for one grid in
    its middle (a speck at low zoom), the right half partly covered."""
    x0, y0 = tiles.tile_bounds(Z, X, Y)[:2]
    rows, geoms = [], []
    for i in range(n):
        for j in range(n):
            status = "partial" if i >= n // 2 else "uncovered" if (i, j) == (2, 5) else "covered"
            rows.append({"grid_id": f"g{i:02d}{j:02d}", "name": "格", "district": "海曙区", "coverage_status": status})
            geoms.append(box(x0 + i * step_m, y0 + j * step_m, x0 + (i + 1) * step_m, y0 + (j + 1) * step_m))
    return layer("coverage", rows, geoms)


def polygons(data: bytes, name: str = "coverage") -> dict:
    return {f["properties"]["coverage_status"]: shapely.geometry.shape(f["geometry"])
            for f in decoded(data)[name]["features"]}


def test_a_low_zoom_coverage_tile_merges_specks_into_their_neighbour_and_keeps_shared_edges_shared():
    coverage = block()
    source = tiles.TileSource.of("coverage", coverage, list(coverage.columns))
    z = 8  # a pixel is 305 m: a grid of 400 m is a speck of under 2 px², far below SPECK_PX²
    shapes = polygons(source.tile(z, X >> (Z - z), Y >> (Z - z)))
    assert set(shapes) == {"covered", "partial"}  # the uncovered grid went into the covered area round it
    covered, partial = shapes["covered"], shapes["partial"]
    assert covered.geom_type == "Polygon" and not covered.interiors  # and filled its hole
    # one edge between them, the same vertices on both sides: no gap, no overlap
    assert covered.intersection(partial).area == 0
    assert covered.union(partial).area == covered.area + partial.area
    assert shapely.length(shapely.intersection(covered.boundary, partial.boundary)) > 0
    assert not covered.union(partial).interiors
    # where a grid is 5 px a side it is no speck: its status is drawn
    z = tiles.GENERALIZED_BELOW - 1
    assert set(polygons(source.tile(z, X >> (Z - z), Y >> (Z - z)))) == {"covered", "partial", "uncovered"}


def test_low_zoom_tiles_come_from_shapes_generalised_once_a_zoom(monkeypatch):
    coverage = block()
    source = tiles.TileSource.of("coverage", coverage, list(coverage.columns))
    made = []
    real = tiles.TileSource._generalised
    monkeypatch.setattr(tiles.TileSource, "_generalised", lambda self, z, specks: made.append(z) or real(self, z, specks))
    for z in (8, 8, 7, 9):
        for dx in (0, 1):
            source.tile(z, (X >> (Z - z)) + dx, Y >> (Z - z))
    assert made == list(range(tiles.GENERALIZED_BELOW - 1, 6, -1))  # each zoom once, from the zoom above
    # districts too (no specks merged: each is a unit of its own)
    districts = layer("districts", [{"adcode": "330203", "name": "海曙区"}], [box(*tiles.tile_bounds(Z, X, Y))])
    source = tiles.TileSource.of("districts", districts, list(districts.columns))
    assert decoded(source.tile(6, X >> 8, Y >> 8))["districts"]["features"][0]["properties"]["name"] == "海曙区"
    assert 6 in source.levels


def test_tile_versions_carry_a_low_zoom_coverage_tile_only_across_versions_that_changed_nothing():
    from geodata.cache import VersionCache

    versions, cut = tiles.TileVersions(VersionCache(None)), []
    far = tiles.tile_bounds(Z, X + 40, Y)  # a change many tiles east at zoom Z

    def ask(tag: str, z: int, boxes):
        return versions.tile("lineage", tag, None, z, X >> (Z - z), Y >> (Z - z),
                             lambda: cut.append((tag, z)) or f"{tag}/{z}", lambda *_: boxes, local_from=11)

    for z in (8, 12):
        ask("v1", z, None)
    assert ask("v2", 12, [far]) == "v1/12" and ask("v2", 8, [far]) == "v2/8"  # below 11: cut anew
    assert ask("v3", 8, np.zeros((0, 4))) == "v2/8"  # a version that changed nothing the tiles carry
    assert cut == [("v1", 8), ("v1", 12), ("v2", 8)]
