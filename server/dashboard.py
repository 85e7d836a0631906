"""The dashboard: coverage and gap summaries as tables and charts.

Presentation only: the numbers come from ``geodata.summaries``; the helpers
here shape them for ``dashboard.html`` (cards, chart bars, table cells and
the link from every row to its map).  Charts are inline SVG drawn by Jinja
macros; sorting and filtering the tables is ``static/dashboard.js``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from flask import Blueprint, render_template, url_for

from geodata import summaries
from geodata.coverage import GAP_KINDS, LEVELS, STATUSES, UNIT_COLUMNS
from maps.coverage_map import GAP_COLOURS  # the map's colours: a gap kind reads the same everywhere

from . import services

blueprint = Blueprint("dashboard", __name__)

SHARE = "covered_share"
STATUS_COLUMNS = tuple(f"grids_{s}" for s in STATUSES)
NUMBER_COLUMNS = ("grids", "population", "covered_population", SHARE, *STATUS_COLUMNS, *GAP_KINDS)
HEADINGS = {  # column -> i18n key
    **{level: f"level.{level}" for level in LEVELS},
    "grids": "field.grids", "population": "field.population",
    "covered_population": "field.covered_population", SHARE: "field.covered_share",
    **{c: f"dashboard.{c}" for c in STATUS_COLUMNS},
    **{kind: f"gap.{kind}" for kind in GAP_KINDS},
}


@dataclass(frozen=True)
class Table:
    level: str
    names: tuple[str, ...]  # the unit columns, e.g. ("district", "street")
    rows: list[tuple[tuple[str, ...], str, list[str]]]  # (names, map URL, formatted numbers)


@blueprint.get("/dashboard")
def dashboard():
    analysis = services().catalog.analysis()
    city = summaries.rows(analysis, "city")
    if city.empty:
        return render_template("dashboard.html", empty=True)
    districts = summaries.rows(analysis, "district")
    return render_template(
        "dashboard.html", empty=False,
        city=_records(city)[0],
        share_bars=share_bars(districts),
        gap_bars=gap_bars(districts),
        tables=[table(level, summaries.rows(analysis, level)) for level in LEVELS],
        csv_urls={level: url_for("api.summary", level=level, f="csv") for level in ("city", *LEVELS)},
        headings=HEADINGS, number_columns=NUMBER_COLUMNS, gap_kinds=GAP_KINDS, gap_colours=GAP_COLOURS,
        fmt=fmt,
    )


def map_url(district: str, street: str | None = None, community: str | None = None) -> str:
    """The map of one unit: /map?district=…&street=…&community=…"""
    unit = {k: v for k, v in (("district", district), ("street", street), ("community", community)) if v}
    return url_for("pages.unit_map", **unit)


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


def table(level: str, frame: pd.DataFrame) -> Table:
    names = tuple(UNIT_COLUMNS[level])
    rows = []
    for row in _records(frame):
        unit = tuple(row[c] for c in names)
        rows.append((unit, map_url(*unit), [fmt(c, row[c]) for c in NUMBER_COLUMNS]))
    return Table(level, names, rows)


def share_bars(districts: pd.DataFrame) -> list[dict]:
    """Districts by covered share, highest first; those with no population (no share) last."""
    rows = _records(districts)
    return sorted(rows, key=lambda r: (r[SHARE] is None, -(r[SHARE] or 0), r["district"]))


def gap_bars(districts: pd.DataFrame) -> list[dict]:
    """Districts by their number of gaps, most first, each with its count of every kind."""
    rows = [{"district": r["district"], "counts": [(k, int(r[k])) for k in GAP_KINDS],
             "total": sum(int(r[k]) for k in GAP_KINDS)} for r in _records(districts)]
    return sorted(rows, key=lambda r: (-r["total"], r["district"]))
