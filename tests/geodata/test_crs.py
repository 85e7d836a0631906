"""GCJ-02 / BD-09 conversions and the CRS helpers uploads use."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod
from shapely import Point, Polygon

from geodata.crs import (
    CRS84_URI,
    OUTPUT_CRS,
    bbox_to_crs84,
    from_crs84,
    output_crs,
    bd09_to_gcj02,
    bd09_to_wgs84,
    crs_label,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    geometries_to_wgs84,
    looks_like_lonlat,
    out_of_china,
    parse_crs,
    suggest_source_crs,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geodata.errors import BadRequest

GEOD = Geod(ellps="WGS84")
NINGBO = (121.5440, 29.8683)  # Tianyi Square, WGS84
TOKYO, LONDON = (139.6917, 35.6895), (-0.1276, 51.5072)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.abs(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def random_china(n=1000, seed=20240601):
    rng = np.random.default_rng(seed)
    return rng.uniform(73.5, 135.0, n), rng.uniform(18.0, 53.5, n)


# Reference vectors published in wandergis/coordtransform's README for (116.404, 39.915)
REFERENCE = {
    wgs84_to_gcj02: (116.41024449916938, 39.91640428150164),
    gcj02_to_bd09: (116.41036949371029, 39.92133699351021),
    bd09_to_gcj02: (116.39762729119315, 39.90865673957631),
    wgs84_to_bd09: (116.41662724378733, 39.922699552216216),
}


@pytest.mark.parametrize("function", list(REFERENCE), ids=lambda f: f.__name__)
def test_published_reference_values(function):
    lon, lat = function(116.404, 39.915)
    assert (lon, lat) == pytest.approx(REFERENCE[function], abs=1e-12)


def test_gcj02_to_wgs84_inverts_the_forward_formula_exactly():
    lon, lat = gcj02_to_wgs84(*REFERENCE[wgs84_to_gcj02])
    assert (lon, lat) == pytest.approx((116.404, 39.915), abs=1e-9)
    # coordtransform's one-step inverse of (116.404, 39.915) is (116.39775550083061, 39.91359571849836):
    # close, but centimetres off, where the iteration is exact
    lon, lat = gcj02_to_wgs84(116.404, 39.915)
    assert 0.01 < metres(lon, lat, 116.39775550083061, 39.91359571849836) < 1
    assert wgs84_to_gcj02(lon, lat) == pytest.approx((116.404, 39.915), abs=1e-9)


def test_round_trip_wgs_gcj_wgs_under_a_metre_over_china():
    lon, lat = random_china()
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres(lon, lat, *back).max() < 1.0
    assert metres(lon, lat, *back).max() < 0.001  # in fact: the iteration stops at 1e-9°


def test_round_trip_bd_gcj_bd_under_a_metre():
    lon, lat = random_china()
    bd_lon, bd_lat = gcj02_to_bd09(lon, lat)
    assert metres(bd_lon, bd_lat, *gcj02_to_bd09(*bd09_to_gcj02(bd_lon, bd_lat))).max() < 1.0
    assert metres(lon, lat, *bd09_to_wgs84(*wgs84_to_bd09(lon, lat))).max() < 1.0


def test_forward_shift_near_ningbo_is_a_few_hundred_metres():
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(121.2, 122.0, 200), rng.uniform(29.6, 30.2, 200)
    shift = metres(lon, lat, *wgs84_to_gcj02(lon, lat))
    assert 300 < shift.min() and shift.max() < 700
    assert 300 < metres(*NINGBO, *wgs84_to_gcj02(*NINGBO)) < 700


@pytest.mark.parametrize("place", [TOKYO, LONDON], ids=["Tokyo", "London"])
def test_outside_china_nothing_moves(place):
    assert out_of_china(*place)
    for function in (wgs84_to_gcj02, gcj02_to_wgs84):
        assert function(*place) == place


def test_vectorised_shapes_and_mixed_inside_outside():
    lon = np.array([NINGBO[0], TOKYO[0], np.nan])
    lat = np.array([NINGBO[1], TOKYO[1], np.nan])
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon.shape == (3,) and glon[0] != lon[0] and glon[1] == lon[1] and np.isnan(glon[2])
    wlon, wlat = gcj02_to_wgs84(glon, glat)  # NaN does not keep the iteration going
    assert wlon[:2] == pytest.approx(lon[:2], abs=1e-9) and np.isnan(wlon[2])
    assert gcj02_to_wgs84(np.array([]), np.array([]))[0].shape == (0,)
    assert np.ndim(wgs84_to_gcj02(*NINGBO)[0]) == 0
    assert lon[0] == NINGBO[0]  # inputs are not modified in place


def test_geometries_to_wgs84_moves_every_vertex_and_keeps_z():
    ring = [(121.54, 29.86), (121.56, 29.86), (121.56, 29.88), (121.54, 29.88)]
    hole = [(121.545, 29.865), (121.55, 29.865), (121.55, 29.87)]
    wgs = [Polygon(ring, [hole]), Point(121.55, 29.87, 12.5)]

    def shift(geometry):
        return shapely.transform(geometry, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))

    back = geometries_to_wgs84([shift(wgs[0]), shapely.force_3d(shift(shapely.force_2d(wgs[1])), 12.5)], "gcj02")
    assert shapely.hausdorff_distance(back[0], wgs[0]) < 1e-8
    assert back[1].has_z and back[1].z == 12.5 and back[1].distance(wgs[1]) < 1e-8
    assert geometries_to_wgs84(wgs, "wgs84")[0] is wgs[0]


@pytest.mark.parametrize("text", ["EPSG:4549", "epsg:4490", "4549", " EPSG:4326 ",
                                  "+proj=tmerc +lat_0=0 +lon_0=120 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m",
                                  CRS.from_epsg(4549).to_wkt()])
def test_parse_crs_accepts_codes_wkt_and_proj_strings(text):
    assert parse_crs(text).is_projected or parse_crs(text).is_geographic


@pytest.mark.parametrize("text", ["EPSG:999999", "/etc/passwd", "+init=epsg:4326", "+proj=longlat +init=/etc/passwd",
                                  "http://127.0.0.1/crs", "Ningbo", "", "EPSG:5773"])
def test_parse_crs_refuses_anything_else_with_400(text):
    with pytest.raises(BadRequest) as caught:
        parse_crs(text)
    assert caught.value.status == 400


def test_crs_label_and_suggestions():
    assert crs_label(CRS.from_epsg(4549)) == "EPSG:4549"
    assert crs_label(CRS.from_user_input("OGC:CRS84")) == "OGC:CRS84"
    assert suggest_source_crs(654_542) == "EPSG:4549"  # Ningbo, CM 120E without zone prefix
    assert suggest_source_crs(40_654_542) == "EPSG:4528"  # 3-degree zone 40, with prefix
    assert CRS.from_user_input(suggest_source_crs(40_654_542)).name.endswith("zone 40")
    assert CRS.from_user_input(suggest_source_crs(21_500_000)).name.endswith("zone 21")
    assert looks_like_lonlat((121.1, 29.6, 122.0, 30.4))
    assert not looks_like_lonlat((645_027, 3_298_886, 654_542, 3_310_104))
    assert not looks_like_lonlat((100, 95, 101, 96))


@pytest.mark.parametrize("text", [
    "+proj=longlat +nadgrids=/etc/passwd", "+proj=longlat +ellps=GRS80 +geoidgrids=@egm96_15.gtx",
    "+proj=longlat +datum=WGS84 +nadgrids=@null", "+proj=pipeline +step +proj=hgridshift +grids=/etc/passwd",
    "+proj=tinshift +file=/etc/passwd", "+proj=longlat +datum=WGS84 /etc/passwd",
    'GEOGCS["x",DATUM["d",SPHEROID["s",6378137,298.25]],PRIMEM["G",0],UNIT["degree",0.0174532925199433],'
    'EXTENSION["PROJ4","+proj=longlat +nadgrids=/etc/passwd"]]',
    'BOUNDCRS[SOURCECRS[GEOGCRS["x",DATUM["d",ELLIPSOID["s",6378137,298.25]],CS[ellipsoidal,2],'
    'AXIS["lat",north],AXIS["lon",east],ANGLEUNIT["degree",0.0174532925199433]]],TARGETCRS[GEOGCRS["WGS 84",'
    'DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,298.257223563]],CS[ellipsoidal,2],'
    'AXIS["lat",north],AXIS["lon",east],ANGLEUNIT["degree",0.0174532925199433]]],ABRIDGEDTRANSFORMATION["g",'
    'METHOD["NTv2"],PARAMETERFILE["Latitude and longitude difference file","/etc/passwd"]]]',
])
def test_source_crs_naming_a_file_or_grid_is_400_before_proj_sees_it(text, monkeypatch):
    import geodata.crs as crs_module

    class NoProj:  # any use of pyproj's CRS would fail the test
        def __getattr__(self, name):
            raise AssertionError(f"PROJ was asked to read {text!r}")

    monkeypatch.setattr(crs_module, "CRS", NoProj())
    with pytest.raises(BadRequest, match="names a file or grid") as caught:
        parse_crs(text)
    assert caught.value.status == 400


@pytest.mark.parametrize("text", ["ESRI:102100", "+proj=longlat +ellps=GRS80 +towgs84=1,2,3,0,0,0,0 +no_defs",
                                  CRS.from_epsg(4549).to_wkt("WKT1_ESRI"), CRS.from_epsg(2193).to_wkt()])
def test_parse_crs_accepts_esri_codes_towgs84_and_wkt_without_grids(text):
    assert parse_crs(text).is_projected or parse_crs(text).is_geographic


# --- the CRSs the API serves (OGC API - Features Part 2) ---------------------------------------

GK120 = "http://www.opengis.net/def/crs/EPSG/0/4549"


@pytest.mark.parametrize("raw", [GK120, "https://www.opengis.net/def/crs/EPSG/0/4549", "EPSG:4549", "[EPSG:4549]",
                                 "epsg:4549", "urn:ogc:def:crs:EPSG::4549", " EPSG:4549 "])
def test_a_served_crs_in_any_usual_spelling_is_its_uri(raw):
    assert output_crs(raw) == GK120


@pytest.mark.parametrize("raw", ["OGC:CRS84", "[OGC:CRS84]", "CRS84", "", None, CRS84_URI])
def test_crs84_and_no_crs_are_crs84(raw):
    assert output_crs(raw) == CRS84_URI


@pytest.mark.parametrize("raw", ["EPSG:32651", "EPSG:4549x", "4549", "+proj=longlat", "EPSG:0004549" + "9" * 10,
                                 "http://www.opengis.net/def/crs/EPSG/0/4549/extra", "x" * 5000])
def test_other_crs_are_refused_naming_those_served(raw):
    with pytest.raises(BadRequest) as caught:
        output_crs(raw, "bbox-crs")
    assert caught.value.message.startswith("bbox-crs ") and caught.value.details == list(OUTPUT_CRS)
    assert len(caught.value.message) < 600  # a long value is cut short


def test_each_crs_in_its_own_axis_order_and_files_easting_first():
    ningbo = [Point(121.55, 29.87)]
    assert from_crs84(ningbo, output_crs("EPSG:4326"))[0].coords[0] == (29.87, 121.55)
    assert from_crs84(ningbo, output_crs("EPSG:4326"), xy=True)[0].coords[0] == (121.55, 29.87)
    northing, easting = from_crs84(ningbo, GK120)[0].coords[0]
    assert from_crs84(ningbo, GK120, xy=True)[0].coords[0] == (easting, northing)
    assert 3_000_000 < northing < 3_500_000 and 600_000 < easting < 700_000
    x, y = from_crs84(ningbo, output_crs("EPSG:3857"))[0].coords[0]
    assert x == pytest.approx(121.55 * 20037508.342789244 / 180)


def test_a_projected_box_becomes_the_crs84_box_that_holds_it():
    box = (3_299_000.0, 640_000.0, 3_310_000.0, 655_000.0)  # minN, minE, maxN, maxE
    minlon, minlat, maxlon, maxlat = bbox_to_crs84(box, GK120)
    back = from_crs84([shapely.segmentize(shapely.box(minlon, minlat, maxlon, maxlat), 1e-4)], GK120)[0]
    n0, e0, n1, e1 = box
    assert back.buffer(0.01).contains(shapely.box(n0, e0, n1, e1))  # every corner and edge inside, to 1 cm
    assert shapely.box(n0, e0, n1, e1).area / back.area > 0.95  # and little more: the grid is turned


def test_a_box_no_crs_can_hold_is_refused():
    with pytest.raises(BadRequest):
        bbox_to_crs84((-1e308, -1e308, 1e308, 1e308), output_crs("EPSG:3857"))
