"""Find grids, units and centres by code or (partial, short) name, each hit with its parents.

Built once per version of the grids, centres and districts (``SearchIndex.of``), then answered
in milliseconds at province scale: names and codes are kept sorted (exact and prefix matches by
bisection) and joined into one text (substrings found by ``str.find``, in C), never scanned row by
row in Python.  Hits rank: the exact code or name, then its short form (海曙 for 海曙区), then a
prefix, then any substring; within a rank, larger units first (a district before a community),
then by name.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace

import geopandas as gpd
import numpy as np
import pandas as pd

from .unitkeys import CITY, UNIT_KEYS, has_cities

KINDS = (*UNIT_KEYS, "grid", "center")  # larger first
# the endings a short form leaves off: 海曙区 → 海曙, 庄桥街道 → 庄桥, 桃苑社区 → 桃苑
SUFFIXES = ("街道", "社区", "网格", "中心", "市", "区", "县", "镇", "乡", "村")
EXACT, SHORT, PREFIX, PART = range(4)


@dataclass(frozen=True, slots=True)  # a province has 137,000 of them
class Hit:
    kind: str  # one of KINDS
    id: str  # the grid's or centre's key; a unit's names joined by "/" from the top
    name: str
    parents: tuple[str, ...]  # nearest first: community, street, district, city
    bbox: tuple[float, float, float, float]
    unit: tuple[tuple[str, str], ...] = ()  # a unit's (level, name) from the top, as /map?level=name takes them

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "id": self.id, "name": self.name, "parents": list(self.parents),
               "label": " · ".join([self.name, *self.parents]), "bbox": list(self.bbox)}
        if self.unit:
            out["unit"] = dict(self.unit)
        return out


def normalized(text: str) -> str:
    text = str(text)
    folded = "".join(text.split()).casefold()
    return text if folded == text else folded  # the same string kept once: Chinese names do not change


def short_form(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


class SearchIndex:
    def __init__(self, hits: list[Hit]):
        rank = {kind: i for i, kind in enumerate(KINDS)}
        ordered = sorted(hits, key=lambda h: (rank[h.kind], h.name, h.id))
        # kept lean (a province has 137,000): boxes in one array, parents shared by the hits that have them
        self._boxes = np.array([h.bbox for h in ordered], dtype=float).reshape(-1, 4)
        shared: dict[tuple, tuple] = {}
        self.hits = [replace(h, bbox=(), parents=shared.setdefault(h.parents, h.parents)) for h in ordered]
        del ordered
        names = [normalized(h.name) for h in self.hits]
        codes = [normalized(h.id) if h.kind in ("grid", "center") else None for h in self.hits]
        # (normalized text, position in self.hits), sorted: codes and names, and names' short forms
        self._terms = sorted([(c, i) for i, c in enumerate(codes) if c is not None]
                             + [(n, i) for i, n in enumerate(names)])
        self._shorts = sorted((short_form(n), i) for i, n in enumerate(names))
        # every name and code in one text, one line a hit: a substring is found by str.find
        lines = [n if c is None else f"{n}\t{c}" for n, c in zip(names, codes)]
        self._text = "\n".join(lines) + "\n"
        self._starts = np.cumsum([0] + [len(line) + 1 for line in lines[:-1]]) if lines else np.array([0])

    @classmethod
    def of(cls, grids: gpd.GeoDataFrame, centers: gpd.GeoDataFrame | None = None) -> "SearchIndex":
        """Every grid, centre and unit (dissolved from the grids' names, city when there is one)."""
        hits: list[Hit] = []
        if len(grids):
            # the schema gives every layer a city column: only one that names a city is a level
            levels = [lv for lv in UNIT_KEYS if lv in grids.columns and (lv != CITY or has_cities(grids))]
            bounds = pd.DataFrame(grids.geometry.bounds.to_numpy(), columns=["minx", "miny", "maxx", "maxy"])
            names = pd.DataFrame({lv: grids[lv].astype(object).where(grids[lv].notna(), None).to_numpy()
                                  for lv in levels})
            for depth, level in enumerate(levels):
                keys = levels[: depth + 1]
                table = pd.concat([names[keys], bounds], axis=1).dropna(subset=keys)
                units = table.groupby(keys, sort=False).agg(minx=("minx", "min"), miny=("miny", "min"),
                                                            maxx=("maxx", "max"), maxy=("maxy", "max"))
                for key, box in zip(units.index, units.itertuples(index=False)):
                    key = key if isinstance(key, tuple) else (key,)
                    hits.append(Hit(level, "/".join(map(str, key)), str(key[-1]),
                                    tuple(str(k) for k in reversed(key[:-1])), tuple(map(float, box)),
                                    tuple(zip(keys, map(str, key)))))
            ids, labels = grids["grid_id"].astype(str).tolist(), grids["name"].astype(str).tolist()
            above = zip(*(names[lv].tolist() for lv in reversed(levels)))
            for gid, name, parents, box in zip(ids, labels, above, bounds.to_numpy().tolist()):
                hits.append(Hit("grid", gid, name, tuple(str(p) for p in parents if p is not None), tuple(box)))
        if centers is not None and len(centers):
            levels = [lv for lv in UNIT_KEYS if lv in centers.columns]
            xy = np.column_stack([centers.geometry.x, centers.geometry.y])
            for i, row in enumerate(centers[["center_id", "name", *levels]].itertuples(index=False)):
                parents = tuple(str(v) for v in reversed(row[2:]) if isinstance(v, str) and v)
                x, y = map(float, xy[i])
                hits.append(Hit("center", str(row[0]), str(row[1]), parents, (x, y, x, y)))
        return cls(hits)

    def search(self, query: str, limit: int = 10) -> list[Hit]:
        q = normalized(query)
        if not q or limit <= 0:
            return []
        ranked: dict[int, int] = {}  # hit -> its best rank

        def take(position: int, rank: int) -> None:
            if ranked.get(position, PART + 1) > rank:
                ranked[position] = rank

        for terms, rank in ((self._terms, EXACT), (self._shorts, SHORT)):
            for text, position in _starting(terms, q):
                take(position, rank if text == q else PREFIX)
        start = 0
        while len(ranked) < limit * 4 + 50:  # enough substring hits to fill the answer after the better ones
            found = self._text.find(q, start)
            if found < 0:
                break
            line = int(np.searchsorted(self._starts, found, side="right")) - 1
            take(line, PART)
            start = int(self._starts[line + 1]) if line + 1 < len(self._starts) else len(self._text)
        best = sorted(ranked, key=lambda position: (ranked[position], position))  # positions follow KINDS, names
        return [replace(self.hits[i], bbox=tuple(map(float, self._boxes[i]))) for i in best[:limit]]


def _starting(terms: list[tuple[str, int]], prefix: str, most: int = 500) -> list[tuple[str, int]]:
    """The terms that start with ``prefix`` (at most ``most``: a one-character query matches thousands)."""
    start = bisect.bisect_left(terms, (prefix, -1))
    out = []
    for text, position in terms[start:start + most]:
        if not text.startswith(prefix):
            break
        out.append((text, position))
    return out
