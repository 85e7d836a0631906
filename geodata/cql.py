"""OGC API – Features Part 3 filters (CQL2) and sorting, checked against a layer and run where the data is.

``cql2`` (the Rust-backed parser of the CQL2 reference implementation) reads
``cql2-text`` and ``cql2-json`` into the standard's JSON form; :func:`parse`
walks that once, checks every property and literal against the layer's schema
(a bad one is a 400 that names it) and yields a small typed tree.  Nothing is
ever evaluated as Python: the tree becomes SQL for the stores
(:func:`sqlite_where`, :func:`postgis_where`) or a vectorised mask of a frame
(:func:`frame_mask`) for the derived collections, with the same semantics:

- SQL's three-valued logic: a comparison with a missing (null) value is
  unknown, ``NOT unknown`` is unknown, and only true rows are selected;
- numbers compare with number properties, quoted text with text ones (a
  mismatch is a 400); text compares by code point;
- ``LIKE`` is case-sensitive (``%`` any run, ``_`` one character, ``\\``
  escapes); ``CASEI`` lower-cases both sides (and GDAL's ``ILIKE`` in
  ``cql-text`` is read as ``CASEI`` on both sides);
- ``S_INTERSECTS(geometry, …)`` takes a point, line, polygon (or their multi
  forms) or ``BBOX``/``ENVELOPE``, in CRS84 lon/lat; a feature without a
  geometry intersects nothing.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from .crs import CRS84_URI, bbox_to_crs84, output_crs, to_crs84
from .errors import BadRequest
from .i18n import says
from .params import json_depth, loads_json
from .schema import Layer

LANGS = ("cql2-text", "cql2-json", "cql-text")  # cql-text: what GDAL 3.6's OAPIF driver sends (CQL2 text)
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOMETRY = "geometry"  # the name of the features' geometry in filters and queryables
MAX_TEXT = 4096  # characters of a filter: the request line is refused above 4 KB anyway
MAX_DEPTH = 64  # brackets and NOTs nested: the parser recurses (and a few thousand levels crash it)
MAX_LIST = 1000  # values of an IN list
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
]
NUMERIC_KINDS = ("integer", "number")
COMPARISONS = {"=": "=", "<>": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
FLIPPED = {"=": "=", "<>": "<>", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


# --- the tree ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prop:
    name: str
    numeric: bool  # compared as a number (else as text)
    casei: bool = False


@dataclass(frozen=True)
class Compare:
    op: str
    prop: Prop
    value: object


@dataclass(frozen=True)
class Like:
    prop: Prop
    pattern: str  # CQL2's: % _ and \ escapes


@dataclass(frozen=True)
class Between:
    prop: Prop
    low: float
    high: float


@dataclass(frozen=True)
class In:
    prop: Prop
    values: tuple


@dataclass(frozen=True)
class IsNull:
    name: str


@dataclass(frozen=True)
class IsBool:
    """A true/false property is ``value`` (stored as JSON true or false; an item filter ``?walkable=true``)."""

    name: str
    value: bool


@dataclass(frozen=True)
class Intersects:
    wkb: bytes  # CRS84

    @functools.cached_property
    def geometry(self):
        return shapely.from_wkb(self.wkb)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return tuple(float(b) for b in shapely.bounds(self.geometry))


@dataclass(frozen=True)
class Logic:
    op: str  # and, or
    args: tuple


@dataclass(frozen=True)
class Not:
    arg: object


@dataclass(frozen=True)
class Literal:
    value: bool


@dataclass(frozen=True)
class Filter:
    """A checked filter: its tree and the text it came from (for messages and cache keys)."""

    node: object
    text: str

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        """The bounds of a spatial test every match must pass (a top-level S_INTERSECTS), for an index."""
        nodes = self.node.args if isinstance(self.node, Logic) and self.node.op == "and" else (self.node,)
        boxes = [n.bounds for n in nodes if isinstance(n, Intersects)]
        if not boxes:
            return None
        minx, miny, maxx, maxy = zip(*boxes)
        return max(minx), max(miny), min(maxx), min(maxy)


# --- parsing -------------------------------------------------------------------------------------

def parse(text: str, lang: str | None, crs: str | None, layer: Layer, columns) -> Filter:
    """The ``filter`` parameter, checked against ``layer`` (and the other ``columns`` features carry)."""
    import cql2  # the parser: imported when a filter first comes

    lang = lang or "cql2-text"
    if lang not in LANGS:
        raise BadRequest(says("cql.filter_lang", choices=", ".join(LANGS), value=repr(lang)), details=list(LANGS))
    crs = output_crs(crs, "filter-crs")  # any CRS the answers are served in (Part 2); CRS84 by default
    if len(text) > MAX_TEXT:
        raise BadRequest(says("cql.too_long", length=len(text), most=MAX_TEXT))
    try:
        if lang == "cql2-json":
            loads_json(text, max_depth=MAX_DEPTH)  # a 400 for bad JSON or deep nesting, before the parser sees it
            expr = cql2.parse_json(text)
        else:
            _check_nesting(text)
            expr = cql2.parse_text(_ilike_as_casei(text) if lang == "cql-text" else text)
        tree = expr.to_json()
    except BadRequest as e:
        raise BadRequest(says("cql.invalid", lang=lang, reason=e.message)) from None
    except (ValueError, cql2.ParseError, cql2.ValidationError) as e:
        raise BadRequest(says("cql.invalid", lang=lang, reason=_first_lines(str(e)))) from None
    except BaseException as e:  # a panic in the Rust parser arrives as pyo3's PanicException (a BaseException)
        if type(e).__name__ != "PanicException":
            raise
        raise BadRequest(says("cql.unreadable", lang=lang)) from None
    kinds = {f.name: f.kind for f in layer.fields}
    return Filter(_Checker(kinds, set(columns), crs).node(tree, 0), text)


# GDAL's OAPIF driver writes OGR SQL's ``a ILIKE 'p'`` as is in cql-text; CQL2 says it as
# ``CASEI(a) LIKE CASEI('p')``.  Quoted text is matched first, so nothing inside a literal is rewritten.
_ILIKE = re.compile(r"""'(?:[^']|'')*'|(?P<prop>"[^"]+"|\b[A-Za-z_]\w*)\s+(?P<not>NOT\s+)?ILIKE\s+"""
                    r"(?P<pattern>'(?:[^']|'')*')", re.IGNORECASE)


def _ilike_as_casei(text: str) -> str:
    def rewrite(m):
        if m.group("prop") is None:
            return m.group(0)
        return f"CASEI({m.group('prop')}) {m.group('not') or ''}LIKE CASEI({m.group('pattern')})"
    return _ILIKE.sub(rewrite, text)


def _check_nesting(text: str) -> None:
    blanked = re.sub(r"'(?:[^']|'')*'", "''", text)  # brackets and words inside quoted text do not count
    depth = json_depth(blanked.replace("(", "[").replace(")", "]"))
    nots = len(re.findall(r"\bnot\b", blanked, flags=re.I))
    if depth > MAX_DEPTH or nots > MAX_DEPTH:
        raise BadRequest(says("cql.nests", depth=max(depth, nots), most=MAX_DEPTH))


def _first_lines(message: str):
    """The parser's message on one line: where it failed (line and column) and what it expected (the parser's
    own words, English: given in English only; a Chinese reader gets where)."""
    where = re.search(r"-->\s*(\d+):(\d+)", message)
    expected = re.search(r"=\s*(expected .*|unexpected .*)", message)
    if where:
        line, column = where.group(1), where.group(2)
        at = says("cql.at", column=column) if line == "1" else says("cql.at_line", column=column, line=line)
        return says("cql.at_expected", at=at, expected=expected.group(1).strip()) if expected else at
    return says("cql.parser_said", said=" ".join(line.strip() for line in message.strip().splitlines())[:600])


class _Checker:
    def __init__(self, kinds: dict[str, str], columns: set[str], crs: str = CRS84_URI):
        self.kinds, self.columns, self.crs = kinds, columns, crs

    def node(self, tree, depth: int):
        if depth > MAX_DEPTH:
            raise BadRequest(says("cql.nests_more", most=MAX_DEPTH))
        if isinstance(tree, bool):
            return Literal(tree)
        if not isinstance(tree, dict) or "op" not in tree:
            raise BadRequest(says("cql.not_condition", value=_shown(tree)))
        op, args = str(tree["op"]).lower(), list(tree.get("args") or [])
        if op in ("and", "or"):
            if len(args) < 2:
                raise BadRequest(says("cql.two_conditions", op=op.upper()))
            return Logic(op, tuple(self.node(a, depth + 1) for a in args))
        if op == "not":
            self._count(op, args, 1)
            return Not(self.node(args[0], depth + 1))
        if op in COMPARISONS:
            self._count(op, args, 2)
            left, right = args
            if not _names_property(left) and _names_property(right):
                left, right, op = right, left, FLIPPED[op]
            prop = self.prop(left, op, _casei(right))
            return Compare(op, prop, self.value(prop, right, op))
        if op == "like":
            self._count("LIKE", args, 2)
            prop = self.prop(args[0], "LIKE", _casei(args[1]))
            if prop.numeric:
                raise BadRequest(says("cql.like_number", name=prop.name))
            return Like(prop, self.value(prop, args[1], "LIKE"))
        if op == "between":
            self._count("BETWEEN", args, 3)
            prop = self.prop(args[0], "BETWEEN")
            low, high = (self.value(prop, a, "BETWEEN") for a in args[1:])
            return Between(prop, low, high)
        if op == "in":
            self._count("IN", args, 2)
            if not isinstance(args[1], list) or not args[1]:
                raise BadRequest(says("cql.in_list"))
            if len(args[1]) > MAX_LIST:
                raise BadRequest(says("cql.in_too_long", most=MAX_LIST, n=len(args[1])))
            prop = self.prop(args[0], "IN", any(_casei(v) for v in args[1]))
            return In(prop, tuple(self.value(prop, v, "IN") for v in args[1]))
        if op == "isnull":
            self._count("IS NULL", args, 1)
            return IsNull(self.prop(args[0], "IS NULL").name)
        if op == "s_intersects":
            self._count("S_INTERSECTS", args, 2)
            first, second = args
            if _is_property(second) and not _is_property(first):
                first, second = second, first
            if not (_is_property(first) and first["property"] == GEOMETRY):
                raise BadRequest(says("cql.intersects_geometry", geometry=GEOMETRY, value=_shown(first)))
            return Intersects(_geometry(second, self.crs))
        if op in ("casei", "accenti"):
            raise BadRequest(says("cql.alone", op=op.upper()))
        raise BadRequest(says("cql.unsupported", op=tree["op"]))

    @staticmethod
    def _count(op: str, args: list, n: int) -> None:
        if len(args) != n:
            raise BadRequest(says("cql.arguments", count=n, op=op.upper(), given=len(args)))

    def prop(self, arg, op: str, casei: bool = False) -> Prop:
        """The property ``arg`` names; CASEI on either side of the test makes both case-insensitive."""
        if _casei(arg):
            casei, arg = True, (arg.get("args") or [None])[0]
        if not _is_property(arg):
            raise BadRequest(says("cql.not_property", op=op, value=_shown(arg)))
        name = arg["property"]
        if name not in self.columns:
            if name == GEOMETRY:
                raise BadRequest(says("cql.geometry_op", geometry=GEOMETRY, op=op))
            raise BadRequest(says("cql.unknown_property", name=name, names=", ".join(sorted(self.columns))),
                             details=sorted(self.columns))
        kind = self.kinds.get(name)
        numeric = kind in NUMERIC_KINDS
        if casei and numeric:
            raise BadRequest(says("cql.casei_number", name=name))
        return Prop(name, numeric, casei)

    def value(self, prop: Prop, arg, op: str):
        if _casei(arg):
            arg = (arg.get("args") or [None])[0]
        if _names_property(arg):
            raise BadRequest(says("cql.two_properties", op=op, name=prop.name))
        if isinstance(arg, bool) or arg is None or isinstance(arg, (dict, list)):
            raise BadRequest(says("cql.needs_number" if prop.numeric else "cql.needs_text", op=op, name=prop.name,
                                  value=_shown(arg)))
        if prop.numeric:
            if not isinstance(arg, (int, float)):
                raise BadRequest(says("cql.number_with_number", name=prop.name, value=_shown(arg)))
            if not math.isfinite(arg):
                raise BadRequest(says("cql.finite", name=prop.name, value=arg))
            return float(arg)
        if not isinstance(arg, str):
            raise BadRequest(says("cql.text_with_text", name=prop.name, value=_number_text(arg)))
        return arg.lower() if prop.casei else arg


def _names_property(arg) -> bool:
    return _is_property(arg) or (_casei(arg) and _is_property((arg.get("args") or [None])[0]))


def _casei(arg) -> bool:
    return isinstance(arg, dict) and str(arg.get("op", "")).lower() == "casei"


def _number_text(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _is_property(arg) -> bool:
    return isinstance(arg, dict) and set(arg) == {"property"} and isinstance(arg["property"], str)


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:60] + "..."


def _geometry(arg, crs: str = CRS84_URI) -> bytes:
    """The literal geometry of S_INTERSECTS, written in ``crs`` (``filter-crs``, in its axis order), as WKB in
    CRS84; BadRequest unless it is a valid one."""
    if isinstance(arg, dict) and "bbox" in arg:
        coords = arg["bbox"]
    elif isinstance(arg, dict) and str(arg.get("op", "")).lower() == "envelope":
        coords = arg.get("args")
    elif isinstance(arg, dict) and "type" in arg and "coordinates" in arg:
        if arg["type"] not in ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"):
            raise BadRequest(says("cql.intersects_takes", value=arg["type"]))
        try:
            geom = shapely.from_geojson(json.dumps(arg))
        except (shapely.errors.GEOSException, ValueError) as e:
            raise BadRequest(says("cql.invalid_geometry", type=arg["type"], reason=str(e))) from None
        coords = shapely.get_coordinates(geom)
        if geom.is_empty or not np.isfinite(coords).all():
            raise BadRequest(says("cql.no_finite", type=arg["type"]))
        geom = to_crs84([geom], crs)[0]
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        return shapely.to_wkb(geom)
    else:
        raise BadRequest(says("cql.intersects_takes", value=_shown(arg)))
    if not isinstance(coords, list) or len(coords) not in (4, 6) or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in coords):
        raise BadRequest(says("cql.envelope", value=_shown(coords)))
    if len(coords) == 6:
        coords = [coords[0], coords[1], coords[3], coords[4]]
    minx, miny, maxx, maxy = coords
    if minx > maxx or miny > maxy:
        raise BadRequest(says("cql.envelope_min_max", value=_shown(coords)))
    return shapely.to_wkb(shapely.box(*bbox_to_crs84((minx, miny, maxx, maxy), crs)))


# --- sortby, properties --------------------------------------------------------------------------

def parse_sortby(raw: str, layer: Layer, columns) -> tuple[tuple[str, bool, bool], ...]:
    """``+name,-population``: (property, descending, numeric) keys; BadRequest for unknown ones."""
    kinds = {f.name: f.kind for f in layer.fields}
    keys = []
    for part in raw.split(","):
        part = part.strip()  # a '+' sent unencoded arrives as a space
        descending = part.startswith("-")
        name = part.lstrip("+-").strip()
        if not name:
            raise BadRequest(says("cql.sortby", value=repr(raw)))
        if name not in columns:
            raise BadRequest(says("cql.sort_unknown", name=name, names=", ".join(columns)), details=list(columns))
        keys.append((name, descending, kinds.get(name) in NUMERIC_KINDS))
    return tuple(keys)


def parse_properties(raw: str, columns) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise BadRequest(says("cql.properties_unknown", name=unknown[0], names=", ".join(columns)),
                         details=list(columns))
    return names


def select_properties(texts: list[str], names: tuple[str, ...] | None, skip_geometry: bool) -> list[str]:
    """Feature texts with only the ``names`` properties (None: all) and, with ``skip_geometry``, no geometry."""
    if names is None and not skip_geometry:
        return texts
    out = []
    for text in texts:
        feature = json.loads(text)
        if names is not None:
            feature["properties"] = {k: v for k, v in feature["properties"].items() if k in names}
        if skip_geometry:
            feature["geometry"] = None
        out.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    return out


# --- frames (the derived collections) ------------------------------------------------------------

def frame_mask(flt: Filter, gdf) -> np.ndarray:
    """The rows of ``gdf`` the filter selects, as a boolean array (unknown counts as not selected)."""
    return _mask(flt.node, gdf).fillna(False).to_numpy(dtype=bool)


def _values(gdf, prop: Prop) -> pd.Series:
    column = gdf[prop.name]
    if prop.numeric:
        return pd.to_numeric(column, errors="coerce").astype("Float64")
    # text only: a number in a text column is no text (as json_type says in the stores)
    values = column.astype(object).map(lambda v: v if isinstance(v, str) else None).astype("string")
    return values.str.lower() if prop.casei else values


def _mask(node, gdf) -> pd.Series:
    index = gdf.index
    if isinstance(node, Literal):
        return pd.Series(node.value, index=index, dtype="boolean")
    if isinstance(node, Logic):
        parts = [_mask(a, gdf) for a in node.args]
        return functools.reduce((lambda a, b: a & b) if node.op == "and" else (lambda a, b: a | b), parts)
    if isinstance(node, Not):
        return ~_mask(node.arg, gdf)
    if isinstance(node, IsNull):
        return gdf[node.name].isna().astype("boolean")
    if isinstance(node, IsBool):
        return gdf[node.name].map(lambda v: isinstance(v, (bool, np.bool_)) and bool(v) == node.value).astype("boolean")
    if isinstance(node, Intersects):
        geoms = gdf.geometry.values
        hits = shapely.intersects(np.asarray(geoms, dtype=object), node.geometry)
        return pd.Series(hits, index=index, dtype="boolean")
    values = _values(gdf, node.prop)
    if isinstance(node, Compare):
        result = {"=": values.__eq__, "<>": values.__ne__, "<": values.__lt__, ">": values.__gt__,
                  "<=": values.__le__, ">=": values.__ge__}[node.op](node.value)
    elif isinstance(node, Between):
        result = (values >= node.low) & (values <= node.high)
    elif isinstance(node, In):
        result = values.isin(list(node.values)).astype("boolean").mask(values.isna())
    elif isinstance(node, Like):
        result = values.str.fullmatch(like_regex(node.pattern))
    else:
        raise TypeError(node)
    return result.astype("boolean")


def like_regex(pattern: str) -> str:
    out, escaped = [], False
    for ch in pattern:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    if escaped:
        out.append(re.escape("\\"))
    return "(?s)" + "".join(out)


def like_glob(pattern: str) -> str:
    """A CQL2 LIKE pattern as an SQLite GLOB (case-sensitive, as LIKE in CQL2 is; SQLite's LIKE is not)."""
    out, escaped = [], False
    for ch in pattern:
        literal = escaped or ch not in "%_\\"
        if literal:
            out.append(f"[{ch}]" if ch in "*?[" else ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append("*" if ch == "%" else "?")
    if escaped:
        out.append("\\")
    return "".join(out)


def sort_frame(gdf, sortby) -> np.ndarray:
    """Row positions of ``gdf`` in ``sortby`` order (nulls first ascending, last descending; ties keep
    the frame's order), as the stores sort."""
    order = np.arange(len(gdf))
    for name, descending, numeric in reversed(sortby):
        column = gdf[name].iloc[order]
        if numeric:
            values = pd.to_numeric(column, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        else:  # text only, as the stores sort (anything else sorts as null)
            values = column.astype(object).map(lambda v: v if isinstance(v, str) else None).to_numpy(dtype=object)
        frame = pd.DataFrame({"v": values})
        positions = frame.sort_values("v", ascending=not descending, kind="stable",
                                      na_position="last" if descending else "first").index.to_numpy()
        order = order[positions]
    return order


# --- SQL -----------------------------------------------------------------------------------------

def sqlite_where(flt: Filter) -> tuple[str, list]:
    """The filter as an SQLite condition on ``features f`` (``f.props`` the properties' JSON text; the
    functions ``gridmap_lower`` and ``gridmap_intersects`` registered by the store)."""
    params: list = []

    def value(prop: Prop) -> str:
        return _sqlite_value(prop.name, prop.numeric, params, prop.casei)

    def build(node) -> str:
        if isinstance(node, Literal):
            return "1" if node.value else "0"
        if isinstance(node, Logic):
            return "(" + f" {node.op.upper()} ".join(build(a) for a in node.args) + ")"
        if isinstance(node, Not):
            return f"(NOT {build(node.arg)})"
        if isinstance(node, IsNull):
            path = "$." + json.dumps(node.name)
            params.append(path)
            return "(coalesce(json_type(f.props, ?), 'null') = 'null')"
        if isinstance(node, IsBool):
            params.append("$." + json.dumps(node.name))
            return f"(json_type(f.props, ?) = '{'true' if node.value else 'false'}')"
        if isinstance(node, Intersects):
            minx, miny, maxx, maxy = node.bounds
            params.extend([maxx, minx, maxy, miny, node.wkb])
            return ("(f.minx IS NOT NULL AND f.minx <= ? AND f.maxx >= ? AND f.miny <= ? AND f.maxy >= ? "
                    "AND gridmap_intersects(f.geom, ?))")
        left = value(node.prop)
        if isinstance(node, Compare):
            params.append(node.value)
            return f"({left} {node.op} ?)"
        if isinstance(node, Between):
            params.extend([node.low, node.high])
            return f"({left} BETWEEN ? AND ?)"
        if isinstance(node, In):
            params.extend(node.values)
            return f"({left} IN ({', '.join('?' * len(node.values))}))"
        if isinstance(node, Like):
            params.append(like_glob(node.pattern))
            return f"({left} GLOB ?)"
        raise TypeError(node)

    return build(flt.node), params


def sqlite_order(sortby) -> tuple[str, list]:
    """ORDER BY terms for ``sortby`` (before the key), and their parameters."""
    terms, params = [], []
    for name, descending, numeric in sortby:
        terms.append(_sqlite_value(name, numeric, params) + (" DESC" if descending else ""))
    return "".join(t + ", " for t in terms), params


def _sqlite_value(name: str, numeric: bool, params: list, casei: bool = False) -> str:
    """A property's value in SQLite: a number field's as stored (the schema's number fields are written as
    JSON numbers or null), a text field's only when it is text (each JSON parse costs: one where it can)."""
    path = "$." + json.dumps(name)
    if numeric:
        params.append(path)
        return "json_extract(f.props, ?)"
    params.extend([path, path])
    sql = "(CASE WHEN json_type(f.props, ?) = 'text' THEN json_extract(f.props, ?) END)"
    return f"gridmap_lower({sql})" if casei else sql


@functools.lru_cache(maxsize=32)
def _prepared(wkb: bytes):
    geom = shapely.from_wkb(wkb)
    shapely.prepare(geom)
    return geom


def sqlite_intersects(feature_wkb: bytes | None, wkb: bytes) -> int:
    """``gridmap_intersects`` for SQLite: the feature's stored WKB against the filter's geometry."""
    if feature_wkb is None:
        return 0
    return int(shapely.intersects(_prepared(wkb), shapely.from_wkb(feature_wkb)))


def sqlite_lower(value):
    """``gridmap_lower`` for SQLite: Python's lower() (SQLite's own knows only ASCII)."""
    return value.lower() if isinstance(value, str) else value


def postgis_where(flt: Filter) -> tuple[str, list]:
    """The filter as a PostgreSQL condition on ``features f`` (``f.props`` jsonb, ``f.geom`` SRID 4326)."""
    params: list = []

    def value(prop: Prop) -> str:
        if prop.numeric:
            params.extend([prop.name, prop.name])
            return "(CASE WHEN jsonb_typeof(f.props -> %s) = 'number' THEN (f.props ->> %s)::float8 END)"
        params.extend([prop.name, prop.name])
        sql = "(CASE WHEN jsonb_typeof(f.props -> %s) = 'string' THEN f.props ->> %s END)"
        return f'(lower({sql}) COLLATE "C")' if prop.casei else f'({sql} COLLATE "C")'

    def build(node) -> str:
        if isinstance(node, Literal):
            return "true" if node.value else "false"
        if isinstance(node, Logic):
            return "(" + f" {node.op.upper()} ".join(build(a) for a in node.args) + ")"
        if isinstance(node, Not):
            return f"(NOT {build(node.arg)})"
        if isinstance(node, IsNull):
            params.append(node.name)
            return "(coalesce(jsonb_typeof(f.props -> %s), 'null') = 'null')"
        if isinstance(node, IsBool):
            params.append(node.name)
            return f"((f.props -> %s) = '{'true' if node.value else 'false'}'::jsonb)"
        if isinstance(node, Intersects):
            params.append(node.wkb)
            return "(f.geom IS NOT NULL AND ST_Intersects(f.geom, ST_GeomFromWKB(%s, 4326)))"
        left = value(node.prop)
        cast = "::float8" if node.prop.numeric else "::text"
        if isinstance(node, Compare):
            params.append(node.value)
            return f"({left} {node.op} %s{cast})"
        if isinstance(node, Between):
            params.extend([node.low, node.high])
            return f"({left} BETWEEN %s{cast} AND %s{cast})"
        if isinstance(node, In):
            params.append(list(node.values))
            return f"({left} = ANY(%s{cast}[]))"
        if isinstance(node, Like):
            params.append(node.pattern)
            return f"({left} LIKE %s::text)"
        raise TypeError(node)

    return build(flt.node), params


def postgis_order(sortby) -> tuple[str, list]:
    terms, params = [], []
    for name, descending, numeric in sortby:
        if numeric:
            sql = "(CASE WHEN jsonb_typeof(f.props -> %s) = 'number' THEN (f.props ->> %s)::float8 END)"
        else:
            sql = '((CASE WHEN jsonb_typeof(f.props -> %s) = \'string\' THEN f.props ->> %s END) COLLATE "C")'
        terms.append(sql + (" DESC NULLS LAST" if descending else " ASC NULLS FIRST"))
        params += [name, name]
    return "".join(t + ", " for t in terms), params
