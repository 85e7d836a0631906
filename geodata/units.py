"""Streets and communities: the grids dissolved by their names, with roll-up counts."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from .coverage import merge_tiles
from .unitkeys import CITY, UNIT_KEYS, has_cities, key_table, shown_city, unit_columns

ROLLUP = ["grids", "population", "households", "party_members", "grid_workers", "covered_population"]


def dissolve(grids: gpd.GeoDataFrame, level: str, order: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """One feature per unit of ``level`` (``street`` or ``community``) with its grids' totals.

    A unit is its whole key: with cities, (city, district, street); the same street name in two
    districts or cities is two features. ``unit_id`` joins the key's names with '.'.

    The units come in the order of ``order``'s rows (e.g. the analysis' summary of ``level``,
    in administrative order) when given; units it does not name come last.

    Grids that tile their unit are merged with the fast coverage union; a unit
    whose grids overlap falls back to an exact union.

    Examples
    --------
    >>> streets = dissolve(coverage, "street")  # doctest: +SKIP
    >>> streets[["unit_id", "grids", "population", "covered_share"]].head(1)  # doctest: +SKIP
    """
    keys = unit_columns(level, has_cities(grids))
    columns = ["unit_id", *keys, *ROLLUP, "covered_share"]
    if grids.empty:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=grids.crs)
    table = key_table(grids, keys)
    for name in ROLLUP[1:]:
        values = grids[name] if name in grids.columns else pd.Series(np.nan, index=grids.index)
        table[name] = pd.to_numeric(values).astype("Float64")
    grouped = table.groupby(keys, sort=True)
    totals = grouped[ROLLUP[1:]].sum(min_count=1).round().astype("Int64")
    totals.insert(0, "grids", grouped.size())
    with np.errstate(invalid="ignore", divide="ignore"):
        totals["covered_share"] = (totals["covered_population"] / totals["population"].replace(0, pd.NA)).round(4)
    geoms = grids.geometry.values
    shapes = [merge_tiles(geoms[positions]) for positions in grouped.indices.values()]
    totals = totals.reset_index()
    totals.insert(0, "unit_id", totals[keys].astype(str).agg(".".join, axis=1))
    if CITY in keys:
        totals[CITY] = shown_city(totals[CITY])
    result = gpd.GeoDataFrame(totals[columns], geometry=shapes, crs=grids.crs)
    if order is None or order.empty or not set(keys) <= set(order.columns):
        return result
    rank = pd.Series(range(len(order)), index=pd.MultiIndex.from_frame(key_table(order, keys)))
    at = rank.reindex(pd.MultiIndex.from_frame(key_table(result, keys))).fillna(len(order)).to_numpy()
    return result.iloc[np.argsort(at, kind="stable")].reset_index(drop=True)


def unit_names(grids: pd.DataFrame, unit: dict[str, str]) -> list[str]:
    """The unit ``unit`` names, then each level above it, up to its city: what a unit's map is titled by.

    ``grids`` are the unit's own; a level the request left out is named when all of them share it
    (``{"district": "海曙区"}`` in Ningbo -> ``["海曙区", "宁波市"]``); when they do not (a name shared
    by two cities' districts), it is left out.

    Examples
    --------
    >>> import pandas as pd
    >>> grids = pd.DataFrame({"city": ["宁波市"] * 2, "district": ["海曙区"] * 2, "street": ["月湖街道", "白云街道"]})
    >>> unit_names(grids, {"district": "海曙区"})
    ['海曙区', '宁波市']
    """
    keys = UNIT_KEYS
    deepest = max(keys.index(k) for k in unit)
    names = []
    for key in reversed(keys[:deepest + 1]):
        if unit.get(key):
            names.append(unit[key])
        elif key in grids.columns:
            shared = grids[key].dropna().unique()
            if len(shared) == 1 and isinstance(shared[0], str) and shared[0].strip():
                names.append(shared[0])
    return names
