"""An upload from start to finish: parse, merge, validate, check the tiling, store — or nothing.

Framework-neutral: the route hands over the bytes and the form's options and
gets back what to answer.  Nothing is written unless the whole file is
acceptable, and then it is written as one new version.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from . import io
from .coverage import Params, tiling_problems
from .errors import BadRequest
from .schema import LAYERS
from .store import Store, Version
from .validate import Problem, Report, validate

MODES = ("replace", "merge")


@dataclass(frozen=True)
class Outcome:
    """What an upload came to: ``status`` 201 stored, 200 dry run, 422 rejected."""

    status: int
    layer: str
    features: int
    report: Report
    parsed: io.Parsed
    version: Version | None = None  # the new version, or the current one for a dry run

    def to_dict(self) -> dict:
        report = self.report.to_dict()
        report.update(format=self.parsed.format, source_crs=self.parsed.source_crs,
                      encoding=self.parsed.encoding, notes=list(self.parsed.notes))
        return {"version": self.version.version if self.version else None, "features": self.features,
                "report": report}


def upload(store: Store, layer: str, data: bytes, filename: str, *, author: str, message: str = "",
           mode: str = "replace", dry_run: bool = False, if_version: int | None = None,
           options: io.UploadOptions = io.UploadOptions(), limits: io.Limits = io.Limits(),
           params: Params = Params(), lang: str = "en") -> Outcome:
    """Make ``data`` the next version of ``layer`` (``mode=merge``: only the features it names).

    Raises BadRequest for a bad mode, PreconditionFailed when ``if_version`` is
    stale, and the reader's 4xx errors for files that cannot be read at all.
    """
    if layer not in LAYERS:
        raise BadRequest(f"uploads go to {', '.join(LAYERS)}, not '{layer}'")
    if mode not in MODES:
        raise BadRequest(f"mode must be replace or merge, not {mode!r}")
    parsed = io.read_upload(data, filename, layer, options, limits)
    key = LAYERS[layer].key
    report = validate(parsed.data, layer, lang)
    current = store.current(layer)
    if report.ok and mode == "merge" and current is not None:
        report = validate(_merge(store.read(layer), report.data, key), layer, lang)
    if report.ok and layer == "grids":
        report = _with_tiling_warnings(report, store, params)
    if mode == "merge":
        report = _number_by_file(report, parsed.data, key)
    features = len(report.data) if report.ok else len(parsed.data)
    if not report.ok:
        return Outcome(422, layer, features, report, parsed, current)
    if dry_run:
        return Outcome(200, layer, features, report, parsed, current)
    version = store.write(layer, report.data, author=author, message=message, if_version=if_version)
    return Outcome(201, layer, features, report, parsed, version)


def _merge(current: gpd.GeoDataFrame, new: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
    """Features of ``new`` replace those with the same key; the others stay, in their order."""
    kept = current[~current[key].isin(new[key])]
    return gpd.GeoDataFrame(pd.concat([kept, new], ignore_index=True), crs=current.crs)


def _with_tiling_warnings(report: Report, store: Store, params: Params) -> Report:
    """Tiling gaps, overlaps and grids outside their district: worth a warning, not a refusal."""
    districts = store.read("districts") if store.current("districts") else None
    problems = tiling_problems(report.data, districts, params)
    if problems.empty:
        return report
    position = {k: i for i, k in enumerate(report.data[LAYERS["grids"].key])}
    warnings = [Problem(position.get(row.grid_id), row.grid_id, None, row.detail)
                for row in problems.itertuples()]
    return Report(report.layer, report.errors, report.warnings + tuple(warnings), report.data)


def _number_by_file(report: Report, uploaded: gpd.GeoDataFrame, key: str) -> Report:
    """After a merge, point problems at the feature's index in the uploaded file (None: already stored)."""
    in_file = {str(k): i for i, k in enumerate(uploaded[key])} if key in uploaded.columns else {}

    def renumber(problems):
        return tuple(Problem(in_file.get(p.key) if p.key is not None else p.index, p.key, p.field, p.message)
                     for p in problems)

    return Report(report.layer, renumber(report.errors), renumber(report.warnings), report.data)
