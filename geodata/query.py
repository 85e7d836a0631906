"""Feature queries for the items and download routes: filters, bbox, paging.

A ``FeatureSet`` is built once per layer version and answers every request
for it from memory: a spatial index for ``bbox`` and features serialised once,
so a page of 100 features is a join of 100 strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import cql, geojson
from .crs import CRS84_URI, bbox_to_crs84, output_crs
from .errors import BadRequest, NotFound
from .i18n import says
from .params import whole_number
from .schema import Layer

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
# OGC API - Features Part 3 (filter), sorting and property selection: parsed here, not property filters
CQL_PARAMS = {"filter", "filter-lang", "filter-crs", "sortby", "properties", "skipGeometry"}
RESERVED_PARAMS = {"bbox", "limit", "offset", "f", "bbox-crs", "crs", "version", *CQL_PARAMS}
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class Query:
    """A parsed items request: everything but ``limit``/``offset`` selects features."""

    bbox: tuple[float, float, float, float] | None = None
    filters: tuple[tuple[str, str], ...] = ()
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    where: cql.Filter | None = None  # ?filter= (CQL2)
    sortby: tuple[tuple[str, bool, bool], ...] = ()  # (property, descending, numeric)
    properties: tuple[str, ...] | None = None  # only these properties in the answer (None: all)
    skip_geometry: bool = False

    @classmethod
    def from_params(cls, params: dict[str, str], columns, max_limit: int = MAX_LIMIT,
                    layer: Layer | None = None) -> "Query":
        """Parse request parameters; BadRequest with a useful message for any bad one.  ``layer`` types
        the properties of ``filter`` and ``sortby`` (without it they are text)."""
        filters, flags = [], []
        for name, value in params.items():
            if name in RESERVED_PARAMS:
                continue
            if name not in columns:
                raise BadRequest(says("error.unknown_filter", name=name, columns=", ".join(columns)))
            if layer is not None and (spec := layer.field(name)) is not None and spec.kind == "boolean":
                flags.append(_flag_filter(name, value, spec.default))  # stored as JSON true/false, not text
                continue
            filters.append((name, value))
        bbox_crs = output_crs(params.get("bbox-crs"), "bbox-crs")  # checked with or without a bbox
        layer = layer or Layer("", "", "", ())
        if "filter" not in params and ("filter-lang" in params or "filter-crs" in params):
            raise BadRequest(says("query.filter_alone"))
        return cls(
            bbox=parse_bbox(params["bbox"], bbox_crs) if "bbox" in params else None,
            filters=tuple(filters),
            limit=_parse_int(params, "limit", DEFAULT_LIMIT, minimum=1, maximum=max_limit, clamp=True),
            offset=_parse_int(params, "offset", 0, minimum=0),
            where=_and(flags, cql.parse(params["filter"], params.get("filter-lang"), params.get("filter-crs"), layer,
                                        columns) if "filter" in params else None),
            sortby=cql.parse_sortby(params["sortby"], layer, columns) if "sortby" in params else (),
            properties=cql.parse_properties(params["properties"], columns) if "properties" in params else None,
            skip_geometry=_parse_flag(params, "skipGeometry"),
        )

    @property
    def selects_all(self) -> bool:
        return self.bbox is None and not self.filters and self.where is None and not self.sortby

    def shown(self, texts: list[str]) -> list[str]:
        """The feature texts as asked: ``properties`` and ``skipGeometry`` applied."""
        return cql.select_properties(texts, self.properties, self.skip_geometry)


def _flag_filter(name: str, raw: str, default) -> cql.Filter:
    """``?walkable=true``: the features whose ``name`` is true (or blank, when blank means true), as a filter."""
    if raw.lower() not in TRUE + FALSE:
        raise BadRequest(says("query.flag", name=name, value=repr(raw)))
    value = raw.lower() in TRUE
    node = cql.IsBool(name, value)
    if default is value:  # a blank value stands for the default
        node = cql.Logic("or", (node, cql.IsNull(name)))
    return cql.Filter(node, f"{name}={str(value).lower()}")


def _and(flags: list, where):
    """The item filters of true/false properties and the ``filter``, all of them."""
    parts = [*flags, *([where] if where is not None else [])]
    if len(parts) <= 1:
        return parts[0] if parts else None
    return cql.Filter(cql.Logic("and", tuple(p.node for p in parts)), " AND ".join(f"({p.text})" for p in parts))


def _parse_flag(params, name: str) -> bool:
    raw = params.get(name)
    if raw is None or raw.lower() in FALSE:
        return False
    if raw.lower() in TRUE:
        return True
    raise BadRequest(says("query.flag", name=name, value=repr(raw)))


def _parse_int(params, name, default, minimum, maximum=None, clamp=False) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    value = whole_number(raw, name, minimum=minimum, maximum=None if clamp else maximum)
    if maximum is not None and value > maximum:
        value = maximum  # OGC API: a server may return fewer than asked
    return value


def parse_bbox(raw: str, crs: str = CRS84_URI) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` (or the 6-number 3D form) in ``crs`` (a ``bbox-crs``, in its axis order;
    default CRS84 lon/lat) as a CRS84 box; BadRequest otherwise."""
    parts = raw.split(",")
    form = "'minLon,minLat,maxLon,maxLat'" if crs == CRS84_URI else says("query.axis_order", crs=crs)
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BadRequest(says("query.bbox_numbers", form=form, value=repr(raw))) from None
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise BadRequest(says("query.bbox_numbers", form=form, value=repr(raw)))
    if crs != CRS84_URI:
        if values[0] > values[2] or values[1] > values[3]:
            raise BadRequest(says("query.bbox_min_max", value=repr(raw)))
        values = list(bbox_to_crs84(values, crs))
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise BadRequest(says("query.bbox_outside", value=repr(raw)))
    if minx > maxx:
        raise BadRequest(says("query.bbox_antimeridian", value=repr(raw)))
    return minx, miny, maxx, maxy


def selected_columns(frame: gpd.GeoDataFrame, query: Query) -> gpd.GeoDataFrame:
    """``frame`` with only the columns ``properties`` asks for (and its geometry)."""
    if query.properties is None:
        return frame
    return frame[[c for c in frame.columns if c in query.properties or c == frame.geometry.name]]


@dataclass(frozen=True)
class Page:
    features: list[str]
    number_matched: int
    offset: int
    limit: int

    @property
    def number_returned(self) -> int:
        return len(self.features)

    @property
    def has_next(self) -> bool:
        return self.offset + self.number_returned < self.number_matched


class FeatureSet:
    """An immutable layer version ready for queries."""

    def __init__(self, gdf: gpd.GeoDataFrame, layer: Layer):
        self.gdf = gdf
        self.layer = layer

    @cached_property
    def features(self) -> list[str]:
        return geojson.feature_strings(self.gdf, id_field=self.layer.key)

    @cached_property
    def _positions_by_key(self) -> dict[str, int]:
        return {str(k): i for i, k in enumerate(self.gdf[self.layer.key])}

    @cached_property
    def _tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.gdf.geometry.values)

    @cached_property
    def bounds(self) -> list[float] | None:
        """[minLon, minLat, maxLon, maxLat] of all features; None when there are none."""
        if self.gdf.empty:
            return None
        return [round(float(b), 6) for b in self.gdf.total_bounds]

    @property
    def count(self) -> int:
        return len(self.gdf)

    @cached_property
    def columns(self) -> list[str]:
        geometry = self.gdf.geometry.name
        return [c for c in self.gdf.columns if c != geometry]

    def feature(self, key: str) -> str:
        try:
            return self.features[self._positions_by_key[key]]
        except KeyError:
            raise NotFound(says("error.no_feature", key=key, layer=self.layer.name)) from None

    def select(self, query: Query) -> np.ndarray:
        """Row positions matching the query's bbox and filters, in layer order (or ``sortby``'s)."""
        mask = np.ones(len(self.gdf), dtype=bool)
        for name, raw in query.filters:
            mask &= self._equals(name, raw)
        if query.bbox is not None:
            hits = self._tree.query(shapely.box(*query.bbox), predicate="intersects")
            in_box = np.zeros(len(self.gdf), dtype=bool)
            in_box[hits] = True
            mask &= in_box
        if query.where is not None:
            mask &= cql.frame_mask(query.where, self.gdf)
        if query.sortby:
            order = cql.sort_frame(self.gdf, query.sortby)
            return order[mask[order]]
        return np.flatnonzero(mask)

    def page(self, query: Query) -> Page:
        if query.selects_all:
            matched = len(self.gdf)
            chosen = range(query.offset, min(matched, query.offset + query.limit))
        else:
            positions = self.select(query)
            matched = len(positions)
            chosen = positions[query.offset:query.offset + query.limit]
        features = self.features
        return Page(query.shown([features[i] for i in chosen]), matched, query.offset, query.limit)

    def frame(self, query: Query) -> gpd.GeoDataFrame:
        """The features the query selects, as a frame (for downloads in other formats)."""
        frame = self.gdf if query.selects_all else self.gdf.iloc[self.select(query)]
        return selected_columns(frame, query)

    def all(self, query: Query) -> list[str]:
        features = self.features
        return query.shown(features if query.selects_all else [features[i] for i in self.select(query)])

    def _equals(self, name: str, raw: str) -> np.ndarray:
        column = self.gdf[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            try:
                value = float(raw)
            except ValueError:
                raise BadRequest(says("query.not_number", name=name, value=repr(raw))) from None
            return (column.astype("Float64") == value).fillna(False).to_numpy(dtype=bool)
        return (column.astype(object).map(lambda v: None if v is None else str(v)) == raw).to_numpy(dtype=bool)
