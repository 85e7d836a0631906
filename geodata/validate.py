"""Check a layer against its schema and repair what can be repaired.

Reading a file only parses it; this module decides whether the features are
acceptable and says why not in a report a person can read.  Uploads show the
report as it is (SPEC §4): ``errors`` reject the file, ``warnings`` do not.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .i18n import known, text
from .schema import KEY_PATTERN, LAYERS, LINEAR, Field, Layer
from .unitkeys import CITY

MAX_PROBLEMS_PER_FIELD = 1000  # a 100k-row file with one bad column should not make a 100k-line report


@dataclass(frozen=True)
class Problem:
    index: int | None  # 0-based feature index in the file (messages count from 1); None for the whole layer
    key: str | None
    field: str | None  # None for the geometry
    message: str
    geometry: dict | None = None  # where it is, as GeoJSON (a gap or overlap an edit makes), when known

    def to_dict(self) -> dict:
        out = {"index": self.index, "key": self.key, "field": self.field, "message": self.message}
        if self.geometry is not None:
            out["geometry"] = self.geometry
        return out


@dataclass(frozen=True, eq=False)
class Report:
    """What validation found, and the cleaned data when there are no errors.

    ``data`` has the layer's fields in schema order (absent optional ones as
    nulls), extra fields after them untouched, integers as nullable integers
    and repaired geometries in place of invalid ones.
    """

    layer: str
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    data: gpd.GeoDataFrame | None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.warnings],
        }


class _Collector:
    def __init__(self, keys: list[str | None], lang: str):
        self.keys = keys
        self.lang = lang
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, target: list, rows, field_name, message_for) -> None:
        for count, i in enumerate(rows):
            if count == MAX_PROBLEMS_PER_FIELD:
                target.append(Problem(None, None, field_name, self.say("more", field=field_name)))
                return
            target.append(Problem(int(i), self.keys[i], field_name, message_for(i)))

    def say(self, check: str, **params) -> str:
        """A message in the reader's language (geodata.i18n ``check.*``)."""
        return text(f"check.{check}", self.lang).format(**params)

    def error(self, rows, field_name, message_for) -> None:
        self.add(self.errors, rows, field_name, message_for)

    def warning(self, rows, field_name, message_for) -> None:
        self.add(self.warnings, rows, field_name, message_for)


def validate(gdf: gpd.GeoDataFrame, layer: str | Layer, lang: str = "en") -> Report:
    """Validate ``gdf`` against ``layer`` of SPEC §1.

    Parameters
    ----------
    gdf : GeoDataFrame in WGS84 lon/lat (EPSG:4326 or no CRS).
    layer : a layer name (``grids``, ``centers``, ``districts``) or a Layer.
    lang : the language of the messages: ``en`` or ``zh``.

    Returns
    -------
    Report with ``errors``, ``warnings`` and, when there are no errors, ``data``.

    Examples
    --------
    >>> from shapely import Point
    >>> gdf = gpd.GeoDataFrame({"center_id": ["c1"], "name": ["x"], "level": ["city"],
    ...                         "district": ["海曙区"]}, geometry=[Point(121.5, 29.9)])
    >>> [p.message for p in validate(gdf, "centers").errors]
    ["'city' is not one of district, street, community"]
    """
    layer = LAYERS[layer] if isinstance(layer, str) else layer
    gdf = gdf.reset_index(drop=True)
    keys = _keys(gdf, layer)
    found = _Collector(keys, lang)
    out = {}

    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326") and not gdf.crs.equals("OGC:CRS84"):
        found.errors.append(Problem(None, None, None, found.say("not_wgs84", crs=gdf.crs.to_string())))

    for spec in layer.fields:
        if spec.name in gdf.columns:
            out[spec.name] = _check_field(gdf, spec, found)
        else:
            if spec.required:
                found.errors.append(Problem(None, None, spec.name, found.say("missing_field", field=spec.name)))
            out[spec.name] = _absent(spec, len(gdf))
    _check_required_when(gdf, layer, out, found)
    _check_some_cities(out, found)
    _check_duplicates(out[layer.key], layer.key, found)

    extras = [c for c in gdf.columns if c not in out and c != gdf.geometry.name]
    for name in extras:
        found.warnings.append(Problem(None, None, name, found.say("unknown_field", field=name)))
        out[name] = gdf[name]
    for name in [c for c in gdf.columns if c != gdf.geometry.name]:
        _check_control_chars(gdf[name], str(name), found)

    geometry = _check_geometry(gdf.geometry.values, layer, found)
    if layer.geometry_types == LINEAR:
        _check_network(geometry, found)
    data = None
    if not found.errors:
        data = gpd.GeoDataFrame(out, geometry=geometry, crs="EPSG:4326")
    return Report(layer.name, tuple(found.errors), tuple(found.warnings), data)


def _keys(gdf: gpd.GeoDataFrame, layer: Layer) -> list[str | None]:
    if layer.key not in gdf.columns:
        return [None] * len(gdf)
    return [None if _is_blank(v) else str(v) for v in gdf[layer.key]]


def _dtype(spec: Field) -> str:
    return {"integer": "Int64", "number": "Float64"}.get(spec.kind, "object")


def _absent(spec: Field, n: int) -> pd.Series:
    """An optional field the file does not have: its default (booleans), else nulls."""
    return pd.Series([spec.default] * n, dtype=_dtype(spec))


def _is_blank(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, str) and not value.strip()


def _blank_mask(series: pd.Series) -> np.ndarray:
    mask = series.isna().to_numpy().copy()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        mask |= series.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    return mask


def _check_field(gdf: gpd.GeoDataFrame, spec: Field, found: _Collector) -> pd.Series:
    series = gdf[spec.name]
    blank = _blank_mask(series)
    if spec.required:
        found.error(np.flatnonzero(blank), spec.name, lambda i: found.say("empty", field=spec.name))
    if spec.kind in ("integer", "number"):
        return _check_numeric(series, blank, spec, found)
    if spec.kind == "boolean":
        return _check_boolean(series, blank, spec, found)
    return _check_text(series, blank, spec, found)


# how booleans come back from formats without them: Shapefile (T/F, 1/0), KML and CSV (text)
_TRUE = {"true", "t", "yes", "y", "1", "是"}
_FALSE = {"false", "f", "no", "n", "0", "否"}


def _check_boolean(series: pd.Series, blank: np.ndarray, spec: Field, found: _Collector) -> pd.Series:
    values = series.astype(object).to_numpy()
    result = np.empty(len(values), dtype=object)
    bad = []
    for i, v in enumerate(values):
        if blank[i]:
            result[i] = spec.default
        elif isinstance(v, (bool, np.bool_)):
            result[i] = bool(v)
        elif isinstance(v, numbers.Real) and v in (0, 1):
            result[i] = bool(v)
        elif isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            result[i] = v.strip().lower() in _TRUE
        else:
            bad.append(i)
            result[i] = v
    found.error(bad, spec.name, lambda i: found.say("not_boolean", field=spec.name, value=repr(values[i])))
    return pd.Series(result, index=series.index, dtype=object)


def _check_text(series: pd.Series, blank: np.ndarray, spec: Field, found: _Collector) -> pd.Series:
    values = series.astype(object).to_numpy()
    result = np.empty(len(values), dtype=object)
    bad = []
    for i, v in enumerate(values):
        if blank[i]:
            result[i] = None
        elif isinstance(v, str):
            result[i] = v.strip()
        elif isinstance(v, numbers.Integral) and not isinstance(v, bool):
            result[i] = str(v)  # a code typed as a number in a spreadsheet is still a code
        else:
            bad.append(i)
            result[i] = v
    found.error(bad, spec.name, lambda i: found.say("not_text", field=spec.name, type=type(values[i]).__name__))
    text = pd.Series(result, index=series.index, dtype=object)
    if spec.kind == "key":
        wrong = [i for i, v in enumerate(result) if isinstance(v, str) and not KEY_PATTERN.match(v)]
        found.error(wrong, spec.name,
                    lambda i: found.say("bad_key", value=repr(result[i])))
    elif spec.kind == "enum":
        wrong = [i for i, v in enumerate(result) if isinstance(v, str) and v not in spec.choices]
        found.error(wrong, spec.name, lambda i: found.say("not_choice", value=repr(result[i]), choices=", ".join(spec.choices)))
    return text


# C0 and C1 control characters but tab, newline and carriage return: invisible, they break CSV, KML and
# the pages, and a NUL cuts the text short in GDAL and in C readers of the downloads
CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x80-\x9f]")


def _check_control_chars(series: pd.Series, name: str, found: _Collector) -> None:
    if not pd.api.types.is_string_dtype(series.dtype):  # object columns count too
        return
    values = series.to_numpy(dtype=object)
    if not CONTROL_CHARS.search("".join(v for v in values if isinstance(v, str))):  # one C pass, mostly
        return
    hits = {i: CONTROL_CHARS.search(v) for i, v in enumerate(values) if isinstance(v, str)}
    hits = {i: m for i, m in hits.items() if m}
    found.error(list(hits), name, lambda i: found.say("control_char", field=name, position=hits[i].start() + 1,
                                                      char=f"U+{ord(hits[i].group()):04X}"))


def _check_numeric(series: pd.Series, blank: np.ndarray, spec: Field, found: _Collector) -> pd.Series:
    what = "not_integer" if spec.kind == "integer" else "not_number"
    if pd.api.types.is_bool_dtype(series):
        numbers_ = pd.Series(np.nan, index=series.index)
        not_number = ~blank
    elif pd.api.types.is_numeric_dtype(series):
        numbers_ = series.astype("float64")
        not_number = np.zeros(len(series), dtype=bool)
    else:  # mixed values: text "12" is refused rather than guessed at
        raw = series.astype(object)
        is_num = raw.map(lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)).to_numpy(dtype=bool)
        not_number = ~is_num & ~blank
        numbers_ = pd.Series(np.where(is_num, raw, np.nan), index=series.index, dtype="float64")
    values = numbers_.to_numpy()
    found.error(np.flatnonzero(not_number), spec.name,
                lambda i: found.say(what, field=spec.name, value=repr(series.iloc[i])))
    finite = ~np.isnan(values)
    if spec.kind == "integer":
        fractional = finite & (np.floor(values) != values)
        found.error(np.flatnonzero(fractional), spec.name,
                    lambda i: found.say(what, field=spec.name, value=repr(values[i])))
        finite &= ~fractional
    if spec.minimum is not None:
        found.error(np.flatnonzero(finite & (values < spec.minimum)), spec.name,
                    lambda i: found.say("below_minimum", field=spec.name, minimum=f"{spec.minimum:g}", value=f"{values[i]:g}"))
    if spec.kind == "integer":
        # values that are too large for int64 were refused above only if fractional; guard the cast
        return pd.Series(np.where(finite, values, np.nan), index=series.index).astype("Float64").astype("Int64")
    return pd.Series(np.where(finite, values, np.nan), index=series.index, dtype="Float64")


def _check_required_when(gdf: gpd.GeoDataFrame, layer: Layer, out: dict, found: _Collector) -> None:
    for spec in layer.fields:
        if spec.required_when is None:
            continue
        other, values = spec.required_when
        needed = out[other].isin(values).to_numpy() & out[spec.name].isna().to_numpy()
        found.error(np.flatnonzero(needed), spec.name,
                    lambda i, other=other: found.say("required_when", field=spec.name, other=other,
                                                   value=repr(out[other].iloc[i])))


def _check_some_cities(out: dict, found: _Collector) -> None:
    """A warning for each feature without a ``city`` when others name one: it would count as a city of its
    own ("no city") in every summary, which is rarely what was meant."""
    if CITY not in out:
        return
    blank = _blank_mask(out[CITY])
    if blank.any() and not blank.all():
        found.warning(np.flatnonzero(blank), CITY, lambda i: found.say("no_city"))


def _check_duplicates(keys: pd.Series, name: str, found: _Collector) -> None:
    present = keys.dropna()
    dup = present[present.duplicated(keep="first")]
    if dup.empty:
        return
    first = {k: i for i, k in reversed(list(present.items()))}
    # people count features from 1; the report's index stays 0-based
    found.error(dup.index.to_numpy(), name,
                lambda i: found.say("duplicate", field=name, value=repr(keys.iloc[i]), first=first[keys.iloc[i]] + 1))


def _check_geometry(geoms: np.ndarray, layer: Layer, found: _Collector) -> np.ndarray:
    geoms = np.asarray(geoms, dtype=object).copy()
    expected = text("check.or", found.lang).join(layer.geometry_types)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    found.error(np.flatnonzero(missing), None, lambda i: found.say("no_geometry"))

    present = ~missing
    types = np.array(shapely.get_type_id(geoms))
    allowed_ids = [_TYPE_IDS[t] for t in layer.geometry_types]
    wrong_type = present & ~np.isin(types, allowed_ids)
    found.error(np.flatnonzero(wrong_type), None,
                lambda i: found.say("wrong_type", type=geoms[i].geom_type, expected=expected))

    check = present & ~wrong_type
    bounds = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        outside = check & ~((bounds[:, 0] >= -180) & (bounds[:, 2] <= 180) & (bounds[:, 1] >= -90) & (bounds[:, 3] <= 90))
    found.error(np.flatnonzero(outside), None,
                lambda i: found.say("not_lonlat"))

    check &= ~outside
    invalid = np.flatnonzero(check & ~shapely.is_valid(geoms))
    reasons = {i: geos_reason(shapely.is_valid_reason(geoms[i]), found.lang) for i in invalid}
    unrepairable = []
    for i in invalid:
        repaired = _repair(geoms[i], layer.geometry_types)
        if repaired is None:
            unrepairable.append(i)
        else:
            geoms[i] = repaired
    if layer.geometry_types == LINEAR:  # a broken road is left out of the network, not a reason to refuse the file
        found.warning(unrepairable, None, lambda i: found.say("broken_line", reason=reasons[i]))
    else:
        found.error(unrepairable, None, lambda i: found.say("unrepairable", reason=reasons[i]))
    found.warning([i for i in invalid if i not in set(unrepairable)], None,
                  lambda i: found.say("repaired", reason=reasons[i]))
    return geoms


_REASON = re.compile(r"(?P<name>[^\[]+?)\s*\[(?P<x>\S+) (?P<y>\S+)(?: \S+)?\]")


def geos_reason(reason: str, lang: str) -> str:
    """GEOS's reason a geometry is invalid (``Self-intersection[121.55 29.87]``) in ``lang``:
    ``自相交，位于 (121.55, 29.87)`` (``geos.*`` keys; an unknown reason as GEOS says it)."""
    found = _REASON.fullmatch(reason.strip())
    name = found["name"] if found else reason.strip()
    key = "geos." + re.sub(r"[^a-z]+", "_", name.lower()).strip("_")
    said = text(key, lang) if known(key) else name
    return text("check.reason_at", lang).format(reason=said, x=found["x"], y=found["y"]) if found else said


_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5, "MultiPolygon": 6}


def _repair(geom, allowed: tuple[str, ...]):
    """Repair keeping the geometry type ('structure' keeps polygons polygonal); None if nothing is left."""
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    if fixed.is_empty or fixed.geom_type not in allowed:
        return None
    return fixed


def _check_network(geoms: np.ndarray, found: _Collector) -> None:
    """Warnings about a road network (SPEC §1 roads): lines with no length, segments that repeat one of an
    earlier road, and roads not connected to the largest part of the network (they share no vertex with it:
    walking catchments cannot reach them).  Degrees are fine here: the checks compare, never measure."""
    from .network import segments_of  # the network's own idea of segments and nodes

    geoms = np.asarray(geoms, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) & np.isin(
        shapely.get_type_id(geoms), [_TYPE_IDS[t] for t in LINEAR])
    ok &= shapely.is_valid(geoms)  # the invalid ones were reported above
    found.warning(np.flatnonzero(ok & (shapely.length(geoms) == 0)), None, lambda i: found.say("zero_length"))
    a, b, owner = segments_of(np.where(ok, geoms, None))
    if not len(owner):
        return
    ends = np.round(np.vstack([a, b]) * 1e8).astype(np.int64)  # about a millimetre
    _, node = np.unique(ends, axis=0, return_inverse=True)
    node = node.ravel()
    u, v = node[:len(a)], node[len(a):]
    pairs = pd.DataFrame({"u": np.minimum(u, v), "v": np.maximum(u, v), "owner": owner})
    pairs = pairs[pairs.u != pairs.v]
    first = pairs.drop_duplicates(["u", "v", "owner"])
    repeated = first[first.duplicated(["u", "v"], keep="first")]
    earlier = first.drop_duplicates(["u", "v"]).set_index(["u", "v"])["owner"]
    of = dict(zip(repeated.owner, earlier.loc[list(zip(repeated.u, repeated.v))].to_numpy()))
    found.warning(sorted(of), None, lambda i: found.say("duplicate_segment", first=int(of[i]) + 1))
    from scipy import sparse
    from scipy.sparse import csgraph

    n = int(node.max()) + 1
    graph = sparse.coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    count, label = csgraph.connected_components(graph, directed=False)
    if count < 2:
        return
    part = label[u]  # each segment's component; a road's first one stands for it (its segments are connected)
    road_part = pd.Series(part).groupby(owner).first()
    roads_in = road_part.value_counts()
    main = roads_in.idxmax()
    island = road_part[road_part != main]
    size = roads_in.to_dict()
    found.warning(island.index.to_numpy(), None, lambda i: found.say("island", roads=size[island[i]]))
