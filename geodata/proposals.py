"""What proposed centres would change where they stand: the city's, the district's and the street's
covered people and share, before and after, on one baseline (the analysis the summary serves).

A unit's what-if is the whole dataset's whenever the kept analysis can be updated; otherwise (walking
catchments) only the unit's grids are analysed (``jobs.whatif_summaries``). Every unit is made of whole
communities, so a unit's "after" is its "before" plus the change of each community analysed; communities
outside an analysed unit then count as unchanged.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .unitkeys import CITY, has_cities, unit_columns

SCOPES = ("city", "district", "street")


def site_units(grids: gpd.GeoDataFrame, points: list[tuple[float, float]]) -> list[dict]:
    """The unit names (city when the grids have one, district, street, community) of the grid each
    (lon, lat) stands in; ``{}`` for a point in no grid.

    Examples
    --------
    >>> site_units(grids, [(121.505, 29.805)])  # doctest: +SKIP
    [{'district': '海曙区', 'street': '月湖街道', 'community': '青石社区'}]
    """
    columns = unit_columns("community", has_cities(grids))
    found = [{} for _ in points]
    if grids.empty or not points:
        return found
    where = shapely.points(np.asarray(points, dtype=float))
    site, grid = grids.sindex.query(where, predicate="intersects")  # within, or on a shared edge
    names = grids[columns].astype(object).to_numpy()
    for s, g in zip(site[::-1], grid[::-1]):  # the first grid a point meets wins
        found[s] = {c: (v if isinstance(v, str) and v else None) for c, v in zip(columns, names[g])}
    return found


def effects(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame], sites: list[dict]) -> list[dict]:
    """For each city, district and street a site stands in (each once, cities first): its covered
    population and share before (``before``: the summaries of the analysis) and after (``after``: the
    what-if's summaries, of the whole data or of one unit's grids).

    Without cities in the data, the city is the whole dataset (``total``).
    """
    cities = CITY in before["community"].columns
    keys = unit_columns("community", cities)
    delta = _community_change(before["community"], after["community"], keys)
    rows, seen = [], set()
    for scope in SCOPES:
        columns = unit_columns(scope, cities)
        for site in sites:
            if scope != "city" and not site:
                continue  # a site in no grid: no district, no street
            if scope == "city" and cities and not site:
                continue
            names = tuple(site.get(c) for c in columns)
            if (scope, names) in seen:
                continue
            seen.add((scope, names))
            table = before["total"] if scope == "city" and not cities else before[scope]
            found = _select(table, dict(zip(columns, names)))
            if found.empty:
                continue
            population = int(found["population"].sum())
            covered = int(found["covered_population"].sum())
            change = int(delta[_select_mask(delta, dict(zip(columns, names)))]["change"].sum())
            rows.append({"level": scope, **{c: n for c, n in zip(unit_columns("street", cities), names)},
                         "population": population,
                         "before": _shared(covered, population), "after": _shared(covered + change, population)})
    return rows


def _shared(covered: int, population: int) -> dict:
    return {"covered_population": covered, "covered_share": round(covered / population, 4) if population else None}


def _community_change(before: pd.DataFrame, after: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Each analysed community's change in covered people (after − before), by its names."""
    def keyed(frame):  # (a unit's grids may name no city where the whole data does)
        table = frame.reindex(columns=keys).astype(object)
        table = table.where(table.notna(), "")
        table["covered"] = pd.to_numeric(frame["covered_population"]).fillna(0).astype(int)
        return table

    merged = keyed(after).merge(keyed(before), on=keys, how="left", suffixes=("_after", "_before"))
    merged["change"] = merged["covered_after"] - merged["covered_before"].fillna(merged["covered_after"]).astype(int)
    return merged[[*keys, "change"]]


def _select_mask(frame: pd.DataFrame, names: dict) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in names.items():
        values = frame[column].astype(object).where(frame[column].notna(), "")
        mask &= (values == (value or "")).to_numpy(dtype=bool)
    return mask


def _select(frame: pd.DataFrame, names: dict) -> pd.DataFrame:
    return frame[_select_mask(frame, names)] if names else frame
