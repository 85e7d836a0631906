"""Import a data directory written by the old FileStore (one GeoJSON file a version) into a store.

Every version of every layer comes over, oldest first, with its number, time,
author and message; a restore stays a version like any other (its content hash
then equals the hash of the version it restored).  A layer the target already
holds is skipped, so running it again imports nothing.  Afterwards the old
``layers/`` directory is renamed ``layers.migrated``: kept, never deleted, and
not imported again at the next start.

Numbers: the embedded store keeps the old numbers, gaps included (a repair can
leave gaps), so links, ETags and audit lines that name a version stay right.
An engine that cannot (``Store.import_history``'s default) numbers on from 1,
and the report gives the mapping.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import geopandas as gpd

from .. import geojson
from ..errors import DamagedStore, ImportFailed
from ..schema import LAYERS
from .base import Store, Version
from .files import FileStore

log = logging.getLogger(__name__)

REPAIR = "`python -m server repair`"


def pending(data_dir: str | os.PathLike) -> bool:
    """Whether ``data_dir`` still holds layers of the old store (a record or a version file)."""
    layers = Path(data_dir) / "layers"
    return any(layers.glob("*/manifest.json")) or any(layers.glob("*/v*.geojson"))


def if_needed(data_dir: str | os.PathLike, store: Store) -> list[str]:
    """At start: import the old layers of ``data_dir`` into ``store`` if there are any (the report, else [])."""
    if not pending(data_dir):
        return []
    lines = migrate(data_dir, store)
    for line in lines:
        log.warning("gridmap: migrate: %s", line)
    return lines


def migrate(source_dir: str | os.PathLike, target: Store) -> list[str]:
    """Import every version of every layer of the old store in ``source_dir`` into ``target``; the report.

    DamagedStore (nothing imported) when the old record is damaged; ImportFailed when a layer's
    import stops (the report says what of it was stored; the old record is kept where it is).
    """
    root = Path(source_dir)
    layers = root / "layers"
    with target.lock("migrate"):  # every worker of a first start may call this: one imports, the others wait
        if not pending(root):
            return [f"{root} holds no layers of the old store: nothing to import"]
        old = FileStore(root)
        try:
            old.check()
        except DamagedStore as e:
            hint = "" if "python -m server repair" in e.message else f"; {REPAIR} rebuilds it"
            raise DamagedStore(f"nothing was imported from {layers}: {e.message}{hint}", e.path) from None
        lines = [f"{layers}: left out '{p.name}', not a layer" for p in sorted(layers.iterdir())
                 if p.is_dir() and p.name not in LAYERS]
        for layer in old.layer_names:
            lines.extend(_layer(old, layer, target))
        moved = _set_aside(layers)
        lines.append(f"the old record {layers} is kept as {moved}")
        return lines


def _layer(old: FileStore, layer: str, target: Store) -> list[str]:
    versions = old.versions(layer)
    if not versions:
        return []
    there = target.versions(layer)
    if there:
        return [f"{layer}: skipped: {target.location} already has {len(there)} version(s) of it "
                f"(the {len(versions)} old one(s) stay in the old record)"]
    try:
        done = target.import_history(layer, _history(old, layer, versions))
    except Exception as e:
        stored = target.versions(layer)
        what = (f"versions {', '.join(str(v.version) for v in stored)} of it were stored and stay, the rest "
                "was not (a new try skips this layer: the rest of its history stays only in the old record)"
                if stored else "nothing of it was stored")
        reason = e.message if isinstance(e, DamagedStore) else f"{type(e).__name__}: {e}"
        raise ImportFailed(f"the import of layer '{layer}' from {old.root / 'layers'} stopped ({reason}): {what}. "
                           "The old record is kept as it was; `python -m server migrate` tries again "
                           "(layers already imported are skipped)", getattr(e, "path", None)) from e
    numbers = [v.version for v in versions]
    line = (f"{layer}: imported {len(done)} version(s), {numbers[0]} to {numbers[-1]}; "
            f"the current one has {done[-1].features} feature(s)")
    kept = [v.version for v in done]
    if kept != numbers:
        line += "; numbered anew: " + ", ".join(f"{a} → {b}" for a, b in zip(numbers, kept) if a != b)
    return [line]


def _history(old: FileStore, layer: str, versions: list[Version]) -> Iterator[tuple[Version, gpd.GeoDataFrame]]:
    """Each version's record and frame, one at a time (not through the old store's cache: whole
    histories of large layers would not fit in memory)."""
    for v in versions:
        yield v, geojson.read(old.read_geojson(layer, v.version), LAYERS[layer])


def _set_aside(layers: Path) -> str:
    """Rename ``layers`` to ``layers.migrated`` (or a dated name if that is taken); the new name."""
    target = layers.with_name("layers.migrated")
    if target.exists():
        target = layers.with_name(f"layers.migrated-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
    os.replace(layers, target)
    return target.name
