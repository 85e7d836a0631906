"""The dashboard: coverage and gap summaries as tables and charts.

Presentation only: the numbers come from ``geodata.summaries`` and
``geodata.siting``; the helpers here shape them for ``dashboard.html`` (cards,
chart bars and points, table cells and the link from every row to its map).
Charts are inline SVG drawn by Jinja macros; sorting and filtering the tables
is ``static/dashboard.js``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from flask import Blueprint, render_template, request, url_for

from geodata import history, summaries
from geodata.coverage import GAP_KINDS as ALL_GAP_KINDS
from geodata.coverage import LEVELS, STATUSES
from geodata.errors import NotFound
from geodata.i18n import says, text
from geodata.siting import recommend
from geodata.unitkeys import CITY, UNIT_KEYS, unit_columns
from maps.palette import GAP_COLOURS  # the map's colours: a gap kind reads the same everywhere

from . import services
from .i18n import current_language

blueprint = Blueprint("dashboard", __name__)

SHARE = "covered_share"
GAP_KINDS = tuple(k for k in ALL_GAP_KINDS if k != "walk_gap")  # walk gaps: in the disc-against-walking table
STATUS_COLUMNS = tuple(f"grids_{s}" for s in STATUSES)
NUMBER_COLUMNS = ("grids", "population", "covered_population", SHARE, *STATUS_COLUMNS, *GAP_KINDS)
HEADINGS = {  # column -> i18n key
    **{level: f"level.{level}" for level in UNIT_KEYS},
    "grids": "field.grids", "population": "field.population",
    "covered_population": "field.covered_population", SHARE: "field.covered_share",
    **{c: f"dashboard.{c}" for c in STATUS_COLUMNS},
    **{kind: f"gap.{kind}" for kind in GAP_KINDS},
}


@dataclass(frozen=True)
class Table:
    level: str
    names: tuple[str, ...]  # the unit columns, e.g. ("district", "street"), ("city", "district") with cities
    rows: list[tuple[tuple[str, ...], str, list[str]]]  # (names, map URL, formatted numbers)


@dataclass(frozen=True)
class Siting:
    """Where the next community centres would go: covered share by k, and the top sites."""

    solver: str
    found: int  # how many sites add coverage (fewer than K_MAX: no other site covers anyone new)
    before: float  # covered share now
    points: list[dict]  # k = 1 … K_MAX: k, covered_share, covered_population, new_population
    sites: list[dict]  # the first TOP_SITES: rank, unit (names), url, new_population, covered_share
    chart: dict  # the k-chart's geometry (see k_chart)


K_MAX = 20  # the k-chart's last k: one recommendation of K_MAX sites gives every k before it
SITING_LEVEL = "community"
TOP_SITES = 10


@blueprint.get("/dashboard")
def dashboard():
    """The whole dataset's dashboard; ``?city=…`` one city's (when the data names cities).

    With several cities the whole one compares the cities and their districts, and links to each
    city's own dashboard for its streets and communities (a province's 25,000 community rows would
    make a page of megabytes), and for where the next centres would go; their CSV exports stay whole.
    """
    catalog = services().catalog
    tag, analysis = catalog.analysis_entry()
    total = summaries.rows(analysis, "total")
    if total.empty:
        return render_template("dashboard.html", empty=True)
    cities = summaries.rows(analysis, CITY)
    named = CITY in cities.columns  # the grids name their cities: every unit's key starts with its city
    chosen = request.args.get(CITY) if named else None
    if chosen is not None:
        one = cities[cities[CITY] == chosen]
        if one.empty:
            raise NotFound(says("error.no_city", city=chosen, cities=", ".join(map(str, cities[CITY]))),
                           details=[str(c) for c in cities[CITY]])
        unit = {CITY: chosen}
        head, count, levels, by = one, 1, LEVELS, "district"
    else:
        unit = {}
        head, count = total, len(cities) if named else 1
        levels = (CITY, *LEVELS) if named else LEVELS
        if count > 1:
            levels = (CITY, "district")
        # the charts compare cities when there are several (a province's ~90 districts would not read as bars)
        by = CITY if count > 1 else "district"
    per_unit = summaries.rows(analysis, by, unit)
    return render_template(
        "dashboard.html", empty=False,
        city=_records(head)[0], cities=count, chart_level=by, chosen=chosen,
        city_links=[(c, url_for("dashboard.dashboard", city=c)) for c in cities[CITY] if c]
        if named and count > 1 else [],
        share_bars=share_bars(per_unit, by),
        gap_bars=gap_bars(per_unit, by),
        walking=walking_rows(per_unit, by),
        # where the next community centres go is a city's question (and a province's greedy run took 18 s)
        siting=None if count > 1 else services().responses.get(("siting", tag, chosen),
                                                               lambda: siting(catalog, unit)),
        sites_csv_url=url_for("planning.recommendations", level=SITING_LEVEL, k=K_MAX, f="csv", **unit),
        tables=[table(level, summaries.rows(analysis, level, unit), named) for level in levels],
        csv_urls={level: url_for("api.summary", level=level, f="csv", **unit)
                  for level in ("total", CITY, *LEVELS)},
        history_url=url_for("api.summary_history", **unit), history_limit=history.LIMIT,
        history_whole=text("nav.city" if count == 1 else "dashboard.all_cities", current_language()),
        headings=HEADINGS, number_columns=NUMBER_COLUMNS, gap_kinds=GAP_KINDS, gap_colours=GAP_COLOURS,
        fmt=fmt,
    )


def map_url(district: str | None = None, street: str | None = None, community: str | None = None,
            city: str | None = None) -> str:
    """The map of one unit: /map?city=…&district=…&street=…&community=… (city when the data names cities)"""
    names = {CITY: city, "district": district, "street": street, "community": community}
    return url_for("pages.unit_map", **{k: names[k] for k in UNIT_KEYS if names[k]})


def fmt(column: str, value) -> str:
    """A number as the tables and cards show it: thousands separated, shares as %; '—' when unknown."""
    if value is None:
        return "—"
    if column == SHARE:
        return f"{value * 100:.1f}%"
    return f"{value:,}"


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values, NaN (a share of no population) as None."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")]


def table(level: str, frame: pd.DataFrame, cities: bool = False) -> Table:
    names = tuple(unit_columns(level, cities))
    rows = []
    for row in _records(frame):
        unit = tuple(row[c] for c in names)
        rows.append((unit, map_url(**dict(zip(names, unit))), [fmt(c, row[c]) for c in NUMBER_COLUMNS]))
    return Table(level, names, rows)


def share_bars(units: pd.DataFrame, level: str = "district") -> list[dict]:
    """Districts (or cities) by covered share, highest first; those with no population (no share) last.
    Each bar is named by ``name``, the unit's own name."""
    rows = [dict(r, name=r[level]) for r in _records(units)]
    return sorted(rows, key=lambda r: (r[SHARE] is None, -(r[SHARE] or 0)))  # stable: ties keep administrative order


def walking_rows(units: pd.DataFrame, level: str = "district") -> list[dict] | None:
    """Disc against walking coverage per district (or city): the share the discs cover, the share the walk
    covers, and the people inside a disc but beyond the walk.  None when catchments are not walked."""
    if "disc_covered_share" not in units.columns:
        return None
    return [{"name": r[level], "disc": fmt(SHARE, r["disc_covered_share"]), "walk": fmt(SHARE, r[SHARE]),
             "walk_gap_population": fmt("walk_gap_population", r["walk_gap_population"])} for r in _records(units)]


def gap_bars(units: pd.DataFrame, level: str = "district") -> list[dict]:
    """Districts (or cities) by their number of gaps, most first, each with its count of every kind."""
    rows = [{"name": r[level], "counts": [(k, int(r[k])) for k in GAP_KINDS],
             "total": sum(int(r[k]) for k in GAP_KINDS)} for r in _records(units)]
    return sorted(rows, key=lambda r: -r["total"])  # stable: ties keep administrative order


def siting(catalog, unit: dict[str, str] | None = None) -> Siting:
    """Greedy recommendation of ``K_MAX`` community sites over the current grids and centres (of ``unit``).

    Greedy picks sites one at a time, so its first k sites are its answer for k: the
    cumulative covered population after each site is the curve of covered share by k.
    When fewer sites add coverage, the share stays where the last one left it.
    """
    result = recommend(catalog.get("grids").features.gdf, catalog.get("centers").features.gdf, SITING_LEVEL,
                       K_MAX, catalog.params, unit=unit or None, solver="greedy")
    population = max(result.population, 1)
    sites = _records(result.sites.drop(columns="geometry"))
    covered, points = result.covered_before, []
    for k in range(1, K_MAX + 1):
        gain = sites[k - 1]["new_population"] if k <= len(sites) else 0
        covered = sites[k - 1]["cumulative_population"] if k <= len(sites) else covered
        points.append({"k": k, "covered_share": round(covered / population, 4), "covered_population": covered,
                       "new_population": gain})
    top = [{"rank": s["rank"], "unit": tuple(s[c] for c in UNIT_KEYS if s.get(c)),
            "url": map_url(**{c: s.get(c) for c in UNIT_KEYS}), "new_population": s["new_population"],
            "covered_share": s["covered_share"]} for s in sites[:TOP_SITES]]
    before = round(result.covered_before / population, 4)
    return Siting(result.solver, len(sites), before, points, top, k_chart(before, points))


def k_chart(before: float, points: list[dict], width: float = 400, height: float = 200) -> dict:
    """Where the k-chart draws each point: x by k, y by share on an axis fitted to the shares.

    The axis spans the shares from now to the last k in round steps (its ticks say where it
    starts: it need not start at 0 %, where small gains would all lie on one line).
    """
    shares = [before, *(p["covered_share"] for p in points)]
    lo, hi, step = _axis(min(shares) * 100, max(shares) * 100)

    def y(share: float) -> float:
        return round(height - (share * 100 - lo) / (hi - lo) * height, 1)

    last = max(len(points) - 1, 1)
    digits = 0 if step >= 1 else 1
    return {
        "width": width, "height": height,
        "points": [dict(p, x=round(i * width / last, 1), y=y(p["covered_share"])) for i, p in enumerate(points)],
        "ticks": [(f"{lo + i * step:.{digits}f}%", y((lo + i * step) / 100))
                  for i in range(round((hi - lo) / step) + 1)],
        "before_y": y(before),
    }


def _axis(lo: float, hi: float) -> tuple[float, float, float]:
    """A round axis [start, end] with its step (percentage points) holding lo…hi in at most 5 steps."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 25):
        start = math.floor(lo / step + 1e-9) * step
        end = math.ceil(hi / step - 1e-9) * step
        if end - start < step / 2:  # one value: give it a step of room, within 0–100 %
            start, end = (end - step, end) if end >= 100 else (start, start + step)
        if round((end - start) / step) <= 5:
            return round(start, 4), round(end, 4), step
    return 0.0, 100.0, 25
