"""Versioned layer storage.

``Store`` is the interface every backend answers (a PostGIS store will sit
beside ``FileStore``); routes and analysis only ever talk to it.  Every write
makes a new, numbered, immutable version; nothing is ever changed in place.

FileStore layout (one folder a layer)::

    DATA_DIR/layers/grids/manifest.json      {"versions": [{version, time, author, ...}, ...]}
    DATA_DIR/layers/grids/v000001.geojson    RFC 7946, one file a version
    DATA_DIR/locks/grids.lock                serialises writers across processes
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
from filelock import FileLock

from . import geojson
from .cache import VersionCache
from .errors import BadRequest, NotFound, PreconditionFailed
from .schema import LAYERS


@dataclass(frozen=True)
class Version:
    layer: str
    version: int
    time: str  # ISO 8601, UTC
    author: str | None
    message: str
    features: int
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


class Store(abc.ABC):
    """What gridmap needs of storage.  Frames returned are shared: treat them as read-only."""

    layer_names = tuple(LAYERS)

    @abc.abstractmethod
    def versions(self, layer: str) -> list[Version]:
        """Every version of ``layer``, oldest first; [] if it was never written."""

    def current(self, layer: str) -> Version | None:
        versions = self.versions(layer)
        return versions[-1] if versions else None

    def version(self, layer: str, number: int | None = None) -> Version:
        """The given version (the current one when None); NotFound if there is none."""
        versions = self.versions(layer)
        if number is None:
            if not versions:
                raise NotFound(f"layer '{layer}' has no data yet")
            return versions[-1]
        for v in versions:
            if v.version == number:
                return v
        raise NotFound(f"layer '{layer}' has no version {number}")

    @abc.abstractmethod
    def read(self, layer: str, version: int | None = None) -> gpd.GeoDataFrame:
        """The layer's features at ``version`` (current when None), EPSG:4326."""

    @abc.abstractmethod
    def read_geojson(self, layer: str, version: int | None = None) -> bytes:
        """The layer at ``version`` as RFC 7946 GeoJSON bytes, exactly as stored."""

    @abc.abstractmethod
    def write(self, layer: str, gdf: gpd.GeoDataFrame, *, author: str | None, message: str = "",
              if_version: int | None = None) -> Version:
        """Store ``gdf`` as the layer's next version, all or nothing.

        ``if_version`` makes the write conditional: PreconditionFailed unless
        the current version number equals it (0 = the layer is still empty).
        """

    @abc.abstractmethod
    def lock(self, name: str) -> contextlib.AbstractContextManager:
        """A lock shared by every process using this store (e.g. one cold-start computation)."""

    def _check_layer(self, layer: str) -> None:
        if layer not in self.layer_names:
            raise NotFound(f"no layer '{layer}'; layers are {', '.join(self.layer_names)}")


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
        versions = [Version(layer=layer, **v) for v in json.loads(path.read_bytes())["versions"]]
        self._manifests[layer] = (stamp, versions)
        return versions

    def read(self, layer: str, version: int | None = None) -> gpd.GeoDataFrame:
        v = self.version(layer, version)
        return self._frames.get((layer, v.version),
                                lambda: geojson.read(self.read_geojson(layer, v.version), LAYERS[layer]))

    def read_geojson(self, layer: str, version: int | None = None) -> bytes:
        v = self.version(layer, version)
        return self._version_path(layer, v.version).read_bytes()

    # --- writing -----------------------------------------------------------
    def write(self, layer, gdf, *, author, message="", if_version=None) -> Version:
        self._check_layer(layer)
        if gdf.crs is not None and not (gdf.crs.equals("EPSG:4326") or gdf.crs.equals("OGC:CRS84")):
            raise BadRequest(f"layers are stored in WGS84 lon/lat, not {gdf.crs.to_string()}")
        data = geojson.to_bytes(gdf)
        with self.lock(layer):
            self._sweep(layer)
            versions = self.versions(layer)
            current = versions[-1].version if versions else 0
            if if_version is not None and if_version != current:
                raise PreconditionFailed(f"layer '{layer}' is at version {current}, not {if_version}")
            new = Version(
                layer=layer, version=current + 1,
                time=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                author=author, message=message, features=len(gdf),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            # The data file first, then the manifest that makes it visible: a crash
            # between the two leaves an unlisted file that the next write replaces.
            atomic_write(self._version_path(layer, new.version), data)
            manifest = {"versions": [_manifest_entry(v) for v in versions + [new]]}
            atomic_write(self._dir(layer) / self.MANIFEST,
                          json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
        return new

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
