"""Every coordinate-reference-system decision in one place.

Layers are stored in WGS84 lon/lat (RFC 7946).  Distances and areas are
never measured in degrees: analysis projects to a metric CRS chosen for the
data — the UTM zone of the data's extent, as OSMnx's ``projection`` does.
"""

from __future__ import annotations

import functools
import math
import re

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

from .errors import BadRequest, Unprocessable
from .i18n import says

STORAGE_CRS = "EPSG:4326"


def metric_crs(gdf: gpd.GeoDataFrame) -> CRS:
    """The UTM zone (WGS84 datum) that holds the centre of ``gdf``'s extent.

    Examples
    --------
    >>> from shapely import Point
    >>> metric_crs(gpd.GeoDataFrame(geometry=[Point(121.55, 29.87)], crs=4326)).to_epsg()  # Ningbo
    32651
    """
    if gdf.empty:
        raise ValueError("cannot choose a metric CRS for an empty layer")
    stored = gdf.crs is not None and gdf.crs.equals(STORAGE_CRS)  # as stored: no projecting 700k vertices
    minx, miny, maxx, maxy = (gdf if stored else gdf.to_crs(STORAGE_CRS)).total_bounds
    # the zone arithmetic directly: pyproj's database query for the same answer takes ~70 ms
    zone = int((((minx + maxx) / 2 + 180) // 6) % 60) + 1
    return CRS.from_epsg((32600 if (miny + maxy) / 2 >= 0 else 32700) + zone)


# --- Chinese web-map coordinates -------------------------------------------
#
# Amap (高德), Tencent and Google China publish GCJ-02 ("Mars coordinates"): WGS84
# lon/lat plus a deliberate, non-linear shift of a few hundred metres.  Baidu adds a
# second shift on top (BD-09).  The formulas are the well-known public ones (as in
# wandergis/coordtransform); the shift is zero outside a rough box around China.

_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
GCJ02_TOLERANCE_DEG = 1e-9  # about 0.1 mm: where the GCJ-02 → WGS84 iteration stops


def out_of_china(lon, lat) -> np.ndarray:
    """True where GCJ-02 leaves coordinates unshifted (outside the public formula's box).

    Examples
    --------
    >>> out_of_china([121.55, 139.69], [29.87, 35.69]).tolist()  # Ningbo, Tokyo
    [False, True]
    """
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS84 at WGS84 (lon, lat), in degrees, ignoring the China box."""
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _KRASOVSKY_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _result(lon: np.ndarray, lat: np.ndarray):
    return lon[()], lat[()]  # 0-d arrays back to numpy scalars


def wgs84_to_gcj02(lon, lat):
    """WGS84 lon/lat to GCJ-02 (Amap, Tencent), vectorised.

    Examples
    --------
    >>> [round(float(v), 9) for v in wgs84_to_gcj02(116.404, 39.915)]  # coordtransform's reference
    [116.410244499, 39.916404282]
    """
    lon, lat = np.array(lon, dtype=float), np.array(lat, dtype=float)
    inside = ~out_of_china(lon, lat)
    dlon, dlat = _gcj02_offset(lon[inside], lat[inside])
    lon[inside] += dlon
    lat[inside] += dlat
    return _result(lon, lat)


def gcj02_to_wgs84(lon, lat, tolerance: float = GCJ02_TOLERANCE_DEG, max_iterations: int = 30):
    """GCJ-02 lon/lat to WGS84 by fixed-point iteration of the forward formula.

    The common one-step inverse is off by up to a few metres; iterating until the
    forward transform of the answer is within ``tolerance`` degrees of the input
    (usually 3-4 rounds) makes the error negligible.  Whether a point is "in China"
    is decided once, on the input, so points near the box edge cannot oscillate.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(116.41024449916938, 39.91640428150164)
    >>> round(float(lon), 9), round(float(lat), 9)
    (116.404, 39.915)
    """
    glon, glat = np.array(lon, dtype=float), np.array(lat, dtype=float)
    inside = ~out_of_china(glon, glat)
    target_lon, target_lat = glon[inside], glat[inside]
    wlon, wlat = target_lon.copy(), target_lat.copy()
    for _ in range(max_iterations):
        dlon, dlat = _gcj02_offset(wlon, wlat)
        err_lon, err_lat = wlon + dlon - target_lon, wlat + dlat - target_lat
        wlon -= err_lon
        wlat -= err_lat
        worst = np.nanmax(np.abs(np.concatenate([err_lon, err_lat]))) if wlon.size else 0.0
        if not worst > tolerance:  # also stops on all-NaN input
            break
    glon[inside], glat[inside] = wlon, wlat
    return _result(glon, glat)


def gcj02_to_bd09(lon, lat):
    """GCJ-02 lon/lat to Baidu's BD-09, vectorised (applied everywhere, as Baidu does).

    Examples
    --------
    >>> [round(float(v), 9) for v in gcj02_to_bd09(116.404, 39.915)]
    [116.410369494, 39.921336994]
    """
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return _result(z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006)


def bd09_to_gcj02(lon, lat):
    """Baidu BD-09 lon/lat to GCJ-02, vectorised (the public closed-form inverse, < 1 cm off).

    Examples
    --------
    >>> [round(float(v), 9) for v in bd09_to_gcj02(116.404, 39.915)]
    [116.397627291, 39.90865674]
    """
    x, y = np.asarray(lon, dtype=float) - 0.0065, np.asarray(lat, dtype=float) - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _result(z * np.cos(theta), z * np.sin(theta))


def bd09_to_wgs84(lon, lat):
    """Baidu BD-09 lon/lat to WGS84 (via GCJ-02).

    Examples
    --------
    >>> [round(float(v), 6) for v in bd09_to_wgs84(*wgs84_to_bd09(121.55, 29.87))]
    [121.55, 29.87]
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def wgs84_to_bd09(lon, lat):
    """WGS84 lon/lat to Baidu BD-09 (via GCJ-02); for tests and fixtures.

    Examples
    --------
    >>> [round(float(v), 9) for v in wgs84_to_bd09(116.404, 39.915)]
    [116.416627244, 39.922699552]
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


TO_WGS84 = {"wgs84": None, "gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}


def geometries_to_wgs84(geometries, coordinates: str) -> np.ndarray:
    """Undo a Chinese web-map shift ("gcj02" or "bd09") on every vertex of ``geometries``.

    Z values, if any, are kept unchanged.

    Examples
    --------
    >>> from shapely import Point
    >>> shapely.set_precision(geometries_to_wgs84([Point(wgs84_to_gcj02(121.55, 29.87))], "gcj02"), 1e-9)[0].wkt
    'POINT (121.55 29.87)'
    """
    geometries = np.asarray(geometries, dtype=object)
    convert = TO_WGS84[coordinates]
    if convert is None:
        return geometries

    def transform(coords: np.ndarray) -> np.ndarray:
        out = np.array(coords, dtype=float)
        out[:, 0], out[:, 1] = convert(out[:, 0], out[:, 1])
        return out

    return shapely.transform(geometries, transform, include_z=None)


# --- CRS helpers for uploads ---------------------------------------------------

# What a person may type as source_crs: an EPSG or ESRI code, WKT, or a PROJ string.
_CRS_TEXT = re.compile(
    r"\s*(?:(?:EPSG|ESRI):\s*\d{4,6}|\d{4,6}|[A-Z][A-Z0-9_]*(?:CRS|CS)\s*\[.*\]|\+proj=[^\n]*)\s*",
    re.DOTALL | re.IGNORECASE,
)
# PROJ opens the files and grids these name (+nadgrids=/etc/passwd, +init=, "@" grid lists,
# WKT's PARAMETERFILE and GDAL's EXTENSION["PROJ4", ...]): SPEC §4 lets no upload make the
# server read a file, so they are refused before PROJ sees the text.
_NAMES_A_FILE = re.compile(r"PARAMETERFILE|GRIDFILE|GEOIDMODEL|EXTENSION\s*\[|nadgrids|geoidgrids|"
                           r"\b(?:init|grids|file)\s*=|@", re.IGNORECASE)
# a PROJ string may only set these (no grids, files, pipelines or steps); +towgs84 is plain numbers
_PROJ_KEYS = frozenset(
    "proj zone south ellps datum towgs84 a b rf f es e R R_A lat_0 lon_0 lat_1 lat_2 lat_ts k k_0 x_0 y_0 "
    "units to_meter no_defs type axis pm gamma alpha lonc no_uoff no_rot h over wktext approx".split())
_PROJ_TOKEN = re.compile(r"\+([A-Za-z_][A-Za-z0-9_]*)(?:=([-+.,0-9A-Za-z_]*))?")


def _names_a_file(text: str) -> str | None:
    """What in ``text`` would make PROJ open a file or grid, or None."""
    if text.lstrip().startswith("+"):
        for key, _ in _PROJ_TOKEN.findall(text):
            if key not in _PROJ_KEYS:
                return f"+{key}"
        rest = _PROJ_TOKEN.sub("", text).strip()  # e.g. a path after an allowed key
        return rest[:40] or None
    found = _NAMES_A_FILE.search(text) if "[" in text else None  # WKT; codes cannot name files
    return found.group(0) if found else None


def parse_crs(text: str) -> CRS:
    """A CRS from what a person typed: ``EPSG:4549``, ``ESRI:102100``, ``4549``, WKT or a PROJ string.

    Raises :class:`~geodata.errors.BadRequest` for anything else, and before PROJ
    sees it for text naming a file or grid (``+nadgrids=``, ``+init=``, WKT's
    ``PARAMETERFILE``): PROJ would open it.

    Examples
    --------
    >>> parse_crs("EPSG:4549").name
    'CGCS2000 / 3-degree Gauss-Kruger CM 120E'
    >>> parse_crs("+proj=longlat +nadgrids=/etc/passwd")
    Traceback (most recent call last):
    geodata.errors.BadRequest: source_crs names a file or grid (+nadgrids): give an EPSG code such as EPSG:4549, or WKT without grid files
    """
    if not isinstance(text, str) or not _CRS_TEXT.fullmatch(text):
        raise BadRequest(says("io.not_a_crs", crs=repr(str(text)[:200])))
    named = _names_a_file(text)
    if named is not None:
        raise BadRequest(says("crs.names_file", named=named))
    try:
        crs = CRS.from_user_input(text.strip())
    except CRSError as exc:
        raise BadRequest(says("crs.unknown", crs=repr(text[:200]), reason=str(exc))) from None
    if not (crs.is_geographic or crs.is_projected):
        raise BadRequest(says("crs.not_horizontal", crs=repr(text[:200])))
    return crs


def crs_label(crs: CRS) -> str:
    """``EPSG:nnnn`` when the CRS has a code, else its name.

    Examples
    --------
    >>> crs_label(CRS.from_epsg(4549))
    'EPSG:4549'
    """
    code = crs.to_epsg(min_confidence=90)
    if code is not None:
        return f"EPSG:{code}"
    authority = crs.to_authority(min_confidence=90)
    return ":".join(authority) if authority else crs.name


def looks_like_lonlat(bounds) -> bool:
    """Whether ``(minx, miny, maxx, maxy)`` fits longitude/latitude.

    Examples
    --------
    >>> looks_like_lonlat((121.1, 29.6, 122.0, 30.4)), looks_like_lonlat((645027, 3298886, 654542, 3310104))
    (True, False)
    """
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    return -180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0


def suggest_source_crs(max_x: float) -> str:
    """A CGCS2000 Gauss-Krüger code that fits projected eastings up to ``max_x``.

    Eastings of 13-45 million carry the zone number in front (e.g. 40 500 000 is
    3-degree zone 40); plain eastings near 500 000 give Ningbo's central meridian 120°E.

    Examples
    --------
    >>> suggest_source_crs(654542.0), suggest_source_crs(40654542.0), suggest_source_crs(21654542.0)
    ('EPSG:4549', 'EPSG:4528', 'EPSG:4499')
    """
    zone = int(max_x // 1_000_000) if np.isfinite(max_x) else 0
    if 25 <= zone <= 45:
        return f"EPSG:{4488 + zone}"  # CGCS2000 / 3-degree Gauss-Kruger zone 25-45: EPSG:4513-4533
    if 13 <= zone <= 23:
        return f"EPSG:{4478 + zone}"  # CGCS2000 / Gauss-Kruger zone 13-23: EPSG:4491-4501
    return "EPSG:4549"  # CGCS2000 / 3-degree Gauss-Kruger CM 120E, Ningbo's zone


def choose_crs(bounds, file_crs: str | None, source_crs: CRS | None, notes: list[str]) -> CRS:
    """The CRS of an upload's coordinates: the file's, else ``source_crs``, else WGS84 if they fit.

    ``bounds`` are the coordinates' (minx, miny, maxx, maxy).  Raises
    :class:`~geodata.errors.Unprocessable` asking for ``source_crs`` when the file
    names no CRS and the coordinates cannot be longitude/latitude, or when a
    longitude/latitude CRS comes with projected-looking coordinates.  Appends what
    it decided to ``notes``.

    Examples
    --------
    >>> notes = []
    >>> choose_crs((121.1, 29.6, 122.0, 30.4), None, None, notes).to_epsg(), notes
    (4326, ['the file names no CRS and its coordinates can be longitude/latitude: read as WGS84'])
    >>> choose_crs((645027, 3298886, 654542, 3310104), None, None, [])
    Traceback (most recent call last):
    geodata.errors.Unprocessable: coordinates look projected (x up to 654542): give source_crs, e.g. EPSG:4549
    """
    named = _names_a_file(file_crs) if file_crs else None
    if named is not None:  # e.g. a .prj with EXTENSION["PROJ4", "... +nadgrids=/etc/passwd"]: PROJ would open it
        raise Unprocessable(says("crs.file_names_file", named=named))
    crs = CRS.from_user_input(file_crs) if file_crs else None
    if crs is not None and source_crs is not None and not crs.equals(source_crs):
        notes.append(says("io.source_crs_unused", given=crs_label(source_crs), crs=crs_label(crs)))
    elif crs is None and source_crs is not None:
        crs = source_crs
        notes.append(says("io.read_as", crs=crs_label(crs)))
    bounds = np.asarray(bounds, dtype=float)
    if not np.isfinite(bounds).all() or looks_like_lonlat(bounds):  # NaN: nothing to judge by
        if crs is None:
            notes.append(says("io.read_as_wgs84"))
            crs = CRS.from_user_input(STORAGE_CRS)
        return crs
    x = float(np.max(np.abs(bounds[[0, 2]])))
    if crs is None:
        raise Unprocessable(says("io.looks_projected", x=f"{x:.0f}", example=suggest_source_crs(x)))
    if crs.is_geographic:
        raise Unprocessable(says("io.projected_not_lonlat", x=f"{x:.0f}", crs=crs_label(crs),
                                 example=suggest_source_crs(x)))
    return crs


# --- CRSs the API serves (OGC API - Features Part 2) ----------------------------------------
#
# Stored coordinates are CRS84 (lon/lat).  Clients may ask for them in any of OUTPUT_CRS: WGS84,
# CGCS2000 (EPSG:4490, China's national datum) and its 3-degree Gauss-Kruger zones at 120°E and
# 123°E (EPSG:4549, EPSG:4550: Zhejiang west and east of 121.5°E), and Web Mercator.  PROJ's
# CGCS2000 <-> WGS84 step is the null "ballpark" transformation (they agree to a few cm).

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
OUTPUT_CRS = (CRS84_URI, *(f"{EPSG_URI}{code}" for code in (4326, 4490, 4549, 4550, 3857)))
_CRS_FORMS = (  # what a client may send for an OUTPUT_CRS: the URI (http or https), a (safe) CURIE, the URN
    (re.compile(r"https?://www\.opengis\.net/def/crs/OGC/1\.3/CRS84|\[?OGC:CRS84\]?|CRS84|"
                r"urn:ogc:def:crs:OGC:1\.3:CRS84", re.IGNORECASE), lambda m: CRS84_URI),
    (re.compile(r"(?:https?://www\.opengis\.net/def/crs/EPSG/0/|\[?EPSG:|urn:ogc:def:crs:EPSG::?)([0-9]{1,6})\]?",
                re.IGNORECASE), lambda m: f"{EPSG_URI}{int(m[1])}"),
)


def output_crs(raw: str | None, name: str = "crs") -> str:
    """The URI of the CRS a request asks for (``crs``, ``bbox-crs``): CRS84 when it asks for none.

    Takes the URI as OGC API - Features Part 2 writes it, or ``EPSG:4549``, ``[EPSG:4549]``.
    Raises :class:`~geodata.errors.BadRequest` naming the CRSs served for any other.

    Examples
    --------
    >>> output_crs("EPSG:4549"), output_crs(None) == CRS84_URI
    ('http://www.opengis.net/def/crs/EPSG/0/4549', True)
    >>> output_crs("http://www.opengis.net/def/crs/EPSG/0/32651")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    geodata.errors.BadRequest: crs '.../EPSG/0/32651' is not a CRS this server serves; use one of: ...CRS84, ...
    """
    if raw is None or raw == "":
        return CRS84_URI
    text = raw.strip()
    for pattern, uri in _CRS_FORMS:
        if (match := pattern.fullmatch(text)) and uri(match) in OUTPUT_CRS:
            return uri(match)
    shown = repr(raw) if len(raw) <= 80 else repr(raw[:80]) + "..."
    raise BadRequest(says("crs.not_served", name=name, value=shown, choices=", ".join(OUTPUT_CRS)),
                     details=list(OUTPUT_CRS))


def epsg_code(uri: str) -> int | None:
    """The EPSG code of an OUTPUT_CRS URI; None for CRS84.

    >>> epsg_code("http://www.opengis.net/def/crs/EPSG/0/4549"), epsg_code(CRS84_URI)
    (4549, None)
    """
    return int(uri[len(EPSG_URI):]) if uri.startswith(EPSG_URI) else None


def _proj_name(uri: str) -> str:
    code = epsg_code(uri)
    return "OGC:CRS84" if code is None else f"EPSG:{code}"


@functools.lru_cache(maxsize=None)
def _transformer(source: str, target: str, always_xy: bool) -> Transformer:
    """One per direction and axis order, made once (PROJ's set-up takes milliseconds; transforms are thread-safe)."""
    return Transformer.from_crs(_proj_name(source), _proj_name(target), always_xy=always_xy)


def from_crs84(geometries, uri: str, *, xy: bool = False) -> np.ndarray:
    """Stored (CRS84 lon/lat) geometries in the CRS ``uri``, vectorised.

    Coordinates come in the CRS's own axis order, as OGC API - Features Part 2 and QGIS
    expect: EPSG:4326 and EPSG:4490 latitude first, the Gauss-Kruger zones northing first,
    CRS84 and EPSG:3857 x first.  ``xy=True`` gives easting (longitude) first whatever the
    CRS, as files (GeoJSON with a ``crs`` member, CSV's WKT) are read by GDAL and QGIS.

    Examples
    --------
    >>> from shapely import Point
    >>> [round(c) for c in from_crs84([Point(121.55, 29.87)], output_crs("EPSG:4549"))[0].coords[0]]
    [3306712, 649758]
    >>> from_crs84([Point(121.55, 29.87)], output_crs("EPSG:4490"))[0].wkt
    'POINT (29.87 121.55)'
    """
    geometries = np.asarray(geometries, dtype=object)
    if uri == CRS84_URI or (xy and uri == f"{EPSG_URI}4326"):
        return geometries
    return _transformed(geometries, _transformer(CRS84_URI, uri, xy))


def to_crs84(geometries, uri: str) -> np.ndarray:
    """Geometries written in the CRS ``uri`` (in its own axis order, as ``from_crs84`` gives them) in CRS84.

    Examples
    --------
    >>> from shapely import Point
    >>> to_crs84([Point(29.87, 121.55)], output_crs("EPSG:4490"))[0].wkt
    'POINT (121.55 29.87)'
    """
    geometries = np.asarray(geometries, dtype=object)
    if uri == CRS84_URI:
        return geometries
    return _transformed(geometries, _transformer(uri, CRS84_URI, False))


def _transformed(geometries: np.ndarray, transformer: Transformer) -> np.ndarray:
    def transform(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometries, transform)


def bbox_to_crs84(bbox, uri: str) -> tuple[float, float, float, float]:
    """A ``bbox`` written in ``uri`` (in its axis order: EPSG:4490 minLat,minLon,maxLat,maxLon) as
    the smallest CRS84 box that holds it (its edges followed, not only its corners).

    Examples
    --------
    >>> bbox_to_crs84((29.8, 121.5, 29.9, 121.6), output_crs("EPSG:4490"))
    (121.5, 29.8, 121.6, 29.9)
    """
    if uri == CRS84_URI:
        return tuple(bbox)
    try:
        box = _transformer(uri, CRS84_URI, False).transform_bounds(*bbox, densify_pts=21)
    except ProjError:
        box = (math.nan,) * 4
    if not all(math.isfinite(v) for v in box):
        raise BadRequest(says("crs.bbox_outside", bbox=",".join(map(str, bbox)), uri=uri))
    return tuple(float(v) for v in box)
