"""What changed between two versions of a layer: keys added, removed, and changed (fields, shape, area)."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .crs import metric_crs

STATUSES = ("added", "removed", "changed")


@dataclass(frozen=True, eq=False)
class Diff:
    added: list[str]
    removed: list[str]
    changed: list[dict]  # {key, fields: [...], geometry: bool, area_delta_m2}
    features: gpd.GeoDataFrame  # key, status, fields, area_delta_m2; the new shape (the old one if removed)

    def to_dict(self) -> dict:
        return {"added": self.added, "removed": self.removed, "changed": self.changed,
                "counts": {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}}


def diff(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame, key: str) -> Diff:
    """Compare two versions feature by feature, matching them by ``key``.

    Examples
    --------
    >>> d = diff(store.read("grids", 1), store.read("grids", 2), "grid_id")  # doctest: +SKIP
    >>> d.to_dict()["counts"]  # doctest: +SKIP
    {'added': 3, 'removed': 1, 'changed': 12}
    """
    old_i, new_i = old.set_index(old[key].astype(str)), new.set_index(new[key].astype(str))
    added = new_i.index.difference(old_i.index, sort=False)
    removed = old_i.index.difference(new_i.index, sort=False)
    common = new_i.index.intersection(old_i.index, sort=False)
    a, b = old_i.loc[common], new_i.loc[common]

    columns = [c for c in dict.fromkeys([*a.columns, *b.columns]) if c not in (old.geometry.name, new.geometry.name)]
    changed_fields = {c: ~_same(a[c] if c in a else None, b[c] if c in b else None, len(common)) for c in columns}
    moved = ~shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0)
    delta = np.zeros(len(common))
    if moved.any():
        crs = metric_crs(new)
        delta[moved] = b.geometry[moved].to_crs(crs).area.to_numpy() - a.geometry[moved].to_crs(crs).area.to_numpy()

    changed = []
    for i, k in enumerate(common):
        fields = [c for c in columns if changed_fields[c][i]]
        if fields or moved[i]:
            changed.append({"key": k, "fields": fields, "geometry": bool(moved[i]),
                            "area_delta_m2": round(float(delta[i]), 1)})
    return Diff(list(added), list(removed), changed, _features(old_i, new_i, added, removed, changed))


def _same(a: pd.Series | None, b: pd.Series | None, n: int) -> np.ndarray:
    """Element-wise equality where two nulls are equal and a missing column is all nulls."""
    if a is None or b is None:
        other = b if a is None else a
        return other.isna().to_numpy()
    a, b = a.astype(object).to_numpy(), b.astype(object).to_numpy()
    return np.array([_equal(x, y) for x, y in zip(a, b)], dtype=bool)


def _equal(x, y) -> bool:
    if isinstance(x, (list, dict)) or isinstance(y, (list, dict)):  # nested properties kept from uploads
        return x == y
    return bool(pd.isna(x) and pd.isna(y)) or bool(x == y)


def _features(old_i, new_i, added, removed, changed) -> gpd.GeoDataFrame:
    rows = [{"key": k, "status": "added", "fields": "", "area_delta_m2": None} for k in added]
    rows += [{"key": k, "status": "removed", "fields": "", "area_delta_m2": None} for k in removed]
    rows += [{"key": c["key"], "status": "changed", "fields": ", ".join(c["fields"] + (["geometry"] if c["geometry"]
                                                                                      else [])),
              "area_delta_m2": c["area_delta_m2"]} for c in changed]
    # by label, vectorised: a lookup a key costs seconds when a replace removes thousands
    geoms = [*new_i.geometry.loc[added], *old_i.geometry.loc[removed],
             *new_i.geometry.loc[[c["key"] for c in changed]]]
    return gpd.GeoDataFrame(rows, columns=["key", "status", "fields", "area_delta_m2"], geometry=geoms,
                            crs="EPSG:4326")
