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
from ..i18n import says
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
            return [says("migrate.nothing", dir=root)]
        old = FileStore(root)
        try:
            old.check()
        except DamagedStore as e:
            hint = "" if "python -m server repair" in e.message else says("migrate.repair_hint", repair=REPAIR)
            raise DamagedStore(says("migrate.refused", dir=layers, reason=e.message, hint=hint), e.path) from None
        lines = [says("migrate.not_a_layer", dir=layers, name=p.name) for p in sorted(layers.iterdir())
                 if p.is_dir() and p.name not in LAYERS]
        for layer in old.layer_names:
            lines.extend(_layer(old, layer, target))
        moved = _set_aside(layers)
        lines.append(says("migrate.kept", dir=layers, moved=moved))
        return lines


def _layer(old: FileStore, layer: str, target: Store) -> list[str]:
    versions = old.versions(layer)
    if not versions:
        return []
    there = target.versions(layer)
    if there:
        return [says("migrate.skipped", count=len(there), layer=layer, location=target.location, old=len(versions))]
    try:
        done = target.import_history(layer, _history(old, layer, versions))
    except Exception as e:
        stored = target.versions(layer)
        what = (says("migrate.partly", versions=", ".join(str(v.version) for v in stored))
                if stored else says("migrate.none_stored"))
        reason = e.message if isinstance(e, DamagedStore) else f"{type(e).__name__}: {e}"
        raise ImportFailed(says("migrate.stopped", layer=layer, dir=old.root / "layers", reason=reason, what=what),
                           getattr(e, "path", None)) from e
    numbers = [v.version for v in versions]
    kept = [v.version for v in done]
    anew = ", ".join(f"{a} → {b}" for a, b in zip(numbers, kept) if a != b)
    return [says("migrate.imported", count=len(done), layer=layer, first=numbers[0], last=numbers[-1],
                 features=says("migrate.features", count=done[-1].features),
                 anew=says("migrate.anew", pairs=anew) if anew else "")]


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
