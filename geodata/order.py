"""Administrative order: how every list of districts, streets and communities is ordered.

Districts follow their ``adcode`` (the districts layer's national code: 海曙区 330203 before
江北区 330205), and cities their districts' first one. Streets and communities follow the codes of their grids: a grid_id such as
``330203-01-001-01`` (district, street, community, grid) puts a street or community where its
first grid is; ids without such codes still give a stable order. Names break the remaining ties.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from .unitkeys import CITY, LEVELS, has_cities, key_table
_DIGITS = re.compile(r"(\d+)")


def natural_key(value) -> tuple:
    """``"G2"`` before ``"G10"``: digit runs compare as numbers, the rest as text."""
    return tuple([(0, int(part), "") if part.isdigit() else (1, 0, part)
                  for part in _DIGITS.split("" if value is None else str(value)) if part])


def natural_order(values) -> np.ndarray:
    """The positions of ``values`` sorted as by ``natural_key`` (stable), for many values at once.

    Each digit run becomes a NUL and the run zero-padded to the longest value's length: NUL sorts
    before any other character (a number before text, as ``natural_key`` has it) and equal widths
    compare as numbers, so one string sort gives the order that sorting tuples took 3× as long for.
    """
    texts = ["" if v is None else str(v) for v in values]
    if not texts:
        return np.array([], dtype=np.intp)
    width = max(map(len, texts))

    def pad(match: re.Match) -> str:
        return "\0" + match.group().zfill(width)

    return np.argsort(np.array([_DIGITS.sub(pad, t) for t in texts]), kind="stable")


def adcodes(districts: pd.DataFrame | None) -> dict:
    """District name -> adcode from a districts layer (empty when there is none or it has no codes).

    A layer that names cities also gives (city, name) -> adcode (two cities may both have a 市辖区)
    and (city,) -> its districts' first adcode, which orders the cities.
    """
    if districts is None or districts.empty or "adcode" not in districts.columns:
        return {}
    codes: dict = {name: code for name, code in zip(districts["name"], districts["adcode"])
                   if isinstance(name, str) and isinstance(code, str) and code}
    if has_cities(districts):
        for city, name, code in zip(districts[CITY], districts["name"], districts["adcode"]):
            if isinstance(city, str) and city and isinstance(name, str) and isinstance(code, str) and code:
                codes[(city, name)] = code
                codes[(city,)] = min(codes.get((city,), code), code, key=natural_key)
    return codes


def admin_order(frame: pd.DataFrame, grids: pd.DataFrame, codes: Mapping | None = None) -> pd.DataFrame:
    """``frame``'s rows (one unit each, named by its city / district / street / community columns) in
    administrative order.

    ``grids`` are the grids the units are made of (with ``grid_id`` and the unit columns);
    ``codes`` maps district names to adcodes (see ``adcodes``). The index is kept.

    Examples
    --------
    >>> admin_order(summary, coverage, adcodes(districts))["district"].tolist()[:2]  # doctest: +SKIP
    ['海曙区', '江北区']
    """
    return orderer(grids, codes)(frame)


def _key_columns(frame: pd.DataFrame, cities: bool) -> list[str]:
    """The unit columns ``frame`` has, from the top: its city (when there are cities), district, …"""
    return [CITY] * (cities and CITY in frame.columns) + list(itertools.takewhile(frame.columns.__contains__, LEVELS))


def orderer(grids: pd.DataFrame, codes: Mapping | None = None) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``admin_order`` over the same grids for many frames: the grids are ranked once."""
    codes = codes or {}
    cities = has_cities(grids)
    columns = _key_columns(grids, cities)
    first_grid: dict[tuple, int] = {}  # unit (its names down to its level) -> rank of its first grid
    if not grids.empty and "grid_id" in grids.columns and columns:
        table = key_table(grids, columns).reset_index(drop=True)
        rank = np.empty(len(table), dtype=np.int64)
        rank[natural_order(grids["grid_id"].to_numpy(dtype=object))] = np.arange(len(table))
        table["rank"] = rank
        for depth in range(1, len(columns) + 1):  # a unit's rank is its first grid's: grouped, not looped
            first = table.groupby(columns[:depth], sort=False, dropna=False)["rank"].min()
            units = first.index if depth > 1 else ((name,) for name in first.index)
            first_grid.update(zip(map(tuple, units), first.to_numpy().tolist()))
    district_depth = 2 if cities else 1

    @functools.cache  # a district's key serves all its streets and communities
    def level_key(unit: tuple) -> tuple:
        name = unit[-1]
        code = codes.get(unit) if len(unit) <= district_depth else None
        if code is None and len(unit) == district_depth:
            code = codes.get(name)
        if code is not None:
            return 0, natural_key(code), 0, natural_key(name)
        return 1, (), first_grid.get(unit, math.inf), natural_key(name)

    def order(frame: pd.DataFrame) -> pd.DataFrame:
        keys = _key_columns(frame, cities)
        if not keys or len(frame) < 2:
            return frame
        units = [tuple(u) for u in key_table(frame, keys).to_numpy()]
        at = sorted(range(len(units)), key=lambda i: tuple(level_key(units[i][:d]) for d in range(1, len(keys) + 1)))
        return frame.iloc[at]

    return order
