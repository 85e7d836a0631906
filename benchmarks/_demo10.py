"""The Ningbo demo made N times larger, for store benchmarks at province scale.

``scaled_demo(10)`` is ten copies of ``geodata.demo.build_demo()`` side by side
(5 columns × 2 rows, each shifted past the demo's extent so no two copies
overlap): 84,990 grids, 25,330 centres, 100 districts.  Copy 0 is the demo
itself; copy k > 0 suffixes every key and every district, street and community
name with ``-ck`` so keys stay unique and the hierarchy still nests.
Deterministic; cached on disk (keyed by the generator's source) so reruns are
quick.
"""

from __future__ import annotations

import hashlib
import pickle
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from _server import ROOT

CACHE = Path(tempfile.gettempdir()) / "gridmap-bench-cache"
COLUMNS = 5
STEP = (1.6, 1.8)  # degrees between copies: the demo spans 1.41° × 1.64°
NAMES = {"districts": ("adcode", "name"), "grids": ("grid_id", "name", "district", "street", "community"),
         "centers": ("center_id", "name", "district", "street", "community")}


def scaled_demo(copies: int = 10):
    """The demo with ``copies`` times its features (``copies=1``: the demo as built)."""
    from geodata.demo import Demo, build_demo

    source = b"".join(p.read_bytes() for p in (ROOT / "geodata" / "demo.py", Path(__file__)))
    tag = hashlib.sha256(source + str(copies).encode()).hexdigest()[:16]
    path = CACHE / f"demo-x{copies}-{tag}.pickle"
    if path.exists():
        # our own file, written below by this script: a pickle keeps every dtype exactly
        return Demo(**pickle.loads(path.read_bytes()))
    demo = build_demo()
    layers = {name: _copies(getattr(demo, name), name, copies) for name in NAMES}
    CACHE.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(layers))
    tmp.replace(path)
    return Demo(**layers)


def _copies(gdf: gpd.GeoDataFrame, layer: str, copies: int) -> gpd.GeoDataFrame:
    parts = [gdf]
    for k in range(1, copies):
        part = gdf.copy()
        dx, dy = (k % COLUMNS) * STEP[0], (k // COLUMNS) * STEP[1]
        # stay on the demo's 1e-6° lattice, so shared edges stay identical
        part["geometry"] = shapely.transform(gdf.geometry.values, lambda xy: np.round(xy + (dx, dy), 6))
        for column in NAMES[layer]:
            if column in part:
                part[column] = part[column].map(lambda v: v if v is None or pd.isna(v) else f"{v}-c{k}",
                                                na_action="ignore")
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=gdf.crs)
