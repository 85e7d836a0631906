"""Coverage over time: the covered share at each of the last versions of the data, for the whole
dataset and for one unit, so planners see whether the last changes helped.

A state of the data is the grids and centres (and roads, when catchments follow them) as they stood
after one upload or edit of any of them.  The covered share of an old state is computed when first
asked for (never at start or on upload), one job a state, and kept (``Store.shared``): at province
scale a state takes as long as the coverage part of an analysis.  Only the last ``LIMIT`` states are
offered.  The current state is the analysis the summary serves (one baseline).  Per state, only the
communities' covered people are kept, so any unit's share is a sum.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from .coverage import Params, catchments, covered_population, grid_coverage
from .crs import metric_crs
from .store.base import Version
from .unitkeys import CITY, NO_CITY, UNIT_KEYS, has_cities, key_table, unit_columns

LIMIT = 12  # states offered at most: each old one costs a coverage computation once
NUMBERS = ["population", "covered_population"]


@dataclass(frozen=True)
class State:
    """The data after one change: when, and the version of each layer then (None: not stored yet)."""

    time: str
    versions: dict[str, Version | None]

    def numbers(self) -> dict[str, int | None]:
        return {name: v.version if v else None for name, v in self.versions.items()}


def timeline(versions: dict[str, list[Version]], limit: int = LIMIT) -> tuple[list[State], int]:
    """The states of the data, oldest first, from each layer's versions: the last ``limit`` of those
    that have grids, and how many there are in all.

    Examples
    --------
    >>> states, total = timeline({"grids": store.versions("grids"), "centers": store.versions("centers")})  # doctest: +SKIP
    """
    # by time; within a second (times are kept to the second), grids before centres, each in its order
    events = sorted(((v.time, i, v.version, v) for i, found in enumerate(versions.values()) for v in found),
                    key=lambda e: e[:3])
    state = {name: None for name in versions}
    states = []
    for time, _, _, version in events:
        state[version.layer] = version
        if state.get("grids") is not None:
            states.append(State(time, dict(state)))
    return states[-limit:], len(states)


def community_table(grids: gpd.GeoDataFrame, centers: gpd.GeoDataFrame, params: Params,
                    roads: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """People and covered people by community (its whole key), measured as the analysis measures them."""
    keys = unit_columns("community", has_cities(grids))
    if grids.empty:
        return pd.DataFrame(columns=[*keys, *NUMBERS])
    crs = metric_crs(grids)
    centers_m = centers.to_crs(crs) if not centers.empty else centers
    roads_m = roads.to_crs(crs) if roads is not None and not roads.empty and params.catchment == "network" else None
    ratio, _ = grid_coverage(grids.geometry.to_crs(crs).values, catchments(centers_m, params, roads_m))
    table = key_table(grids, keys)
    table["population"] = pd.to_numeric(grids["population"]).astype("Float64").fillna(0).astype("int64")
    table["covered_population"] = covered_population(grids, ratio).fillna(0).astype("int64")
    return table.groupby(keys, sort=False, dropna=False)[NUMBERS].sum().reset_index()


def from_summary(community: pd.DataFrame) -> pd.DataFrame:
    """The same table from an analysis' community summary (the current state: the summary's own numbers)."""
    keys = [c for c in UNIT_KEYS if c in community.columns]
    table = community[keys].astype(object).copy()
    if CITY in table.columns:
        table[CITY] = table[CITY].where(table[CITY].notna(), NO_CITY)
    for name in NUMBERS:
        table[name] = pd.to_numeric(community[name]).fillna(0).astype("int64")
    return table


def share(table: pd.DataFrame, unit: dict[str, str] | None = None) -> dict:
    """Population, covered population and covered share of the whole table, or of ``unit``'s communities."""
    rows = table
    for column, value in (unit or {}).items():
        rows = rows[rows[column] == value] if column in rows.columns else rows.iloc[:0]
    population, covered = int(rows["population"].sum()), int(rows["covered_population"].sum())
    return {"population": population, "covered_population": covered,
            "covered_share": round(covered / population, 4) if population else None}


def to_bytes(table: pd.DataFrame) -> bytes:
    return table.to_json(orient="split", index=False, force_ascii=False).encode("utf-8")


def from_bytes(data: bytes) -> pd.DataFrame:
    body = json.loads(data)
    table = pd.DataFrame(body["data"], columns=body["columns"])
    for name in NUMBERS:
        table[name] = table[name].astype("int64")
    return table


def state_table(where, versions: dict[str, int | None], params: Params, key: str) -> bytes:
    """A job: the community table of the data at ``versions``, kept under ``key`` for every worker."""
    from .jobs import read_versions, store_at

    def build() -> bytes:
        grids, centers, *roads = read_versions(where, versions)
        return to_bytes(community_table(grids, centers, params, roads[0] if roads else None))

    return store_at(where).shared(key, build)


def coverage_history(catalog, unit: dict[str, str], limit: int = LIMIT, cache=None) -> dict:
    """The covered share of the whole dataset (and of ``unit``) at each of the last ``limit`` states,
    newest first.  ``cache(key, build)`` keeps old states' tables in this process (e.g. a VersionCache's get).

    Examples
    --------
    >>> coverage_history(catalog, {"district": "海曙区"}, 6)["points"][0]["unit"]  # doctest: +SKIP
    {'population': 512000, 'covered_population': 466000, 'covered_share': 0.9102}
    """
    from .catalog import analysis_inputs
    from .kept import code_digest

    params = catalog.params
    names = [name for name in analysis_inputs(params) if name != "districts"]  # tiling does not move the share
    states, total = timeline({name: catalog.store.versions(name) for name in names}, limit)
    current = {name: catalog.store.current(name) for name in names}
    points = []
    for state in reversed(states):
        if state.versions == current:  # the summary's own numbers
            table = from_summary(catalog.analysis(params).summaries["community"])
        else:
            tag = hashlib.sha256(repr(([state.versions[n].sha256 if state.versions[n] else None for n in names],
                                       params)).encode()).hexdigest()[:16]
            key = f"history/{code_digest()}/{tag}"

            def build(numbers=state.numbers(), key=key):
                return from_bytes(catalog._job(state_table, (numbers, params, key), ("history", key)))

            table = cache(key, build) if cache else build()
        points.append({"time": state.time, "versions": state.numbers(), "whole": share(table),
                       **({"unit": share(table, unit)} if unit else {})})
    return {"limit": limit, "states": total, "shown": len(points), "points": points}
