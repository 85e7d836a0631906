"""Read an uploaded layer file into WGS84 lon/lat, treating the file as hostile.

Nothing reaches GDAL before its content is known to be what its extension
claims, so only the expected driver can open it.  Archives are inspected
(member names, entry count, declared sizes) before anything is extracted.  GDAL
is hardened process-wide: drivers that open files, run programs or fetch URLs
named inside a dataset are deregistered, and its HTTP goes to a proxy that does
not exist.  Reading only parses, reprojects and normalises column names:
:mod:`geodata.validate` judges the features.
"""

from __future__ import annotations

import codecs
import ctypes
import ctypes.util
import glob
import io
import json
import logging
import os
import re
import sqlite3
import stat
import struct
import threading
import time
import warnings
import zipfile
import zlib
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from xml.etree import ElementTree

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyproj.exceptions import ProjError

from .crs import STORAGE_CRS, TO_WGS84, choose_crs, crs_label, geometries_to_wgs84, parse_crs
from .errors import BadRequest, TooLarge, Unprocessable, UnsupportedMediaType
from .i18n import Says, says
from .schema import LAYERS, Layer

log = logging.getLogger(__name__)

FORMATS = {".geojson": "geojson", ".json": "geojson", ".zip": "shapefile", ".gpkg": "gpkg", ".kml": "kml"}
LABELS = {"geojson": "GeoJSON", "shapefile": "zipped Shapefile", "gpkg": "GeoPackage", "kml": "KML"}
DRIVERS = {"geojson": "GeoJSON", "shapefile": "ESRI Shapefile", "gpkg": "GPKG", "kml": "KML"}
# Drivers that open files, run programs or fetch URLs named inside a dataset; LIBKML
# follows NetworkLinks where the plain KML driver does not.
SKIPPED_DRIVERS = (
    "OGR_VRT", "VRT", "GDALG", "GPSBabel", "LIBKML", "ADBC", "AIVector", "HTTP", "WFS", "OAPIF", "OGCAPI", "CSW",
    "EEDA", "PLSCENES", "NGW", "Carto", "AmigoCloud", "Elasticsearch", "MapML", "PMTiles", "MVT", "GTFS", "WMS",
    "WMTS", "WCS", "DAAS", "STACIT", "STACTA",
)
# GDAL has no "no network" switch: send its HTTP to a proxy nobody runs, let /vsicurl/ accept no name
NETWORK_OFF = {
    "GDAL_HTTP_PROXY": "127.0.0.1:9", "GDAL_HTTPS_PROXY": "127.0.0.1:9", "GDAL_HTTP_TIMEOUT": "2",
    "GDAL_HTTP_CONNECTTIMEOUT": "2", "GDAL_HTTP_MAX_RETRY": "0", "GDAL_HTTP_NETRC": "NO",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".gridmap-no-network", "CPL_CURL_ENABLE_VSIMEM": "NO",
    "GDAL_ALLOW_REMOTE_RESOURCE_TO_ACCESS_LOCAL_FILE": "NO",
    "ALLOW_OGR_SQL_FUNCTIONS_FROM_TRIGGER_AND_VIEW": "NO", "ALLOW_VIRTUAL_OGR_FROM_TRIGGER_AND_VIEW": "NO",
}


@dataclass(frozen=True)
class UploadOptions:
    """What the person uploading says about a file that does not say it itself."""

    source_crs: str | None = None  # e.g. "EPSG:4549", used when the file does not say
    encoding: str | None = None  # e.g. "GBK", for a Shapefile without .cpg
    coordinates: str = "wgs84"  # "wgs84" | "gcj02" | "bd09": datum shift of Chinese web maps


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 200 * 2**20  # the upload itself
    max_features: int = 200_000
    max_archive_entries: int = 100
    max_expanded_bytes: int = 1 * 2**30
    max_ratio: float = 100.0  # expanded / compressed, per archive
    max_vertices: int = 2_000_000  # in the whole file
    max_feature_vertices: int = 100_000  # in one feature
    max_text_chars: int = 10_000  # in one text value
    max_inspect_seconds: float = 3.0  # SQL on a GeoPackage before GDAL reads it


@dataclass(frozen=True, eq=False)
class Parsed:
    data: gpd.GeoDataFrame  # EPSG:4326 lon/lat, RangeIndex, geometry column "geometry"
    format: str  # "geojson" | "shapefile" | "gpkg" | "kml"
    source_crs: str | None  # what the file said or what was used, e.g. "EPSG:4549"
    encoding: str | None  # Shapefiles: what was used and how, e.g. "GBK (detected)"
    notes: tuple[str, ...]  # for the upload report, e.g. "renamed party_memb → party_members"


def read_upload(data: bytes, filename: str, layer: str, options: UploadOptions = UploadOptions(),
                limits: Limits = Limits()) -> Parsed:
    """Parse an uploaded GeoJSON, zipped Shapefile, GeoPackage or KML into WGS84.

    ``filename`` is used only for its extension.  Raises ``UnsupportedMediaType``
    (415) for an unknown extension or content that is not what it claims,
    ``TooLarge`` (413) past ``limits``, ``BadRequest`` (400) for bad options or
    unsafe archive members and ``Unprocessable`` (422) for anything unreadable,
    including coordinates without a usable CRS.

    Examples
    --------
    >>> doc = (b'{"type": "Feature", "properties": {"grid_id": "g1"},'
    ...        b' "geometry": {"type": "Point", "coordinates": [121.55, 29.87]}}')
    >>> parsed = read_upload(doc, "grids.geojson", "grids")
    >>> parsed.format, parsed.data.crs.to_epsg(), parsed.data["grid_id"].tolist()
    ('geojson', 4326, ['g1'])
    """
    spec = LAYERS.get(layer)
    if spec is None:
        raise BadRequest(says("io.unknown_layer", layer=repr(layer), layers=", ".join(LAYERS)))
    fmt = upload_format(filename)
    data = data if isinstance(data, bytes) else bytes(data)  # pyogrio takes anything else for a path
    if len(data) > limits.max_bytes:
        raise TooLarge(says("io.file_too_large", size=_mib(len(data)), limit=_mib(limits.max_bytes)))
    if not data:
        raise Unprocessable(says("io.empty"))
    option_crs = parse_crs(options.source_crs) if options.source_crs else None
    if options.coordinates not in TO_WGS84:
        raise BadRequest(says("io.bad_coordinates", choices=", ".join(TO_WGS84), value=repr(options.coordinates)))
    given = _codec(options.encoding) if options.encoding else None
    if options.encoding and given is None:
        raise BadRequest(says("io.bad_encoding", encoding=repr(options.encoding)))
    harden_gdal()

    notes: list[str] = []
    encoding = label = None
    declared = True  # whether the CRS GDAL reports is written in the file
    cut_short: list = []  # GeoJSON text GDAL would cut at a NUL, as written: validation refuses it
    if fmt == "geojson":
        source, declared, cut_short = _check_geojson(data, limits, spec.key)
    elif fmt == "gpkg":
        source = _check_gpkg(data)
    elif fmt == "kml":
        source = _check_kml(data)
    else:
        source, encoding, label = _unpack_shapefile(data, limits, given, notes)
    if given and fmt != "shapefile":
        notes.append(says("io.encoding_ignored", encoding=options.encoding))

    gdf, file_crs, layer_name = _read(source, fmt, limits, encoding, spec.name, spec.key)
    _restore_cut_short(gdf, cut_short)
    if fmt == "kml":  # always WGS84
        gdf, file_crs = _with_kml_extended_data(gdf, source, layer_name, spec, notes), STORAGE_CRS
    crs = choose_crs(gdf.total_bounds, file_crs if declared else None, option_crs, notes)
    try:
        gdf = gdf.set_crs(crs, allow_override=True).to_crs(STORAGE_CRS)
    except (ProjError, ValueError) as exc:
        raise Unprocessable(says("io.cannot_transform", crs=crs_label(crs), reason=str(exc))) from None
    if not np.isfinite(shapely.get_coordinates(gdf.geometry.values)).all():
        raise Unprocessable(says("io.outside_crs", crs=crs_label(crs)))
    if options.coordinates != "wgs84":
        gdf = gdf.set_geometry(geometries_to_wgs84(gdf.geometry.values, options.coordinates), crs=STORAGE_CRS)
        notes.append(says("io.converted", source="GCJ-02" if options.coordinates == "gcj02" else "BD-09"))
    gdf = _normalise_names(gdf, spec, notes).reset_index(drop=True)
    return Parsed(gdf, fmt, crs_label(crs), label, tuple(notes))


def upload_format(filename: str) -> str:
    """The format an upload's extension claims (the name is never used as a path).

    Examples
    --------
    >>> upload_format("网格 2024.GeoJSON"), upload_format("C:\\\\导出\\\\grids.zip")
    ('geojson', 'shapefile')
    """
    ext = os.path.splitext(str(filename or "").replace("\\", "/").rsplit("/", 1)[-1])[1].lower()
    if ext not in FORMATS:
        shown = ext if re.fullmatch(r"\.\w{1,10}", ext) else says("io.this_file")
        raise UnsupportedMediaType(says("io.unknown_format", file=shown),
                                   details=sorted(FORMATS))
    return FORMATS[ext]


# --- GDAL hardening ----------------------------------------------------------------------

_hardening = threading.Lock()
_still_registered: list[str] | None = None


def harden_gdal() -> list[str]:
    """Deregister :data:`SKIPPED_DRIVERS` and cut GDAL's network access, once per process.

    GDAL applies ``GDAL_SKIP`` only while registering drivers, which pyogrio did on
    import, so registration runs again in the libgdal pyogrio loaded.  Returns the
    skipped drivers still registered: empty when hardening worked.

    Examples
    --------
    >>> harden_gdal()
    []
    """
    global _still_registered
    with _hardening:
        if _still_registered is None:
            pyogrio.set_gdal_config_options({"GDAL_SKIP": ",".join(SKIPPED_DRIVERS), **NETWORK_OFF})
            for path in _libgdal_paths():
                try:
                    ctypes.CDLL(path).GDALAllRegister()  # idempotent, then deregisters what GDAL_SKIP names
                except (OSError, AttributeError):
                    continue
            _still_registered = sorted(set(SKIPPED_DRIVERS) & set(pyogrio.list_drivers()))
            if _still_registered:
                log.warning("GDAL drivers %s still registered: uploads rely on content checks", _still_registered)
    return list(_still_registered)


def _libgdal_paths() -> list[str]:
    try:  # the copy already loaded (dlopen of its path returns it), never a second GDAL
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            rows = [line.split() for line in maps]
        loaded = sorted({r[5] for r in rows if len(r) >= 6 and os.path.basename(r[5]).startswith("libgdal")})
        if loaded:
            return loaded
    except OSError:
        pass
    wheel = glob.glob(os.path.dirname(pyogrio.__file__) + ".libs/libgdal*")
    return wheel or [p for p in [ctypes.util.find_library("gdal")] if p]


# --- content checks ----------------------------------------------------------------------

_GEOJSON_TYPES = {"FeatureCollection", "Feature", "Point", "MultiPoint", "LineString", "MultiLineString",
                  "Polygon", "MultiPolygon", "GeometryCollection"}
# named CRSs GDAL resolves offline; GDAL fetches a "link" CRS's href (or a URL name) over HTTP
_CRS_NAME = re.compile(r"urn:ogc:def:crs:(?:EPSG|OGC):[0-9.]*:[A-Za-z0-9]+|EPSG:\d+"
                       r"|https?://www\.opengis\.net/def/crs/(?:EPSG|OGC)/[0-9.]+/[A-Za-z0-9]+", re.I)
_XML_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.S)
_XML_TAG = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")


def _strip_bom(data: bytes) -> bytes:
    return data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data


def _check_geojson(data: bytes, limits: Limits, key: str) -> tuple[bytes, bool, list]:
    body = _strip_bom(data)
    if not re.match(rb"[ \t\r\n]*\{", body):
        raise UnsupportedMediaType(says("io.not_geojson"))
    counts, spans = _geojson_vertices(body)
    if len(counts) and (counts.max() > limits.max_feature_vertices or counts.sum() > limits.max_vertices):
        over = np.flatnonzero(counts > limits.max_feature_vertices)
        keys = dict.fromkeys(range(len(counts)))
        for i in over[:100]:
            keys[int(i)] = _json_key(body, spans[i], key)
        _check_vertices(counts, keys, limits)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Unprocessable(says("io.bad_json", reason=str(exc)[:200])) from None
    kind = doc.get("type") if isinstance(doc, dict) else None
    if not isinstance(kind, str) or kind not in _GEOJSON_TYPES:  # e.g. a GDALG pipeline, TopoJSON
        raise Unprocessable(says("io.json_not_geojson", type=repr(str(kind)[:40])))
    crs = doc.get("crs")
    if crs is not None:
        named = isinstance(crs, dict) and crs.get("type") == "name" and isinstance(crs.get("properties"), dict)
        name = crs["properties"].get("name") if named else None
        if not isinstance(name, str) or not _CRS_NAME.fullmatch(name):
            raise Unprocessable(says("io.bad_crs_member"))
    cut_short = []  # (feature index, property, text) of text with a NUL, which GDAL's C strings end at
    if b"\\u0000" in body:
        features = doc.get("features") if kind == "FeatureCollection" else [doc] if kind == "Feature" else []
        for i, feature in enumerate(features if isinstance(features, list) else []):
            properties = feature.get("properties") if isinstance(feature, dict) else None
            for name, value in (properties.items() if isinstance(properties, dict) else ()):
                if isinstance(value, str) and "\x00" in value:
                    cut_short.append((i, name, value))
    return body, crs is not None, cut_short


_JSON_ESCAPE = re.compile(rb"\\.", re.S)
_JSON_SPACE = np.frombuffer(b" \t\r\n", dtype=np.uint8)


def _geojson_vertices(body: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's vertex count, from the raw bytes: (counts, (start, end) byte spans) in file order.

    Parsing first would cost far more than the file (Python's json about 130 bytes a
    vertex, GDAL's reader more), so positions — arrays whose first item is a number —
    are counted with numpy over the bytes, outside strings.  A FeatureCollection's
    features are the objects directly in a top-level array; any other document is one feature.
    """
    # same length, so positions stay those of body: an escaped quote ends no string
    text = _JSON_ESCAPE.sub(b"__", body) if b"\\" in body else body
    raw = np.frombuffer(text, dtype=np.uint8)
    quotes = np.flatnonzero(raw == ord('"'))

    def outside_strings(positions):
        return positions[np.searchsorted(quotes, positions) % 2 == 0]

    opens = np.flatnonzero(raw[:-1] == ord("["))
    after = opens + 1  # the first byte after each "[" that is not white space (pretty-printed files)
    pending = np.flatnonzero(np.isin(raw[after], _JSON_SPACE))
    while len(pending):
        after[pending] += 1
        pending = pending[after[pending] < len(raw)]
        pending = pending[np.isin(raw[after[pending]], _JSON_SPACE)]
    follows = raw[np.minimum(after, len(raw) - 1)]
    vertices = outside_strings(opens[((follows >= ord("0")) & (follows <= ord("9"))) | (follows == ord("-"))])
    brackets = raw == ord("[")  # (np.isin would widen the bytes to int64: 8 times the file)
    for char in b"]{}":
        brackets |= raw == char
    structure = outside_strings(np.flatnonzero(brackets))
    del raw, follows, opens, after, quotes, brackets
    kind = np.frombuffer(text, dtype=np.uint8)[structure]
    step = np.where((kind == ord("[")) | (kind == ord("{")), np.int8(1), np.int8(-1))
    depth_after = np.cumsum(step, dtype=np.int32)
    # a feature: an object opened at depth 2 inside an array (the collection's "features"); it ends at
    # the first thing after it that brings the depth back to 2
    openers = structure[(kind == ord("{")) & (depth_after == 3)]
    starts = np.array([p for p in openers.tolist() if text[max(p - 64, 0):p].rstrip()[-1:] in (b"[", b",")],
                      dtype=np.int64)
    closers = structure[depth_after == 2]
    ends = closers[np.minimum(np.searchsorted(closers, starts), len(closers) - 1)] if len(closers) else starts
    if not len(starts) or not re.search(rb'"type"\s*:\s*"FeatureCollection"', text[:int(starts[0])]
                                        + text[int(ends[-1]):]):
        return np.array([len(vertices)], dtype=np.int64), np.array([[0, len(body)]], dtype=np.int64)
    owner = np.searchsorted(starts, vertices, side="right") - 1
    inside = (owner >= 0) & (vertices < ends[np.maximum(owner, 0)])
    counts = np.bincount(owner[inside], minlength=len(starts)).astype(np.int64)
    return counts, np.column_stack([starts, ends])


def _json_key(body: bytes, span, key: str) -> str | None:
    """The string value of ``"key": "..."`` inside ``body[span]``, if there is one."""
    found = re.search(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*"((?:[^"\\]|\\.){0,200})"',
                      memoryview(body)[int(span[0]):int(span[1])])
    if not found:
        return None
    try:
        return json.loads(b'"' + found.group(1) + b'"')
    except ValueError:
        return None


def _check_gpkg(data: bytes) -> bytes:
    if not data.startswith(b"SQLite format 3\x00"):
        raise UnsupportedMediaType(says("io.not_sqlite"))
    if data[68:72] not in (b"GPKG", b"GP10", b"GP11"):  # the SQLite application_id of GeoPackages
        raise UnsupportedMediaType(says("io.not_gpkg"))
    return data


def _check_kml(data: bytes) -> bytes:
    body = _strip_bom(data)
    head = body[:65536]
    start = _XML_PROLOG.match(head).end()
    if head[start:start + 9].upper() == b"<!DOCTYPE":  # KML never needs one; entity attacks need one
        raise UnsupportedMediaType(says("io.kml_doctype"))
    tag = _XML_TAG.match(head, start)
    if not tag or tag.group(1) != b"kml":
        raise UnsupportedMediaType(says("io.not_kml"))
    return body


# --- zipped Shapefiles ---------------------------------------------------------------------

_SHAPE_MAGIC = b"\x00\x00\x27\x0a"  # file code 9994, at the start of .shp and .shx
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, zlib.error, EOFError,
               OSError, ValueError)


def _unpack_shapefile(data: bytes, limits: Limits, given: str | None, notes: list[str]):
    """Check the archive, then repack the Shapefile's parts as ``upload.*`` for GDAL.

    Repacking means GDAL never sees member names (GBK bytes, folders, traversal)
    or any file but these four.  Returns (zip bytes, codec, encoding label).
    """
    if not data.startswith(b"PK\x03\x04"):
        raise UnsupportedMediaType(says("io.not_zip"))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except _ZIP_ERRORS as exc:
        raise Unprocessable(says("io.damaged_zip", reason=str(exc))) from None
    if len(infos) > limits.max_archive_entries:
        raise TooLarge(says("io.too_many_entries", entries=len(infos), limit=limits.max_archive_entries))
    for info in infos:
        _check_member(info)
    expanded = sum(info.file_size for info in infos)  # as declared; zipfile never inflates past it
    if expanded > limits.max_expanded_bytes:
        raise TooLarge(says("io.expands_to", size=_mib(expanded), limit=_mib(limits.max_expanded_bytes)))
    if expanded > limits.max_ratio * len(data):
        raise TooLarge(says("io.expands_times", times=f"{expanded / len(data):.0f}", limit=f"{limits.max_ratio:g}"))

    members = [i for i in infos if not i.is_dir() and "__MACOSX/" not in i.filename
               and not os.path.basename(i.filename).startswith("._")]
    shps = [i for i in members if i.filename.lower().endswith(".shp")]
    if len(shps) != 1:
        raise Unprocessable(says("io.no_shp") if not shps else
                            says("io.many_shp", n=len(shps), files=", ".join(i.filename for i in shps)))
    stem, parts = shps[0].filename[:-4], {".shp": shps[0]}
    for ext in (".shx", ".dbf", ".prj", ".cpg"):
        same = [i for i in members if i.filename.lower() == (stem + ext).lower()]
        if len(same) > 1:
            raise Unprocessable(says("io.same_name", n=len(same), file=stem + ext))
        if same:
            parts[ext] = same[0]
        elif ext in (".shx", ".dbf"):
            raise Unprocessable(says("io.missing_part", shp=stem + ".shp", file=stem + ext))
    try:
        content = {ext: archive.read(info) for ext, info in parts.items()}  # CRC checked
    except _ZIP_ERRORS as exc:
        raise Unprocessable(says("io.damaged_zip", reason=str(exc))) from None
    for ext in (".shp", ".shx"):
        if not content[ext].startswith(_SHAPE_MAGIC):
            raise Unprocessable(says("io.not_shapefile_part", file=stem + ext, ext=ext))
    _check_vertices(_shapefile_vertices(content, stem), None, limits)

    codec = how = None
    if ".cpg" in content:
        codec, how = _codec(content[".cpg"].decode("ascii", "replace")), ".cpg"
        if codec is None:
            notes.append(says("io.cpg_unknown", cpg=repr(content[".cpg"][:20])))
        elif given and given != codec:
            notes.append(says("io.cpg_wins", given=given.upper(), codec=codec.upper()))
    if codec is None:
        codec, how = (given, "given") if given else (_detect_encoding(_dbf_text(content[".dbf"])), "detected")
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as out:
        for ext in (".shp", ".shx", ".dbf", ".prj"):  # no .cpg: the encoding is passed explicitly
            if ext in content:
                out.writestr("upload" + ext, content.pop(ext))
    return packed.getvalue(), codec, says(ENCODING_HOW[how], encoding=codec.upper())


ENCODING_HOW = {"given": "io.encoding_given", "detected": "io.encoding_detected", ".cpg": "io.encoding_cpg"}
_SHP_POINTS_AT = {**dict.fromkeys((3, 5, 13, 15, 23, 25, 31), 40), **dict.fromkeys((8, 18, 28), 36)}


def _shapefile_vertices(content: dict[str, bytes], stem: str) -> np.ndarray:
    """Each shape's vertex count, from the record headers, once .shp, .shx and .dbf agree on how many.

    GDAL reads as many records as the .dbf says: a .dbf that says 0 would make the
    shapes vanish without a word.
    """
    shp, shx, dbf = content[".shp"], content[".shx"], content[".dbf"]
    indexed = (len(shx) - 100) // 8 if len(shx) >= 100 else 0
    records = struct.unpack("<I", dbf[4:8])[0] if len(dbf) >= 32 else 0
    vertices, offset = [], 100
    while offset + 8 <= len(shp):
        words = struct.unpack(">i", shp[offset + 4:offset + 8])[0]
        if words < 2 or offset + 8 + 2 * words > len(shp):
            raise Unprocessable(says("io.shp_damaged", file=stem + ".shp", record=len(vertices) + 1))
        kind = struct.unpack("<i", shp[offset + 8:offset + 12])[0]
        at = _SHP_POINTS_AT.get(kind)
        count = 0 if kind == 0 else 1 if at is None else (
            struct.unpack("<i", shp[offset + 8 + at:offset + 12 + at])[0] if 2 * words >= at + 4 else 0)
        vertices.append(count)
        offset += 8 + 2 * words
    if not len(vertices) == indexed == records:
        raise Unprocessable(says("io.parts_disagree", stem=stem, shapes=f"{len(vertices):,}", indexed=f"{indexed:,}",
                                 records=f"{records:,}"),
                            details=[{"shp": len(vertices), "shx": indexed, "dbf": records}])
    return np.array(vertices, dtype=np.int64)


def _check_member(info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")  # Windows tools write backslashes; some unzippers honour them
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise BadRequest(says("io.member_absolute", member=repr(info.filename)))
    if ".." in name.split("/"):
        raise BadRequest(says("io.member_outside", member=repr(info.filename)))
    if stat.S_ISLNK(info.external_attr >> 16):
        raise BadRequest(says("io.member_link", member=repr(info.filename)))
    if info.flag_bits & 0x1:
        raise Unprocessable(says("io.member_encrypted", member=repr(info.filename)))


def _codec(name: str | None) -> str | None:
    """Python's name for a text encoding as .cpg files and people write it: UTF-8, GBK, 936, ANSI 936."""
    text = (name or "").strip().upper()
    number = re.fullmatch(r"(?:ANSI|CP)?\s*(\d{3,5})", text)
    if number:
        text = "UTF-8" if number[1] == "65001" else f"CP{number[1]}"
    try:
        info = codecs.lookup(text)
    except LookupError:
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None  # not base64, rot13...


def _dbf_text(dbf: bytes) -> bytes:
    """The DBF's field names and character-field bytes: where non-ASCII text can be."""
    if len(dbf) < 32:
        return b""
    count, header_len, record_len = struct.unpack("<IHH", dbf[4:12])
    names, columns, offset = [], [], 1  # each record starts with a deletion flag
    for pos in range(32, min(header_len, len(dbf)) - 31, 32):
        if dbf[pos] == 0x0D:
            break
        names.append(dbf[pos:pos + 11].split(b"\0", 1)[0])
        if dbf[pos + 11:pos + 12] == b"C":
            columns.extend(range(offset, min(offset + dbf[pos + 16], record_len)))
        offset += dbf[pos + 16]
    rows = min(count, max(len(dbf) - header_len, 0) // record_len) if record_len else 0
    text = b""
    if rows and columns:
        table = np.frombuffer(dbf, dtype=np.uint8, count=rows * record_len, offset=header_len)
        text = table.reshape(rows, record_len)[:, columns].tobytes()
    return b" ".join(names) + b"\n" + text


def _detect_encoding(text: bytes) -> str:
    if text.isascii():
        return "utf-8"
    for codec in ("utf-8", "gbk", "gb18030"):  # strict UTF-8 fails on almost any GBK text
        decoder = codecs.getincrementaldecoder(codec)()
        try:
            for start in range(0, len(text), 1 << 20):  # in chunks: never the whole text as str
                decoder.decode(text[start:start + (1 << 20)])
            decoder.decode(b"", final=True)
            return codec
        except UnicodeDecodeError:
            continue
    raise Unprocessable(says("io.dbf_encoding"))


# --- resource limits -----------------------------------------------------------------------


def _check_vertices(counts: np.ndarray, keys, limits: Limits) -> None:
    """413 for a feature with more than ``max_feature_vertices``, or a file with more than ``max_vertices``.

    ``counts`` are the vertices of each feature in file order; ``keys`` their keys, where known.
    """
    counts = np.asarray(counts, dtype=np.int64)
    over = np.flatnonzero(counts > limits.max_feature_vertices)
    if len(over):
        i = int(over[0])
        key = keys[i] if keys is not None and i < len(keys) else None
        raise TooLarge(says("io.feature_vertices", feature=_feature(i, key), vertices=f"{int(counts[i]):,}",
                            more=_more(len(over)), limit=f"{limits.max_feature_vertices:,}"),
                       details=[{"limit": "max_feature_vertices", "index": int(j), "vertices": int(counts[j]),
                                 "key": keys[j] if keys is not None and j < len(keys) else None} for j in over[:100]])
    total = int(counts.sum())
    if total > limits.max_vertices:
        raise TooLarge(says("io.file_vertices", vertices=f"{total:,}", limit=f"{limits.max_vertices:,}"),
                       details=[{"limit": "max_vertices", "vertices": total}])


def _column_keys(gdf: pd.DataFrame, key: str) -> list | None:
    """Each row's key as text (None where blank), from the key column or one named like it (``GRID_ID``)."""
    column = next((c for c in gdf.columns if isinstance(c, str) and c.lower() == key.lower()), None)
    if column is None:
        return None
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)[:200] for v in gdf[column]]


def _check_text_lengths(gdf: pd.DataFrame, keys, limits: Limits) -> None:
    """413 for a text value longer than ``max_text_chars``, naming the field and the feature."""
    for column in gdf.columns:
        if column == gdf.geometry.name or not pd.api.types.is_string_dtype(gdf[column].dtype):  # object too
            continue
        try:  # .str counts in C; non-text values count 0
            lengths = gdf[column].str.len().fillna(0).to_numpy(dtype=np.int64)
        except AttributeError:  # not text at all (e.g. only lists)
            continue
        over = np.flatnonzero(lengths > limits.max_text_chars)
        if len(over):
            i = int(over[0])
            key = keys[i] if keys is not None else None
            raise TooLarge(says("io.value_chars", field=column, feature=_feature(i, key), more=_more(len(over)),
                                characters=f"{int(lengths[i]):,}", limit=f"{limits.max_text_chars:,}"),
                           details=[{"limit": "max_text_chars", "field": str(column), "index": int(j),
                                     "key": keys[j] if keys is not None else None, "characters": int(lengths[j])}
                                    for j in over[:100]])


# --- reading -----------------------------------------------------------------------------


@contextmanager
def _gdal_errors(fmt: str, encoding: str | None):
    with warnings.catch_warnings():
        # pyogrio reads bytes from an extension-less /vsimem/ file, which GDAL remarks on for GeoPackages
        warnings.filterwarnings("ignore", message=r".*GPKG application_id, but non conformant", category=RuntimeWarning)
        try:
            yield
        except UnicodeDecodeError:
            raise Unprocessable(says("io.wrong_encoding", encoding=(encoding or "utf-8").upper())) from None
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, RuntimeError, ValueError,
                OSError) as exc:
            text = str(exc).split("; It might help", 1)[0]
            text = re.sub(r"'?/vsi[a-z]+/[^\s']*'?", "the file", text)  # GDAL's names of the in-memory copy
            raise Unprocessable(says("io.unreadable", format=says(f"io.format.{fmt}"), reason=text[:300])) from None


def _read(source: bytes, fmt: str, limits: Limits, encoding: str | None, target: str, key: str):
    with _gdal_errors(fmt, encoding):
        # by index: pyogrio names the in-memory copy afresh on each call, and GeoJSON layers after it
        with _sqlite(source, limits) if fmt == "gpkg" else nullcontext() as db:
            if db is not None:
                _check_gpkg_system_tables(db)  # before GDAL opens it
            index, name = _pick_layer(pyogrio.list_layers(source), target, fmt)
            cut_short = _check_gpkg_table(db, name, limits) if db is not None else []
        info = pyogrio.read_info(source, layer=index, encoding=encoding, force_feature_count=True)
        if info["driver"] != DRIVERS[fmt]:  # the content checks should make this impossible
            raise UnsupportedMediaType(says("io.gdal_sees", format=says(f"io.format.{fmt}"), driver=info["driver"]))
        if info["features"] > limits.max_features:
            raise TooLarge(says("io.too_many_features", features=f"{info['features']:,}", limit=f"{limits.max_features:,}"))
        gdf = pyogrio.read_dataframe(source, layer=index, encoding=encoding)
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise Unprocessable(says("io.no_geometries", format=says(f"io.format.{fmt}"), layer=repr(name)))
    if len(gdf) > limits.max_features:  # the driver could not count in advance
        raise TooLarge(says("io.too_many_features", features=f"{len(gdf):,}", limit=f"{limits.max_features:,}"))
    keys = _column_keys(gdf, key)
    _check_vertices(shapely.get_num_coordinates(gdf.geometry.values), keys, limits)
    _check_text_lengths(gdf, keys, limits)
    _restore_cut_short(gdf, cut_short)
    return gdf.rename_geometry("geometry") if gdf.geometry.name != "geometry" else gdf, info["crs"], name


# --- GeoPackages: tables only, inspected with SQLite before GDAL reads them ----------------------

@contextmanager
def _sqlite(data: bytes, limits: Limits):
    """The GeoPackage as a read-only in-memory SQLite database; SQL past the time limit is 413."""
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(data)
        db.execute("PRAGMA query_only = ON")
        db.execute("PRAGMA trusted_schema = OFF")  # no SQL functions with side effects from the schema
        deadline = time.monotonic() + limits.max_inspect_seconds
        db.set_progress_handler(lambda: time.monotonic() > deadline, 1000)  # every 1000 VM steps
        try:
            yield db
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise TooLarge(says("io.gpkg_slow", seconds=f"{limits.max_inspect_seconds:g}"),
                               details=[{"limit": "max_inspect_seconds"}]) from None
            raise Unprocessable(says("io.unreadable", format=says("io.format.gpkg"), reason=str(exc)[:200])) from None
        except sqlite3.DatabaseError as exc:
            raise Unprocessable(says("io.unreadable", format=says("io.format.gpkg"), reason=str(exc)[:200])) from None
    finally:
        db.close()


def _check_gpkg_system_tables(db: sqlite3.Connection) -> None:
    """GDAL reads gpkg_contents and the other gpkg_* tables on opening: a view there would run as it opens."""
    views = [name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'view' AND (name LIKE 'gpkg%' OR name LIKE 'rtree%')")]
    if views:
        raise Unprocessable(says("io.gpkg_system_views", names=", ".join(views)), details=views)


def _check_gpkg_table(db: sqlite3.Connection, table: str, limits: Limits) -> list:
    """Read stored rows only, and not too many of them.

    A view is SQL that runs when read (20 million recursive rows, 100 MB strings
    from a 36 KB file), a virtual table runs a module and a generated column is
    computed as it is read (a ``zeroblob(1e9)`` a row): each is refused, naming it.
    """
    found = db.execute("SELECT type, sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    if found is None or found[0] != "table" or re.match(r"\s*CREATE\s+VIRTUAL\b", found[1] or "", re.I):
        raise Unprocessable(says("io.gpkg_view", table=repr(table)), details=[table])
    quoted = '"' + table.replace('"', '""') + '"'
    columns = list(db.execute(f"PRAGMA table_xinfo({quoted})"))
    generated = [row[1] for row in columns if row[6] in (2, 3)]
    if generated:
        raise Unprocessable(says("io.gpkg_generated", table=repr(table), names=", ".join(generated)),
                            details=generated)
    rows = db.execute(f"SELECT count(*) FROM (SELECT 1 FROM {quoted} LIMIT ?)", (limits.max_features + 1,)).fetchone()[0]
    if rows > limits.max_features:
        raise TooLarge(says("io.more_features_than", most=f"{limits.max_features:,}"),
                       details=[{"limit": "max_features"}])
    return _gpkg_text_with_nul(db, table, [row[1] for row in columns])


def _gpkg_text_with_nul(db: sqlite3.Connection, table: str, columns: list[str]) -> list:
    """(row index, column, text) of text values with a NUL, which GDAL's C strings end at."""
    quoted = '"' + table.replace('"', '""') + '"'
    found = []
    for column in columns:
        name = '"' + column.replace('"', '""') + '"'
        for rowid, value in db.execute(f"SELECT rowid, {name} FROM {quoted} WHERE typeof({name}) = 'text' AND "
                                       f"instr({name}, char(0)) > 0 ORDER BY rowid LIMIT 1000"):
            index = db.execute(f"SELECT count(*) FROM {quoted} WHERE rowid < ?", (rowid,)).fetchone()[0]
            found.append((index, column, value))  # GDAL reads a table in rowid order
    return found


def _restore_cut_short(gdf: pd.DataFrame, cut_short: list) -> None:
    """Put back text as the file wrote it where GDAL cut it at a NUL, for validation to refuse."""
    for row, column, value in cut_short:
        if row < len(gdf) and column in gdf.columns:
            if gdf[column].dtype != object:
                gdf[column] = gdf[column].astype(object)
            gdf.iat[row, gdf.columns.get_loc(column)] = value


def _pick_layer(layers, target: str, fmt: str) -> tuple[int, str]:
    """The only layer with geometries, else the one named like ``target``: (index, name)."""
    spatial = {i: str(name) for i, (name, geometry_type) in enumerate(layers) if geometry_type is not None}
    if len(spatial) == 1:
        return next(iter(spatial.items()))
    for like in (lambda n: n.lower() == target, lambda n: target.rstrip("s") in n.lower()):
        matches = [(i, n) for i, n in spatial.items() if like(n)]
        if len(matches) == 1:
            return matches[0]
    names = list(spatial.values())
    if not names:
        raise Unprocessable(says("io.no_layer_with_geometries", format=says(f"io.format.{fmt}")))
    raise Unprocessable(says("io.many_layers", format=says(f"io.format.{fmt}"), n=len(names), layers=", ".join(names),
                             target=repr(target)), details=names)


_KML_GEOMETRIES = {"Point", "LineString", "LinearRing", "Polygon", "MultiGeometry", "Track", "MultiTrack", "Model"}


def _with_kml_extended_data(gdf, body: bytes, layer_name: str, spec: Layer, notes: list[str]):
    """Add the ExtendedData that GDAL's plain KML driver skips.

    The driver makes a layer of each Document/Folder's own placemarks that have a
    geometry, in order: the container with the same sequence of names is the one
    read.  ``_check_kml`` refused DOCTYPEs, so expat sees no entity declarations.
    """
    local = lambda tag: tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""  # noqa: E731
    containers, open_ = [], []
    try:
        for event, elem in ElementTree.iterparse(io.BytesIO(body), events=("start", "end")):
            tag = local(elem.tag)
            if tag in ("Document", "Folder"):
                open_.append([elem, []]) if event == "start" else open_.pop()
                containers += [open_[-1]] if event == "start" else []
            elif event == "end" and tag == "Placemark" and open_:
                if any(local(e.tag) in _KML_GEOMETRIES for e in elem.iter()):
                    values = {d.get("name"): d.findtext("{*}value") if local(d.tag) == "Data" else d.text
                              for d in elem.iter() if local(d.tag) in ("Data", "SimpleData") and d.get("name")}
                    open_[-1][1].append(((elem.findtext("{*}name") or "").strip(), values))
                elem.clear()
    except ElementTree.ParseError as exc:
        raise Unprocessable(says("io.bad_kml_xml", reason=str(exc))) from None
    names = gdf["Name"].fillna("").astype(str).str.strip().tolist() if "Name" in gdf else [""] * len(gdf)
    for column in ("Name", "Description"):  # the driver's columns: dropped when the file left them empty
        if column in gdf and not gdf[column].fillna("").astype(str).str.strip().any():
            gdf = gdf.drop(columns=column)
    if not any(values for _, placemarks in containers for _, values in placemarks):
        return gdf
    matches = [(c, p) for c, p in containers if [name for name, _ in p] == names]
    if len(matches) > 1:
        matches = [m for m in matches if (m[0].findtext("{*}name") or "").strip() == layer_name] or matches
    if len(matches) != 1:
        raise Unprocessable(says("io.kml_layer", layer=repr(layer_name)))
    extended = pd.DataFrame.from_records([values for _, values in matches[0][1]], index=gdf.index)
    numeric = []
    for column in extended.columns:  # KML is all text: schema number fields become numbers when all are
        text = extended[column].map(lambda v: v.strip() or None if isinstance(v, str) else None)
        converted = pd.to_numeric(text, errors="coerce")
        field = spec.field(column)
        if field and field.kind in ("integer", "number") and converted.notna().sum() == text.notna().sum():
            extended[column] = converted
            numeric.append(column)
        gdf[f"{column}_data" if column in gdf else column] = extended[column].to_numpy()
    if numeric:
        notes.append(says("io.kml_numbers", fields=", ".join(numeric)))
    return gdf


def _normalise_names(gdf: gpd.GeoDataFrame, spec: Layer, notes: list[str]) -> gpd.GeoDataFrame:
    """Map DBF-truncated (``party_memb``) and differently cased (``NAME``) columns to the schema's names."""
    fields, columns = spec.field_names, [c for c in gdf.columns if c != "geometry"]
    wanted: dict[str, list[str]] = {}
    for column in columns:
        if column in fields or not isinstance(column, str):
            continue
        low = column.lower()
        target = [f for f in fields if f.lower() == low] or [
            f for f in fields if len(column) == 10 and len(f) > 10 and f.lower().startswith(low)]
        if len(target) == 1 and target[0] not in columns:
            wanted.setdefault(target[0], []).append(column)
    renames = {sources[0]: target for target, sources in wanted.items() if len(sources) == 1}  # else ambiguous
    notes.extend(says("io.renamed", source=source, target=target) for source, target in renames.items())
    return gdf.rename(columns=renames)


def _feature(i: int, key) -> Says:
    """Feature ``i`` (0-based) as people count, from 1, with its key when known."""
    return says("io.feature", n=i + 1) if key is None else says("io.feature_key", n=i + 1, key=key)


def _more(over: int) -> Says | str:
    return says("io.more", n=f"{over - 1:,}") if over > 1 else ""


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
