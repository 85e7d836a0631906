"""Coverage summaries as documents: JSON for scripts, CSV for Excel."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from .coverage import Analysis
from .geojson import dumps
from .tables import to_csv


def rows(analysis: Analysis, level: str, unit: dict[str, str] | None = None) -> pd.DataFrame:
    """The summary rows of ``level``, only those inside ``unit`` (e.g. {"district": "海曙区"}) when given."""
    frame = analysis.summaries[level]
    for column, value in (unit or {}).items():
        if column in frame.columns:
            frame = frame[frame[column] == value]
    return frame


def render(analysis: Analysis, level: str, unit: dict[str, str], fmt: str) -> bytes:
    frame = rows(analysis, level, unit)
    if fmt == "csv":
        return to_csv(frame)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return dumps({"level": level, "metric_crs": analysis.metric_crs, "parameters": asdict(analysis.params),
                  "rows": records}).encode("utf-8")
