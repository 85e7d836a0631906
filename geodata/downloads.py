"""A layer as a file to download: GeoJSON, GeoPackage, zipped Shapefile, CSV or KML.

Framework-neutral: :func:`to_format` takes a frame and returns the file's bytes.
Every format is WGS84 lon/lat (EPSG:4326) unless another of the API's CRSs is asked
for (:func:`file_crs`; KML is WGS84 only), and names its layer after the collection.
Coordinates in files are easting (longitude) first whatever the CRS, as GDAL, QGIS and
ArcGIS read files; GeoJSON in a CRS other than WGS84 names it in a ``crs`` member.
Polygonal layers are MultiPolygon throughout (``Layer.geometry_type``).
GDAL writes GeoPackage, Shapefile and KML (through pyogrio, in
memory or in a temporary directory removed before returning); CSV is written
by pandas so that the WKT geometry comes last and Excel opens the Chinese text.

What each format cannot hold is adapted the same way every time:

- nested values (dicts and lists kept from uploads) become JSON text outside GeoJSON;
- integer columns stay integers (never ``1000.0``), nulls stay empty;
- Shapefile field names are cut to 10 bytes the way gridmap's upload reader
  (:func:`geodata.io._normalise_names`) maps them back — ``party_members`` →
  ``party_memb`` — and a name that would be ambiguous on the way back gets a
  ``_1``, ``_2``… suffix instead, so a downloaded Shapefile re-uploads cleanly.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from . import geojson, tables
from .crs import CRS84_URI, STORAGE_CRS, epsg_code, output_crs
from .errors import BadRequest
from .i18n import says
from .io import harden_gdal
from .schema import DERIVED, LAYERS, LINEAR, POLYGONAL, Layer

# extension → (media type, description)
FORMATS: dict[str, tuple[str, str]] = {
    "geojson": ("application/geo+json", "GeoJSON (RFC 7946)"),
    "gpkg": ("application/geopackage+sqlite3", "GeoPackage"),
    "zip": ("application/zip", "zipped ESRI Shapefile (UTF-8, with .prj and .cpg)"),
    "csv": ("text/csv; charset=utf-8", "CSV, one row per feature, WKT geometry (points also lon, lat), "
                                       "UTF-8 with BOM (Excel)"),
    "kml": ("application/vnd.google-earth.kml+xml", "KML (properties as ExtendedData)"),
}
# the field KML shows as each placemark's <name>; "name" where a layer has one
KML_NAME_FIELDS = {"streets": "street", "communities": "community", "gaps": "gap_id"}
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
DBF_NAME_BYTES = 10
# DBF numeric fields of up to 9 digits are "Long" in ArcGIS; wider ones become Double
INT32_RANGE = (-99_999_999, 999_999_999)


def file_crs(raw: str | None, fmt: str) -> str:
    """The CRS (an OUTPUT_CRS URI) a download asks for with ``crs=``; BadRequest for KML in any but WGS84.

    >>> file_crs("EPSG:4549", "gpkg")
    'http://www.opengis.net/def/crs/EPSG/0/4549'
    """
    crs = output_crs(raw)
    if fmt == "kml" and epsg_code(crs) not in (None, 4326):
        raise BadRequest(says("download.kml_crs", crs=crs))
    return crs


def geojson_file(texts: list[str], layer: Layer | None, crs: str = CRS84_URI) -> bytes:
    """Stored feature texts as a GeoJSON file in ``crs``: RFC 7946 in WGS84; in another CRS easting first with
    a ``crs`` member naming it (GeoJSON 2008, which GDAL and QGIS read), first so that streaming readers see it."""
    texts = geojson.served(texts, layer, crs, xy=True)
    code = epsg_code(crs)
    if code in (None, 4326):
        return geojson.feature_collection(texts)
    member = geojson.dumps({"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{code}"}})
    return f'{{"type":"FeatureCollection","crs":{member},"features":[{",".join(texts)}]}}'.encode("utf-8")


def to_format(gdf: gpd.GeoDataFrame, fmt: str, layer_name: str, crs: str = CRS84_URI) -> bytes:
    """``gdf`` as a file of format ``fmt`` (a key of :data:`FORMATS`) with one layer ``layer_name``,
    in ``crs`` (an OUTPUT_CRS URI, see :func:`file_crs`).

    Examples
    --------
    >>> from shapely import Point
    >>> gdf = gpd.GeoDataFrame({"center_id": ["c1"], "name": ["月湖中心"]},
    ...                        geometry=[Point(121.55, 29.87)], crs="EPSG:4326")
    >>> to_format(gdf, "csv", "centers").decode("utf-8-sig").splitlines()
    ['center_id,name,lon,lat,WKT', 'c1,月湖中心,121.55,29.87,POINT (121.55 29.87)']
    """
    if fmt not in FORMATS:
        raise ValueError(f"no download format {fmt!r}; formats are {', '.join(FORMATS)}")
    crs = file_crs(crs, fmt)
    layer = LAYERS.get(layer_name) or DERIVED.get(layer_name)
    frame = _prepared(gdf)
    if fmt == "geojson":
        key = layer.key if layer is not None and layer.key in frame.columns else None
        return geojson_file(geojson.feature_strings(frame, id_field=key), layer, crs)
    if fmt == "csv":
        return _csv(frame, layer, crs)
    frame = _in_crs(frame, crs)
    frame = _flatten(frame)
    harden_gdal()
    if fmt == "gpkg":
        return _gpkg(frame, layer_name, layer)
    if fmt == "zip":
        return _shapefile_zip(frame, layer_name, layer)
    return _kml(frame, layer_name)


# --- the frame ---------------------------------------------------------------------------


def _prepared(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy in EPSG:4326 with a RangeIndex and its geometry, named ``geometry``, last."""
    if gdf.crs is None:
        gdf = gdf.set_crs(STORAGE_CRS)
    elif not gdf.crs.equals(STORAGE_CRS):
        gdf = gdf.to_crs(STORAGE_CRS)
    geometry = gdf.geometry.values
    properties = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).reset_index(drop=True)
    return gpd.GeoDataFrame(properties, geometry=gpd.GeoSeries(geometry, crs=STORAGE_CRS), crs=STORAGE_CRS)


def _in_crs(frame: gpd.GeoDataFrame, crs: str) -> gpd.GeoDataFrame:
    """``frame`` (EPSG:4326) in the CRS ``crs``, easting first (geopandas' order, the files')."""
    code = epsg_code(crs)
    return frame if code in (None, 4326) else frame.to_crs(epsg=code)


def _properties(frame: gpd.GeoDataFrame) -> list[str]:
    return [c for c in frame.columns if c != frame.geometry.name]


def _flatten(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Nested values (dicts, lists) as JSON text: only GeoJSON holds them as they are."""
    out = frame.copy()
    for column in _properties(frame):
        values = frame[column]
        if values.dtype == object and values.map(lambda v: isinstance(v, (dict, list, tuple))).any():
            out[column] = values.map(lambda v: geojson.dumps(v) if isinstance(v, (dict, list, tuple)) else v)
    return out


def _is_integer(values: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _narrow_integers(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Integer columns whose values fit as 32-bit ``Int32`` (DBF N(9,0), KML ``int``)."""
    out = frame.copy()
    for column in _properties(frame):
        values = frame[column]
        if _is_integer(values):
            present = values.dropna()
            if present.empty or (present.min() >= INT32_RANGE[0] and present.max() <= INT32_RANGE[1]):
                out[column] = values.astype("Int32")
    return out


def _geometry_type(frame: gpd.GeoDataFrame, layer: Layer | None) -> str | None:
    """The layer's geometry type: polygonal layers as MultiPolygon (one type, as ArcGIS wants)."""
    if layer is not None:
        return layer.geometry_type
    return None if len(frame) else "Unknown"


def _free_name(wanted: str, taken: set[str]) -> str:
    name, n = wanted, 0
    while name.lower() in taken:
        n += 1
        name = f"{wanted}_{n}"
    return name


# --- formats -----------------------------------------------------------------------------


def _csv(frame: gpd.GeoDataFrame, layer: Layer | None, crs: str) -> bytes:
    """One row per feature, properties then the geometry as WKT in a column named ``WKT`` (which GDAL
    and QGIS take for the geometry without being told), UTF-8 with a BOM; numbers unquoted; no text
    cell a spreadsheet would run as a formula (:mod:`geodata.tables`).  Points also as WGS84 ``lon``
    and ``lat`` columns, for spreadsheets (before WKT, so that WKT stays last)."""
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    for column in table.columns:
        values = table[column]
        if values.dtype == object:
            table[column] = values.map(lambda v: geojson.dumps(v) if isinstance(v, (dict, list, tuple)) else v)
    geometries = frame.geometry.values
    points = layer.geometry_type == "Point" if layer is not None else bool(len(frame)) and (
        frame.geom_type == "Point").all()
    taken = {str(c).lower() for c in table.columns}
    if "wkt" in taken:  # the geometry's column name is GDAL's signal: a property of that name steps aside
        table = table.rename(columns={c: _free_name(str(c), taken) for c in table.columns if str(c).lower() == "wkt"})
        taken = {str(c).lower() for c in table.columns} | {"wkt"}
    if points:
        for name, values in (("lon", shapely.get_x(geometries)), ("lat", shapely.get_y(geometries))):
            column = _free_name(name, taken)
            taken.add(column)
            table[column] = values
    if layer is not None and layer.geometry_type.startswith("Multi"):  # the type the layer declares, as elsewhere
        geometries = np.asarray(geometries, dtype=object).copy()
        linear = layer.geometry_type == "MultiLineString"
        single = shapely.get_type_id(geometries) == (shapely.GeometryType.LINESTRING if linear
                                                     else shapely.GeometryType.POLYGON)
        multi = shapely.multilinestrings if linear else shapely.multipolygons
        geometries[single] = multi(geometries[single][:, np.newaxis]) if single.any() else []
    wkt = shapely.to_wkt(_in_crs(gpd.GeoDataFrame(geometry=geometries, crs=STORAGE_CRS), crs).geometry.values,
                         rounding_precision=-1)  # full precision, trimmed
    table["WKT"] = pd.array(wkt, dtype=object)
    return tables.to_csv(table)


def _gpkg(frame: gpd.GeoDataFrame, layer_name: str, layer: Layer | None) -> bytes:
    frame = _unique_names(frame)
    taken = {c.lower() for c in _properties(frame)}
    options = {"FID": _free_name("fid", taken), "GEOMETRY_NAME": _free_name("geom", taken)}
    if layer is not None:
        options.update(IDENTIFIER=layer.title, DESCRIPTION=layer.description)
    out = io.BytesIO()
    # GeoPackage 1.2: GDAL >= 3.11 writes 1.4 by default, which older GDAL, QGIS and ArcGIS warn about
    pyogrio.write_dataframe(frame, out, layer=layer_name, driver="GPKG", layer_options=options,
                            dataset_options={"VERSION": "1.2"},
                            geometry_type=_geometry_type(frame, layer),
                            promote_to_multi=bool(layer is not None and layer.geometry_types in (POLYGONAL, LINEAR)))
    return out.getvalue()


def _unique_names(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Column names unique ignoring case (SQLite and DBF ignore it): later ones get ``_1``…"""
    taken: set[str] = set()
    renames = {}
    for column in _properties(frame):
        name = _free_name(str(column), taken)
        taken.add(name.lower())
        if name != column:
            renames[column] = name
    return frame.rename(columns=renames) if renames else frame


def shapefile_field_names(columns: list[str], layer_name: str) -> dict[str, str]:
    """Each column's DBF field name (at most 10 bytes), unique and unambiguous for gridmap's reader.

    Schema fields come first and keep the plain cut (``party_members`` →
    ``party_memb``), which the upload reader maps back.  Any other column whose
    cut name the reader would take for a schema field, or that clashes with a
    name already used (ignoring case), gets a numbered suffix instead.

    Examples
    --------
    >>> names = shapefile_field_names(["grid_id", "party_members", "population_2020", "party_memb_old"], "grids")
    >>> names["party_members"], names["population_2020"], names["party_memb_old"]
    ('party_memb', 'populati_1', 'party_me_1')
    """
    layer = LAYERS.get(layer_name) or DERIVED.get(layer_name)
    schema = layer.field_names if layer is not None else []
    schema_lower = {f.lower() for f in schema}
    long_fields = [f.lower() for f in schema if len(f.encode("utf-8")) > DBF_NAME_BYTES]

    def misread(name: str, column: str) -> bool:
        """Whether the reader would take ``name`` (written for ``column``) for another schema field."""
        if column in schema:
            return False
        low = name.lower()
        return low in schema_lower or (len(name) == DBF_NAME_BYTES and any(f.startswith(low) for f in long_fields))

    ordered = [c for c in columns if c in schema] + [c for c in columns if c not in schema]
    taken: set[str] = set()
    names: dict[str, str] = {}
    for column in ordered:
        name, n = _cut(str(column), DBF_NAME_BYTES), 0
        while name.lower() in taken or misread(name, column) or not name:
            n += 1
            suffix = f"_{n}"
            name = _cut(str(column), DBF_NAME_BYTES - len(suffix)) + suffix
        taken.add(name.lower())
        names[column] = name
    return {c: names[c] for c in columns}


def _cut(text: str, size: int) -> str:
    """The longest prefix of ``text`` that is at most ``size`` bytes of UTF-8 (never half a character)."""
    return text.encode("utf-8")[:size].decode("utf-8", "ignore")


def _shapefile_zip(frame: gpd.GeoDataFrame, layer_name: str, layer: Layer | None) -> bytes:
    frame = _narrow_integers(frame)
    frame = frame.rename(columns=shapefile_field_names(_properties(frame), layer_name))
    with tempfile.TemporaryDirectory(prefix="gridmap-download-") as folder:
        path = os.path.join(folder, f"{layer_name}.shp")
        pyogrio.write_dataframe(frame, path, layer=layer_name, driver="ESRI Shapefile", encoding="UTF-8",
                                geometry_type=_geometry_type(frame, layer))
        cpg = os.path.join(folder, f"{layer_name}.cpg")
        if not os.path.exists(cpg):  # GDAL writes it for UTF-8; say so in any case
            with open(cpg, "w", encoding="ascii") as f:
                f.write("UTF-8")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for ext in SHAPEFILE_PARTS:
                archive.write(os.path.join(folder, layer_name + ext), layer_name + ext)
    return out.getvalue()


def _kml(frame: gpd.GeoDataFrame, layer_name: str) -> bytes:
    """KML through GDAL, well-formed whatever the data.

    GDAL writes field names into XML attributes unescaped: every field but the placemark's
    ``<name>`` and ``<description>`` (fixed names) is written under a plain stand-in (``gmf0``…)
    swapped for its escaped name afterwards; text XML 1.0 cannot hold (control characters,
    U+FFFE…) becomes U+FFFD first, rather than GDAL cutting it at a NUL or writing it as is.
    """
    frame = _narrow_integers(frame)  # GDAL declares 64-bit integers as KML strings, 32-bit ones as int
    name_field = KML_NAME_FIELDS.get(layer_name, "name")
    columns = [c for c in _properties(frame) if c not in (name_field, "description")]
    frame = frame.rename(columns={column: f"gmf{i}" for i, column in enumerate(columns)})
    for column in _properties(frame):
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            frame[column] = values.map(lambda v: _xml_text(v) if isinstance(v, str) else v)
    options = {"NameField": name_field} if name_field in frame.columns else {}
    out = io.BytesIO()
    pyogrio.write_dataframe(frame, out, layer=layer_name, driver="KML", dataset_options=options)
    names = [quoteattr(_xml_text(str(column))).encode("utf-8") for column in columns]
    return re.sub(rb'(<Simple(?:Field|Data) name=)"gmf(\d+)"', lambda m: m[1] + names[int(m[2])], out.getvalue())


# characters XML 1.0 cannot hold, even escaped
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
