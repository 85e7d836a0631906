"""An analysis (and the units dissolved from it) as bytes, so one process computes it and every
other worker and instance loads it.

Kept in the store (``Store.shared``) under a key naming its inputs' versions, its parameters and
the code that computes it (``CODE``): a kept analysis is never out of date, and a new release of
gridmap computes its own.  The format is a ZIP of Parquet files (Apache Arrow's, read by pyarrow):
data, never code, whoever can write to the store.

    meta.json                metric CRS, the summaries' names
    coverage.parquet         coverage_ratio, covered_population, coverage_status (and a walking
                             analysis' disc_covered_population, walk_gap_population, ring_*), one row a grid
    gaps.parquet             the gaps (GeoParquet)
    summary-LEVEL.parquet    each summary
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from functools import cache
from pathlib import Path

import geopandas as gpd
import pandas as pd

from .coverage import Analysis, Params, walking_people

COVERAGE_COLUMNS = ["coverage_ratio", "covered_population", "coverage_status"]


@cache
def code_digest() -> str:
    """Names the code that computes analyses and what is drawn of them: every module of ``geodata``
    and ``maps``, and the catalogues (a gap's detail is written from them).  Any change to them, and results
    kept by another release are not used."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted([*root.joinpath("geodata").rglob("*.py"), *root.joinpath("maps").rglob("*.py"),
                        *root.joinpath("geodata", "locale").rglob("*.po")]):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def to_bytes(analysis: Analysis) -> bytes:
    columns = COVERAGE_COLUMNS + walking_people(analysis.coverage)  # a walking analysis' people too
    edges = {} if analysis.invalid_edges is None else {"edges": pd.DataFrame({"invalid": analysis.invalid_edges})}
    return frames_to_bytes({"coverage": pd.DataFrame(analysis.coverage[columns]), "gaps": analysis.gaps,
                            **{f"summary-{name}": frame for name, frame in analysis.summaries.items()}, **edges},
                           metric_crs=analysis.metric_crs, summaries=list(analysis.summaries))


def from_bytes(data: bytes, grids: gpd.GeoDataFrame, params: Params) -> Analysis:
    """The analysis ``to_bytes`` wrote, of exactly these ``grids`` (the version its key names)."""
    frames, meta = frames_from_bytes(data)
    columns = frames["coverage"]
    if len(columns) != len(grids):
        raise ValueError(f"a kept analysis of {len(columns)} grids, not {len(grids)}")
    coverage = grids.copy()
    for name in columns.columns:
        coverage[name] = columns[name].to_numpy() if columns[name].dtype.kind == "f" else columns[name].array
    summaries = {name: frames[f"summary-{name}"] for name in meta["summaries"]}
    edges = frames["edges"]["invalid"].to_numpy(dtype=bool) if "edges" in frames else None
    return Analysis(params, meta["metric_crs"], coverage, frames["gaps"], summaries,
                    edges if edges is not None and len(edges) == len(grids) else None)


def frames_to_bytes(frames: dict[str, pd.DataFrame], **meta) -> bytes:
    """Frames (GeoDataFrames too) and a little JSON, as one ZIP of Parquet files."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # Parquet is compressed already
        archive.writestr("meta.json", json.dumps({
            **meta, "geo": [name for name, frame in frames.items() if isinstance(frame, gpd.GeoDataFrame)],
            # Parquet reads text back as pandas' str: these columns were plain objects
            "objects": {name: [c for c in frame.columns if frame[c].dtype == object] for name, frame in frames.items()},
        }, ensure_ascii=False))
        for name, frame in frames.items():
            archive.writestr(f"{name}.parquet", _parquet(frame))
    return out.getvalue()


def frames_from_bytes(data: bytes) -> tuple[dict[str, pd.DataFrame], dict]:
    """The frames and the JSON ``frames_to_bytes`` wrote, exactly as they were."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        meta = json.loads(archive.read("meta.json"))
        frames = {}
        for name, objects in meta["objects"].items():
            reader = gpd.read_parquet if name in meta["geo"] else pd.read_parquet
            frame = reader(io.BytesIO(archive.read(f"{name}.parquet")))
            for column in objects:  # as they were: objects, None where missing
                values = frame[column].astype(object)
                frame[column] = values.where(values.notna(), None)
            frames[name] = frame
    return frames, meta


def _parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()
