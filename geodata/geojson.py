"""RFC 7946 GeoJSON in and out, fast enough for 8,000+ features a request.

Features are serialised once into strings (shapely's vectorised
``to_geojson`` for geometries); pages and downloads are joined from them.
"""

from __future__ import annotations

import io
import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from .crs import CRS84_URI, from_crs84
from .schema import Layer


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def dumps(value) -> str:
    """Compact JSON that keeps Chinese text readable."""
    return _ENCODER.encode(value)


def property_records(gdf: gpd.GeoDataFrame) -> list[dict]:
    """Each row's properties as a dict of plain JSON values (nulls as None).

    Column by column (``tolist`` gives Python values at C speed): a province's 85,000 rows
    in a fraction of what ``to_dict("records")`` takes.
    """
    names = [c for c in gdf.columns if c != gdf.geometry.name]
    columns = []
    for name in names:
        values = gdf[name]
        columns.append(values.astype(object).where(values.notna(), None).tolist())
    return [dict(zip(names, row)) for row in zip(*columns)] if names else [{} for _ in range(len(gdf))]


def rfc7946_geometries(geoms) -> np.ndarray:
    """Polygons with counter-clockwise exterior rings, as RFC 7946 §3.1.6 wants."""
    return shapely.orient_polygons(np.asarray(geoms, dtype=object), exterior_cw=False)


def feature_strings(gdf: gpd.GeoDataFrame, id_field: str | None = None) -> list[str]:
    """One GeoJSON Feature string per row; ``id`` taken from ``id_field`` when given."""
    geometries = shapely.to_geojson(rfc7946_geometries(gdf.geometry.values))
    records = property_records(gdf)
    encode = _ENCODER.encode
    if id_field is None:
        return [f'{{"type":"Feature","geometry":{g or "null"},"properties":{encode(p)}}}'
                for g, p in zip(geometries, records)]
    return [f'{{"type":"Feature","id":{encode(p[id_field])},"geometry":{g or "null"},"properties":{encode(p)}}}'
            for g, p in zip(geometries, records)]


_GEOMETRY = '"geometry":'
_PROPERTIES = ',"properties":'


def served(texts: list[str], layer: Layer | None, crs: str = CRS84_URI, *, xy: bool = False) -> list[str]:
    """Stored feature texts (``feature_strings``) as the API serves them: every geometry of the layer's
    one type (``Layer.geometry_type``: a Polygon as a one-part MultiPolygon) and in ``crs``
    (:func:`geodata.crs.from_crs84`; ``xy`` as there).  Only the geometry's text changes.

    Examples
    --------
    >>> from geodata.schema import GRIDS
    >>> served(['{"type":"Feature","id":"g1","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,1],[0,0]]]}'
    ...         ',"properties":{"grid_id":"g1"}}'], GRIDS)[0][28:]
    '"geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[0,1],[0,0]]]]},"properties":{"grid_id":"g1"}}'
    """
    if crs != CRS84_URI and texts:
        texts = _with_geometries(texts, lambda geometries: from_crs84(geometries, crs, xy=xy))
    if layer is not None and layer.geometry_type.startswith("Multi"):
        texts = _promoted(texts, layer.geometry_type)
    return texts


def _spans(text: str) -> tuple[int, int]:
    """Where the geometry's JSON starts and ends in a feature text: after the first ``"geometry":`` and
    before the first ``,"properties":`` (an ``id`` cannot hold either: its quotes are escaped)."""
    start = text.index(_GEOMETRY) + len(_GEOMETRY)
    return start, text.index(_PROPERTIES, start)


def _promoted(texts: list[str], multi: str) -> list[str]:
    """The texts with each single geometry (``Polygon``) written as its one-part ``multi`` (``MultiPolygon``):
    the coordinates wrapped in one more array, by text (no parsing: a province's download is 85,000 of them)."""
    single = f'{_GEOMETRY}{{"type":"{multi[len("Multi"):]}","coordinates":'
    multiple = f'{_GEOMETRY}{{"type":"{multi}","coordinates":['
    out = []
    for text in texts:
        at = text.find(single)
        if at < 0:
            out.append(text)
            continue
        end = text.index(_PROPERTIES, at)  # the geometry's closing brace is just before it
        out.append(f"{text[:at]}{multiple}{text[at + len(single):end - 1]}]}}{text[end:]}")
    return out


def _with_geometries(texts: list[str], change) -> list[str]:
    """The texts with their geometries replaced by ``change(geometries)`` (vectorised, shapely)."""
    spans = [_spans(text) for text in texts]
    raw = [text[a:b] for text, (a, b) in zip(texts, spans)]
    present = [i for i, g in enumerate(raw) if g != "null"]
    geometries = shapely.to_geojson(change(shapely.from_geojson([raw[i] for i in present])))
    for i, geometry in zip(present, geometries):
        raw[i] = geometry
    return [f"{text[:a]}{g}{text[b:]}" for text, (a, b), g in zip(texts, spans, raw)]


def feature_collection(features: list[str], **members) -> bytes:
    """A FeatureCollection from feature strings, with extra top-level members (links, counts)."""
    extra = "".join(f",{dumps(k)}:{dumps(v)}" for k, v in members.items())
    return ('{"type":"FeatureCollection","features":[' + ",".join(features) + "]" + extra + "}").encode("utf-8")


def to_bytes(gdf: gpd.GeoDataFrame) -> bytes:
    """The whole layer as an RFC 7946 FeatureCollection (no ``crs`` member)."""
    return feature_collection(feature_strings(gdf))


def read(data: bytes, layer: Layer | None = None) -> gpd.GeoDataFrame:
    """Parse GeoJSON bytes that gridmap wrote, keeping every property exactly as stored.

    GDAL parses the geometries (fast); properties come from ``json`` because
    GDAL would turn nested objects into strings and date-like text into dates.
    """
    features = json.loads(data)["features"]
    props = pd.DataFrame.from_records([f.get("properties") or {} for f in features], index=range(len(features)))
    if features:
        geoms = pyogrio.read_dataframe(io.BytesIO(data), columns=[]).geometry.values
    else:
        geoms = []
    gdf = gpd.GeoDataFrame(props, geometry=gpd.GeoSeries(geoms, index=props.index), crs="EPSG:4326")
    return conform(gdf, layer) if layer is not None else gdf


def conform(gdf: gpd.GeoDataFrame, layer: Layer) -> gpd.GeoDataFrame:
    """Schema order and dtypes: integers as Int64, numbers as Float64, absent fields as nulls."""
    columns = {}
    for spec in layer.fields:
        values = gdf[spec.name] if spec.name in gdf.columns else pd.Series([None] * len(gdf), index=gdf.index)
        if spec.kind == "integer":
            values = pd.to_numeric(values).astype("Float64").round().astype("Int64")
        elif spec.kind == "number":
            values = pd.to_numeric(values).astype("Float64")
        elif spec.kind == "boolean":  # True/False as stored; blank as the field's default
            values = values.astype(object).where(values.notna(), spec.default)
        else:
            values = values.astype(object).where(values.notna(), None)
        columns[spec.name] = values
    for name in gdf.columns:
        if name not in columns and name != gdf.geometry.name:
            columns[name] = gdf[name]
    return gpd.GeoDataFrame(columns, geometry=gdf.geometry.values, crs="EPSG:4326", index=gdf.index)
