"""Coverage summaries as documents: JSON for scripts, CSV for Excel."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from .coverage import Analysis
from .errors import BadRequest
from .i18n import says
from .geojson import dumps
from .tables import to_csv
from .unitkeys import UNIT_KEYS


def rows(analysis: Analysis, level: str, unit: dict[str, str] | None = None) -> pd.DataFrame:
    """The summary rows of ``level``, only those inside ``unit`` (e.g. {"district": "海曙区"}) when given.

    ``total`` with a unit is one row: the unit's whole (every unit of that name, when a name is given
    without its parents).  A level above the unit's (``city`` rows for a district) is a BadRequest:
    its rows are not inside the unit."""
    if level == "total" and unit:
        return unit_total(analysis, unit)
    frame = analysis.summaries[level]
    outside = [column for column in (unit or {}) if column not in frame.columns]
    if outside:
        raise BadRequest(says("error.level_outside", level=level, unit=outside[-1], names=" / ".join(unit.values())))
    for column, value in (unit or {}).items():
        frame = frame[frame[column] == value]
    return frame


def unit_total(analysis: Analysis, unit: dict[str, str]) -> pd.DataFrame:
    """One row: the sums of the units ``unit`` names (BadRequest when it names none), its share recomputed."""
    level = [key for key in UNIT_KEYS if key in unit][-1]
    found = rows(analysis, level, unit)
    if found.empty:
        raise BadRequest(says("error.no_grids_in", unit=" / ".join(unit.values())))
    total = analysis.summaries["total"]
    counts = [c for c in total.columns if not c.endswith("covered_share")]
    row = found[counts].sum().to_frame().T.astype(total[counts].dtypes.to_dict())
    people = int(row["population"].iloc[0])
    for share in (c for c in total.columns if c.endswith("covered_share")):  # covered_share, disc_covered_share
        covered = share.replace("_share", "_population")
        row[share] = round(int(row[covered].iloc[0]) / people, 4) if people else None
    return row[list(total.columns)].reset_index(drop=True)


def render(analysis: Analysis, level: str, unit: dict[str, str], fmt: str) -> bytes:
    frame = rows(analysis, level, unit)
    if fmt == "csv":
        return to_csv(frame)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return dumps({"level": level, "metric_crs": analysis.metric_crs, "parameters": asdict(analysis.params),
                  "rows": records}).encode("utf-8")
