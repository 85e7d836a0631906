"""The first store: one GeoJSON file a version (kept to read and migrate older data directories).

Layout (one folder a layer)::

    DATA_DIR/layers/grids/manifest.json      {"versions": [{version, time, author, ...}, ...]}
    DATA_DIR/layers/grids/v000001.geojson    RFC 7946, one file a version
    DATA_DIR/locks/grids.lock                serialises writers across processes
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
from filelock import FileLock

from .. import geojson
from ..cache import VersionCache
from ..errors import BadRequest, DamagedStore, InsufficientStorage, PreconditionFailed
from ..i18n import says
from ..schema import LAYERS
from .base import Store, Version


class FileStore(Store):
    """Versioned GeoJSON files in a data directory, shared safely by several processes."""

    MANIFEST = "manifest.json"
    CACHE_SIZE = 8  # frames kept in memory: current versions of all layers plus a few older ones

    def __init__(self, data_dir: str | os.PathLike):
        self.root = Path(data_dir)
        (self.root / "layers").mkdir(parents=True, exist_ok=True)
        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        self._manifests: dict[str, tuple[tuple, list[Version]]] = {}
        self._frames = VersionCache(self.CACHE_SIZE)

    @property
    def location(self) -> str:
        return str(self.root)

    # --- reading -----------------------------------------------------------
    def versions(self, layer: str) -> list[Version]:
        self._check_layer(layer)
        path = self._dir(layer) / self.MANIFEST
        try:
            st = path.stat()
        except FileNotFoundError:
            return []
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # a write replaces the file, so the inode changes
        cached = self._manifests.get(layer)
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            versions = [_version(layer, v) for v in json.loads(path.read_bytes())["versions"]]
        except (ValueError, TypeError, KeyError) as e:  # truncated, not JSON, or not a manifest
            raise DamagedStore(says("store.record_unreadable", layer=layer, path=path, kind=type(e).__name__,
                                    reason=str(e)), path) from None
        self._manifests[layer] = (stamp, versions)
        return versions

    def check(self) -> None:
        problems = []
        for layer in self.layer_names:
            try:
                self._check_files(layer)
            except DamagedStore as e:
                problems.append(e)
        if problems:
            raise DamagedStore(functools.reduce(lambda a, b: says("store.and", first=a, then=b),
                                                [p.message for p in problems]), problems[0].path)

    def _check_files(self, layer: str) -> None:
        manifest = self._dir(layer) / self.MANIFEST
        if not manifest.exists() and any(self._dir(layer).glob("v*.geojson")):
            raise DamagedStore(says("store.record_missing", layer=layer, path=manifest), manifest)
        for v in self.versions(layer):
            path = self._version_path(layer, v.version)
            if not path.is_file():
                raise DamagedStore(says("store.version_file_missing", layer=layer, version=v.version, path=path,
                                        record=self._dir(layer) / self.MANIFEST), path)

    def read(self, layer: str, version: int | None = None) -> gpd.GeoDataFrame:
        v = self.version(layer, version)
        return self._frames.get((layer, v.version),
                                lambda: geojson.read(self.read_geojson(layer, v.version), LAYERS[layer]))

    def read_geojson(self, layer: str, version: int | None = None) -> bytes:
        v = self.version(layer, version)
        return self._version_path(layer, v.version).read_bytes()

    # --- writing -----------------------------------------------------------
    def write(self, layer, gdf, *, author, message="", if_version=None, time=None) -> Version:
        self._check_layer(layer)
        if gdf.crs is not None and not (gdf.crs.equals("EPSG:4326") or gdf.crs.equals("OGC:CRS84")):
            raise BadRequest(says("store.wgs84", crs=gdf.crs.to_string()))
        data = geojson.to_bytes(gdf)
        with self.lock(layer):
            self._sweep(layer)
            versions = self.versions(layer)
            current = versions[-1].version if versions else 0
            if if_version is not None and if_version != current:
                raise PreconditionFailed(says("store.at_version", layer=layer, current=current, given=if_version))
            new = Version(
                layer=layer, version=current + 1,
                time=time or datetime.now(timezone.utc).isoformat(timespec="seconds"),
                author=author, message=message, features=len(gdf),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            # The data file first, then the manifest that makes it visible: a crash
            # between the two leaves an unlisted file that the next write replaces.
            path = self._version_path(layer, new.version)
            try:
                atomic_write(path, data)
                manifest = {"versions": [_manifest_entry(v) for v in versions + [new]]}
                atomic_write(self._dir(layer) / self.MANIFEST,
                             json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
            except BaseException as e:
                self._forget_unlisted(layer, new.version)
                if isinstance(e, OSError) and e.errno in NO_SPACE:
                    raise InsufficientStorage(says("store.disk_full_version", version=new.version, layer=layer,
                                                   mib=f"{len(data) / 2**20:.1f}")) from e
                raise
        return new

    def _forget_unlisted(self, layer: str, number: int) -> None:
        """After a failed write: remove its data file unless the manifest already lists it."""
        with contextlib.suppress(Exception):
            if all(v.version != number for v in self.versions(layer)):
                self._version_path(layer, number).unlink(missing_ok=True)

    # --- repair ------------------------------------------------------------
    def repair(self) -> list[str]:
        """Rebuild every damaged layer record from the version files present; a line for each layer repaired.

        An entry of the damaged manifest that can still be read keeps its time,
        author and message; a version file it does not list gets a note instead.
        Features and checksums are taken from the files; a file that is not
        GeoJSON is left out.  The damaged manifest is kept beside the new one.
        """
        done = []
        for layer in self.layer_names:
            with self.lock(layer):
                self._manifests.pop(layer, None)
                try:
                    self._check_files(layer)
                    continue
                except DamagedStore:
                    pass
                done.append(self._rebuild(layer))
        return done

    def _rebuild(self, layer: str) -> str:
        manifest = self._dir(layer) / self.MANIFEST
        known, whole = _salvage(manifest.read_bytes()) if manifest.exists() else ({}, False)
        versions, skipped = [], []
        for path in sorted(self._dir(layer).glob("v*.geojson")):
            match = re.fullmatch(r"v([0-9]{6,})\.geojson", path.name)
            if not match or (whole and int(match[1]) not in known):
                continue  # a write that never reached the manifest of a whole record: never stored
            number, data = int(match[1]), path.read_bytes()
            try:
                features = len(json.loads(data)["features"])
            except (ValueError, TypeError, KeyError):
                skipped.append(path.name)
                continue
            entry = known.get(number, {})
            time = entry.get("time") if isinstance(entry.get("time"), str) else datetime.fromtimestamp(
                path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
            versions.append(Version(
                layer=layer, version=number, time=time,
                author=entry.get("author") if isinstance(entry.get("author"), str) else None,
                message=entry["message"] if isinstance(entry.get("message"), str)
                else "recovered by `python -m server repair`: its record was lost",
                features=features, sha256=hashlib.sha256(data).hexdigest()))
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        kept = manifest.with_name(f"{self.MANIFEST}.damaged-{stamp}") if manifest.exists() else None
        if kept:
            os.replace(manifest, kept)
        atomic_write(manifest, json.dumps({"versions": [_manifest_entry(v) for v in versions]},
                                          ensure_ascii=False, indent=1).encode("utf-8"))
        self._manifests.pop(layer, None)
        recovered = sum(1 for v in versions if v.version not in known)
        return says("store.rebuilt", count=len(versions), layer=layer, path=manifest,
                    recovered=says("store.rebuilt_recovered", n=recovered) if recovered else "",
                    skipped=says("store.rebuilt_skipped", names=", ".join(skipped)) if skipped else "",
                    kept=says("store.rebuilt_kept", name=kept.name) if kept else says("store.rebuilt_none"))

    def _sweep(self, layer: str) -> None:
        """Remove temp files a killed writer left behind (safe: we hold the layer's lock)."""
        for stale in self._dir(layer).glob(".*.tmp"):
            stale.unlink(missing_ok=True)

    def lock(self, name: str) -> FileLock:
        return FileLock(self.root / "locks" / f"{name}.lock")

    # --- paths -------------------------------------------------------------
    def _dir(self, layer: str) -> Path:
        return self.root / "layers" / layer

    def _version_path(self, layer: str, number: int) -> Path:
        return self._dir(layer) / f"v{number:06d}.geojson"


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_FIELDS = {"version": int, "time": str, "author": (str, type(None)), "message": str, "features": int, "sha256": str}


def _version(layer: str, entry: dict) -> Version:
    """A manifest entry, its fields and types checked (TypeError otherwise)."""
    if not isinstance(entry, dict) or set(entry) != set(_FIELDS):
        raise TypeError(f"an entry is not a version record: {str(entry)[:100]}")
    for name, kind in _FIELDS.items():
        if not isinstance(entry[name], kind) or isinstance(entry[name], bool):
            raise TypeError(f"'{name}' of version {entry.get('version')!r} is {entry[name]!r}")
    return Version(layer=layer, **entry)


def _salvage(raw: bytes) -> tuple[dict[int, dict], bool]:
    """The readable entries of a (possibly truncated) manifest by version, and whether it was whole."""
    try:
        entries = json.loads(raw)["versions"]
        return {e["version"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("version"), int)}, True
    except (ValueError, TypeError, KeyError):
        pass
    text = raw.decode("utf-8", "replace")
    start = text.find("[", text.find('"versions"'))
    decoder, found, at = json.JSONDecoder(), {}, start + 1
    while start >= 0:  # read entry after entry until the damage
        at = text.find("{", at)
        if at < 0:
            break
        try:
            entry, at = decoder.raw_decode(text, at)
        except ValueError:
            break
        if isinstance(entry, dict) and isinstance(entry.get("version"), int):
            found[entry["version"]] = entry
    return found, False


def _manifest_entry(v: Version) -> dict:
    entry = v.to_dict()
    del entry["layer"]
    return entry


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
