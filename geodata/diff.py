"""What changed between two versions of a layer: keys added, removed, changed (fields, shape, area) and unchanged.

A shape counts as changed only when it differs by at least ``TOLERANCE_M`` (1 cm) in the
layer's metric CRS, after ``shapely.normalize`` (a ring that starts at another vertex or
runs the other way is the same ring): coordinates that round-trip through GeoJSON or a
shapefile move by up to ~1e-7° (about 1 cm), and that is noise, not an edit.  Field values
differ only when they really do: None, NaN and a missing column are all "no value", and
3 equals 3.0.
"""

from __future__ import annotations

import operator

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .crs import metric_crs

STATUSES = ("added", "removed", "changed")
TOLERANCE_M = 0.01  # below this a vertex has not moved: GeoJSON's ~1e-7° round trip is ~1 cm
SHAPE_CHANGES = ("moved", "reshaped")  # a changed geometry: the same shape shifted, or a different shape


@dataclass(frozen=True, eq=False)
class Diff:
    added: list[str]
    removed: list[str]
    changed: list[dict]  # {key, fields: [...], geometry: bool, geometry_change: moved|reshaped|None, area_delta_m2}
    unchanged: list[str]
    features: gpd.GeoDataFrame  # key, status, fields, area_delta_m2; the new shape (the old one if removed)

    def to_dict(self) -> dict:
        return {"added": self.added, "removed": self.removed, "changed": self.changed,
                "counts": {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed),
                           "unchanged": len(self.unchanged)}}


def diff(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame, key: str) -> Diff:
    """Compare two versions feature by feature, matching them by ``key``.

    Examples
    --------
    >>> d = diff(store.read("grids", 1), store.read("grids", 2), "grid_id")  # doctest: +SKIP
    >>> d.to_dict()["counts"]  # doctest: +SKIP
    {'added': 3, 'removed': 1, 'changed': 12, 'unchanged': 8483}
    """
    old_i, new_i = old.set_index(old[key].astype(str)), new.set_index(new[key].astype(str))
    added = new_i.index.difference(old_i.index, sort=False)
    removed = old_i.index.difference(new_i.index, sort=False)
    common = new_i.index.intersection(old_i.index, sort=False)
    a, b = old_i.loc[common], new_i.loc[common]

    columns = [c for c in dict.fromkeys([*a.columns, *b.columns]) if c not in (old.geometry.name, new.geometry.name)]
    changed_fields = {c: ~_same(a[c] if c in a else None, b[c] if c in b else None) for c in columns}
    shape, delta = _shape_changes(a.geometry, b.geometry, new if len(new) else old)

    changed, unchanged = [], []
    for i, k in enumerate(common):
        fields = [c for c in columns if changed_fields[c][i]]
        if fields or shape[i]:
            changed.append({"key": k, "fields": fields, "geometry": bool(shape[i]),
                            "geometry_change": shape[i] or None,
                            "area_delta_m2": round(float(delta[i]), 1) + 0.0})  # + 0.0: never "-0.0"
        else:
            unchanged.append(k)
    return Diff(list(added), list(removed), changed, unchanged, _features(old_i, new_i, added, removed, changed))


def _shape_changes(a: gpd.GeoSeries, b: gpd.GeoSeries, like: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: "" (the same shape within 1 cm), "moved" or "reshaped"; and the change of area in m²."""
    shape = np.full(len(a), "", dtype=object)
    delta = np.zeros(len(a))
    ga, gb = np.asarray(a.values, dtype=object), np.asarray(b.values, dtype=object)
    missing_a, missing_b = shapely.is_missing(ga) | shapely.is_empty(ga), shapely.is_missing(gb) | shapely.is_empty(gb)
    shape[missing_a != missing_b] = "reshaped"  # a shape that appeared or went
    # the fast path: identical coordinates, as when neither version was touched (no projection needed)
    todo = ~missing_a & ~missing_b & ~shapely.equals_exact(ga, gb, tolerance=0)
    if not todo.any():
        return shape, delta
    crs = metric_crs(like)
    ma = shapely.normalize(np.asarray(a[todo].to_crs(crs).values, dtype=object))
    mb = shapely.normalize(np.asarray(b[todo].to_crs(crs).values, dtype=object))
    differs = ~_within_tolerance(ma, mb)
    idx = np.flatnonzero(todo)[differs]
    ma, mb = ma[differs], mb[differs]
    delta[idx] = shapely.area(mb) - shapely.area(ma)
    # the same shape shifted: the same area (as reported, to 0.1 m²), and the old one moved by the
    # centroids' offset lies on the new one
    offset = shapely.get_coordinates(shapely.centroid(mb)) - shapely.get_coordinates(shapely.centroid(ma))
    moved = (np.round(delta[idx], 1) == 0) & _within_tolerance(_translated(ma, offset), mb)
    shape[idx] = np.where(moved, "moved", "reshaped")
    return shape, delta


def _within_tolerance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised metric shapes whose vertices lie within 1 cm of each other's lines."""
    same = shapely.equals_exact(a, b, tolerance=TOLERANCE_M)
    rest = ~same  # another vertex count (a point added on an edge, a duplicate dropped): the distance decides
    if rest.any():
        same[rest] = shapely.hausdorff_distance(a[rest], b[rest]) < TOLERANCE_M
    return same


def _translated(geoms: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Each geometry shifted by its own (dx, dy)."""
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    return shapely.set_coordinates(geoms.copy(), coords + offset[index])


def _same(a: pd.Series | None, b: pd.Series | None) -> np.ndarray:
    """Element-wise equality where None, NaN and pd.NA are all "no value" and a missing column is all of them."""
    if a is None or b is None:
        other = b if a is None else a
        return other.isna().to_numpy()
    null_a, null_b = a.isna().to_numpy(), b.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b) \
            and not pd.api.types.is_bool_dtype(a) and not pd.api.types.is_bool_dtype(b):
        # 3 (Int64) and 3.0 (float64) are one value
        equal = (a.astype("Float64") == b.astype("Float64")).fillna(False).to_numpy(dtype=bool)
    else:
        equal = _equal_objects(a.astype(object).to_numpy(), b.astype(object).to_numpy(), null_a | null_b)
    return (null_a & null_b) | (~null_a & ~null_b & equal)


_EQ = np.frompyfunc(operator.eq, 2, 1)


def _equal_objects(a: np.ndarray, b: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``_equal`` element-wise, in numpy's loop where the values are plain (a province's 85,000 rows
    a column in a fraction of a second); pairs with a null in them are left to the caller."""
    a, b = a.copy(), b.copy()
    a[null], b[null] = None, None  # pd.NA compares to nothing: keep it out of ==
    try:
        return _EQ(a, b).astype(bool)
    except (TypeError, ValueError):  # an == that is not one truth value (arrays kept from an upload)
        return np.array([_equal(x, y) for x, y in zip(a, b)], dtype=bool)


def _equal(x, y) -> bool:
    """Two values (not both null) are one: 3 == 3.0, a list is compared whole, pd.NA is unequal to anything."""
    if isinstance(x, (list, dict)) or isinstance(y, (list, dict)):  # nested properties kept from uploads
        return x == y
    if _isnull(x) or _isnull(y):
        return False
    return bool(x == y)


def _isnull(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value))


def _features(old_i, new_i, added, removed, changed) -> gpd.GeoDataFrame:
    rows = [{"key": k, "status": "added", "fields": "", "geometry_change": None, "area_delta_m2": None}
            for k in added]
    rows += [{"key": k, "status": "removed", "fields": "", "geometry_change": None, "area_delta_m2": None}
             for k in removed]
    rows += [{"key": c["key"], "status": "changed",
              "fields": ", ".join(c["fields"] + (["geometry"] if c["geometry"] else [])),
              "geometry_change": c["geometry_change"], "area_delta_m2": c["area_delta_m2"]} for c in changed]
    # by label, vectorised: a lookup a key costs seconds when a replace removes thousands
    geoms = [*new_i.geometry.loc[added], *old_i.geometry.loc[removed],
             *new_i.geometry.loc[[c["key"] for c in changed]]]
    return gpd.GeoDataFrame(rows, columns=["key", "status", "fields", "geometry_change", "area_delta_m2"],
                            geometry=geoms, crs="EPSG:4326")
