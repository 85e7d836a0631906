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

    Each digit run becomes a NUL and the run zero-padded to the longest run: NUL sorts before any
    other character (a number before text, as ``natural_key`` has it) and equal widths compare as
    numbers, so one string sort gives the order that sorting tuples took 3× as long for. ASCII
    values are padded as a byte array in numpy (10× quicker than a regex a value); others one by one.
    """
    texts = ["" if v is None else str(v) for v in values]
    if not texts:
        return np.array([], dtype=np.intp)
    joined = "".join(texts)
    if joined.isascii() and "\0" not in joined:
        return _ascii_padded_order(texts)
    return _padded_order(texts)


def _ascii_padded_order(texts: list[str]) -> np.ndarray:
    """``_padded_order`` of ASCII texts without a NUL, built as one byte array."""
    raw = np.array(texts, dtype="S")
    n, size = len(raw), raw.dtype.itemsize
    chars = raw.view(np.uint8).reshape(n, size)  # a shorter text ends in NULs
    digit = (chars >= ord("0")) & (chars <= ord("9"))
    starts = digit & ~np.pad(digit, ((0, 0), (1, 0)))[:, :-1]
    if not starts.any():
        return np.argsort(raw, kind="stable")
    run = np.cumsum(starts.ravel()) - 1  # each character's digit run (where it is a digit)
    lengths = np.bincount(run[digit.ravel()])
    width = lengths.max()
    # every run moves what follows it by its NUL and its padding
    shift = np.zeros(n * size, dtype=np.int64)
    shift[starts.ravel()] = 1 + width - lengths
    shift = np.cumsum(shift.reshape(n, size), axis=1)
    at = np.arange(size) + shift  # where each character goes
    padded = np.zeros((n, at[:, -1].max() + 1), dtype=np.uint8)
    np.put_along_axis(padded, at, chars, axis=1)
    rows, first = np.nonzero(starts)
    pads = (width - lengths).astype(np.int64)  # run k's zeros go just before its first digit
    begin = np.repeat(at[rows, first] - pads, pads)
    offset = np.arange(pads.sum()) - np.repeat(np.cumsum(pads) - pads, pads)
    padded[np.repeat(rows, pads), begin + offset] = ord("0")
    return np.argsort(padded.view(f"S{padded.shape[1]}").ravel(), kind="stable")


def _padded_order(texts: list[str]) -> np.ndarray:
    """``natural_order`` by padded strings, built one by one (each digit run padded to the longest text)."""
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
        # a unit's rank is its first grid's: the grids grouped once into the smallest units, those
        # into the larger ones (a few thousand rows, not every grid again)
        first = table.groupby(columns, sort=False, dropna=False)["rank"].min().reset_index()
        for depth in range(len(columns), 0, -1):
            if depth < len(columns):
                first = first.groupby(columns[:depth], sort=False, dropna=False)["rank"].min().reset_index()
            units = first[columns[:depth]].to_numpy(dtype=object)
            first_grid.update(zip(map(tuple, units), first["rank"].to_numpy().tolist()))
    district_depth = 2 if cities else 1

    @functools.cache  # a district's key serves all its streets and communities
    def level_key(unit: tuple) -> tuple:
        name = unit[-1]
        code = codes.get(unit) if len(unit) <= district_depth else None
        if code is None and len(unit) == district_depth:
            code = codes.get(name)
        if code is not None:
            return 0, natural_key(code), 0, natural_key(name)
        rank = first_grid.get(unit, math.inf)
        # units of grids never share a first grid: the name breaks ties only between units without grids
        return 1, (), rank, natural_key(name) if rank == math.inf else ()

    def order(frame: pd.DataFrame) -> pd.DataFrame:
        keys = _key_columns(frame, cities)
        if not keys or len(frame) < 2:
            return frame
        units = [tuple(u) for u in key_table(frame, keys).to_numpy()]
        # sorting by the tuple of every level's key, done as one stable lexsort of each level's rank
        # among that level's distinct units (equal keys, equal ranks): the same order, sorted per unit, not per row
        ranks = []
        for depth in range(1, len(keys) + 1):
            prefixes: dict[tuple, int] = {}
            at = np.array([prefixes.setdefault(u[:depth], len(prefixes)) for u in units])
            level_keys = [level_key(p) for p in prefixes]
            ranked = sorted(range(len(level_keys)), key=level_keys.__getitem__)
            rank = np.empty(len(level_keys), dtype=np.int64)
            dense = 0
            for i, k in enumerate(ranked):
                dense += i > 0 and level_keys[k] != level_keys[ranked[i - 1]]
                rank[k] = dense
            ranks.append(rank[at])
        return frame.iloc[np.lexsort(ranks[::-1])]

    return order
