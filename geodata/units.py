"""Streets and communities: the grids dissolved by their names, with roll-up counts."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from .coverage import UNIT_COLUMNS, merge_tiles

ROLLUP = ["grids", "population", "households", "party_members", "grid_workers", "covered_population"]


def dissolve(grids: gpd.GeoDataFrame, level: str) -> gpd.GeoDataFrame:
    """One feature per unit of ``level`` (``street`` or ``community``) with its grids' totals.

    Grids that tile their unit are merged with the fast coverage union; a unit
    whose grids overlap falls back to an exact union.

    Examples
    --------
    >>> streets = dissolve(coverage, "street")  # doctest: +SKIP
    >>> streets[["unit_id", "grids", "population", "covered_share"]].head(1)  # doctest: +SKIP
    """
    keys = UNIT_COLUMNS[level]
    columns = ["unit_id", *keys, *ROLLUP, "covered_share"]
    if grids.empty:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=grids.crs)
    table = pd.DataFrame({k: grids[k] for k in keys})
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
    return gpd.GeoDataFrame(totals[columns], geometry=shapes, crs=grids.crs)
