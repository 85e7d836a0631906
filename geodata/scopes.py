"""Area-scoped editors: the units an editor may change, and which features fall outside them.

A scope names one unit by its key, parents included as unit keys have them (``district=海曙区``,
or ``district=海曙区,street=月湖街道``; ``city=宁波市,district=海曙区`` where cities repeat district
names).  A feature is inside a scope when its own unit fields say so *and* its geometry lies in the
unit's area: a district's boundary from the districts layer; a street's or community's area, the
union of its grids as stored.  Roads carry no unit fields: they are inside by their geometry alone.
An editor with scopes may write only features inside one of them, before the change and after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from .errors import BadRequest, Forbidden
from .i18n import Says, says
from .schema import LAYERS
from .unitkeys import CITY, LEVELS, UNIT_KEYS

TOLERANCE_DEG = 1e-6  # about 0.1 m: a boundary drawn along the unit's edge is inside it


@dataclass(frozen=True)
class Scope:
    keys: tuple[tuple[str, str], ...]  # (level, name), from the top

    @property
    def level(self) -> str:
        return self.keys[-1][0]

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.keys)


def parse(text: str) -> Scope:
    """``district=海曙区`` or ``district=海曙区,street=月湖街道`` (BadRequest for anything else)."""
    pairs = []
    for part in str(text).split(","):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name not in UNIT_KEYS or not value:
            raise BadRequest(says("scope.pairs", levels=", ".join(UNIT_KEYS), value=repr(text)))
        pairs.append((name, value))
    levels = [name for name, _ in pairs]
    if len(set(levels)) != len(levels) or levels != sorted(levels, key=UNIT_KEYS.index):
        raise BadRequest(says("scope.order", levels=", ".join(UNIT_KEYS), value=repr(text)))
    named = [level for level in LEVELS if level in levels]
    if named and named != list(LEVELS[:len(named)]):
        raise BadRequest(says("scope.above", value=repr(text)))
    return Scope(tuple(pairs))


def check(store, layer: str, scopes: list[Scope], features: gpd.GeoDataFrame | None, keys) -> None:
    """Forbidden (403) naming them unless the written ``features`` and the stored features of ``keys``
    (those the write replaces or removes) are all inside one of ``scopes`` (none: no limit)."""
    if not scopes:
        return
    key = LAYERS[layer].key
    by_fields = any(f.name in UNIT_KEYS for f in LAYERS[layer].fields)

    def current(name: str) -> gpd.GeoDataFrame | None:
        return store.read(name) if name in store.layer_names and store.current(name) else None

    grids, districts, stored = current("grids"), current("districts"), current(layer)
    bad = outside(features, scopes, grids, districts, key, by_fields) if features is not None else []
    if stored is not None:
        replaced = stored[stored[key].astype(str).isin({str(k) for k in keys})]
        bad += [k for k in outside(replaced, scopes, grids, districts, key, by_fields) if k not in bad]
    if bad:
        raise Forbidden(refusal(sorted(bad), layer, scopes))


def whole_layer(scopes: list[Scope], what: Says) -> None:
    """Forbidden for an editor with scopes: ``what`` (a replace, a restore) writes the whole layer."""
    if scopes:
        raise Forbidden(says("scope.whole_layer", what=what, scopes="; ".join(map(str, scopes))))


def outside(features: gpd.GeoDataFrame, scopes: list[Scope], grids: gpd.GeoDataFrame | None,
            districts: gpd.GeoDataFrame | None, key: str, by_fields: bool = True) -> list[str]:
    """The keys of ``features`` inside none of ``scopes`` (by their fields, unless the layer has none,
    and by their geometry)."""
    if features.empty:
        return []
    inside = np.zeros(len(features), dtype=bool)
    for scope in scopes:
        matches = np.ones(len(features), dtype=bool)
        for level, name in scope.keys if by_fields else ():
            column = features[level].astype(object).to_numpy() if level in features.columns else None
            matches &= (column == name) if column is not None else False
        area = _area(scope, grids, districts)
        if area is not None:
            geoms = features.geometry.values
            matches &= shapely.covered_by(geoms, area) | shapely.is_empty(geoms)
        else:
            matches[:] = False  # a scope with no area yet: nothing is known to be in it
        inside |= matches
    return features[key].astype(str)[~inside].tolist()


def _area(scope: Scope, grids: gpd.GeoDataFrame | None, districts: gpd.GeoDataFrame | None):
    """The scope's unit, a little widened: its district boundary, or the union of its grids."""
    wanted = dict(scope.keys)
    if scope.level in (CITY, "district") and districts is not None and not districts.empty:
        rows = districts
        if "district" in wanted:
            rows = rows[rows["name"].astype(object) == wanted["district"]]
        if CITY in wanted and CITY in rows.columns:
            rows = rows[rows[CITY].astype(object) == wanted[CITY]]
        if not rows.empty:
            return shapely.union_all(rows.geometry.values).buffer(TOLERANCE_DEG)
    if grids is None or grids.empty:
        return None
    rows = grids
    for level, name in scope.keys:
        if level not in rows.columns:
            return None
        rows = rows[rows[level].astype(object) == name]
    if rows.empty:
        return None
    return shapely.union_all(rows.geometry.values).buffer(TOLERANCE_DEG)


def refusal(keys: list[str], layer: str, scopes: list[Scope]) -> Says:
    more = says("scope.more", n=len(keys) - 10) if len(keys) > 10 else ""
    return says("scope.outside", scopes="; ".join(map(str, scopes)), layer=layer, keys=", ".join(keys[:10]), more=more)
