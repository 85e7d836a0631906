"""How a unit is named: by its name and every level above it (SPEC §1).

A community is (district, street, community); when the grids name cities (地级市), every unit's
key starts with its city: (city, district, street, community). The same district, street or
community name under two parents is two units, so everything that groups or filters by unit
uses the whole key from here.

A dataset without a ``city`` column (or with one that is empty throughout) keys its units as
before, without a city.  Grids of a city dataset that name no city form a city of their own,
keyed ``""`` (``NO_CITY``) inside the analysis and shown as null.
"""

from __future__ import annotations

import pandas as pd

CITY = "city"
LEVELS = ("district", "street", "community")
UNIT_COLUMNS = {"district": ["district"], "street": ["district", "street"],
                "community": ["district", "street", "community"]}  # without cities: see unit_columns
NO_CITY = ""
UNIT_KEYS = (CITY, *LEVELS)  # the parameters that name a unit (/map, /api/summary, /api/recommendations)


def has_cities(frame: pd.DataFrame | None) -> bool:
    """Whether ``frame`` (grids, coverage, a summary) names a city for any of its rows."""
    if frame is None or CITY not in frame.columns or frame.empty:
        return False
    named = frame[CITY].dropna()  # a province's 85k missing cities: skipped at once, not one by one
    return any(isinstance(v, str) and v.strip() for v in named.to_numpy(dtype=object))


def unit_columns(level: str, cities: bool) -> list[str]:
    """The columns that name a unit of ``level`` (``city``, ``district``, ``street``, ``community``).

    >>> unit_columns("street", cities=True)
    ['city', 'district', 'street']
    >>> unit_columns("city", cities=False)
    []
    """
    if level == CITY:
        return [CITY] if cities else []
    return ([CITY] if cities else []) + UNIT_COLUMNS[level]


def key_table(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame``'s unit columns as objects, a missing city as ``NO_CITY`` (so it groups and compares as a name)."""
    table = pd.DataFrame({c: frame[c] for c in columns}, index=frame.index)  # copies; kept in its dtype (fast)
    if CITY in table.columns:
        table[CITY] = table[CITY].astype(object).where(table[CITY].notna(), NO_CITY)
    return table


def shown_city(values: pd.Series) -> pd.Series:
    """A city column as the answers show it: ``NO_CITY`` back to null."""
    values = values.astype(object)
    return values.where(values.notna() & (values != NO_CITY), None)


def district_shapes(districts, crs, cities: bool) -> dict[tuple, object]:
    """The districts layer's boundaries in ``crs`` by district key: ``(city, name)`` when both the grids
    (``cities``) and the layer name cities, and ``(name,)`` for every name that only one district has."""
    if districts is None or districts.empty:
        return {}
    geoms = districts.geometry.to_crs(crs).values
    names = districts["name"].astype(object).to_numpy()
    if not cities:
        return {(name,): geom for name, geom in zip(names, geoms)}
    shapes: dict[tuple, object] = {}
    if has_cities(districts):
        for city, name, geom in zip(districts[CITY].astype(object).to_numpy(), names, geoms):
            shapes.setdefault((city if isinstance(city, str) and city else NO_CITY, name), geom)
    counts = pd.Series(names).value_counts()
    for name, geom in zip(names, geoms):
        if counts[name] == 1:
            shapes[(name,)] = geom
    return shapes


def district_shape(shapes: dict[tuple, object], key: tuple):
    """The boundary of the district ``key`` ((city, district) or (district,)) from ``district_shapes``."""
    return shapes.get(key) if key in shapes else shapes.get(key[-1:])
