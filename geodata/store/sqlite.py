"""The embedded store: one SQLite database in the data directory, no server to run.

Every gunicorn worker (and job process) opens its own connections; SQLite's
write-ahead log lets readers go on while one writer holds ``BEGIN IMMEDIATE``,
and each write is one transaction, so a killed writer leaves the last whole
version (no rename tricks).  Features carry the versions they live in
(``version_from`` ≤ n < ``version_to``); an R*Tree over their bounding boxes
answers ``bbox`` in place.

    DATA_DIR/gridmap.sqlite     versions, features, features_rtree
    DATA_DIR/locks/NAME.lock    locks held across processes (``Store.lock``)
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import geopandas as gpd
import numpy as np
import shapely
from filelock import FileLock

from .. import geojson
from ..cache import VersionCache
from ..errors import BadRequest, DamagedStore, InsufficientStorage, NotFound, PreconditionFailed
from ..schema import LAYERS
from .base import (FeaturePage, Store, Version, add_hashes, feature_texts, frame_from, numeric_filter,
                   property_matches, storable, text_hash)
from .files import NO_SPACE

ALIVE = 2**62  # version_to of features still in the current version
FILE = "gridmap.sqlite"
CHUNK = 500  # keys per IN (...) list: well under SQLite's parameter limit

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    layer TEXT NOT NULL, version INTEGER NOT NULL, time TEXT NOT NULL, author TEXT, message TEXT NOT NULL,
    features INTEGER NOT NULL, sha256 TEXT NOT NULL, fields TEXT NOT NULL,
    PRIMARY KEY (layer, version));
CREATE TABLE IF NOT EXISTS features (
    id INTEGER PRIMARY KEY, layer TEXT NOT NULL, key TEXT NOT NULL,
    version_from INTEGER NOT NULL, version_to INTEGER NOT NULL,
    hash TEXT NOT NULL, feature TEXT NOT NULL, geom BLOB);
CREATE INDEX IF NOT EXISTS features_by_version ON features (layer, version_to, key);
CREATE INDEX IF NOT EXISTS features_by_key ON features (layer, key, version_from);
CREATE VIRTUAL TABLE IF NOT EXISTS features_rtree USING rtree (id, minx, maxx, miny, maxy);
"""


class SQLiteStore(Store):
    """Versioned features in ``DATA_DIR/gridmap.sqlite``, shared safely by several processes."""

    CACHE_SIZE = 4  # whole frames kept for the analysis: the current layers and one more

    def __init__(self, data_dir: str | os.PathLike):
        self.root = Path(data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "locks").mkdir(exist_ok=True)
        self.path = self.root / FILE
        self._local = threading.local()
        self._frames = VersionCache(self.CACHE_SIZE)
        self._versions: dict[str, tuple[int, list[Version]]] = {}
        with self.lock("schema"):
            self._db().executescript(SCHEMA)

    @property
    def location(self) -> str:
        return str(self.root)

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork: connections never cross processes)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed version survives a power cut, not only a kill
            local.db, local.pid = db, os.getpid()
        return local.db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            db.close()
        self._local = threading.local()

    # --- versions ------------------------------------------------------------------------------
    def versions(self, layer: str) -> list[Version]:
        self._check_layer(layer)
        db = self._db()
        stamp = db.execute("SELECT max(rowid) FROM versions").fetchone()[0] or 0  # rows are only ever added
        cached = self._versions.get(layer)
        if cached and cached[0] == stamp:
            return cached[1]
        rows = db.execute("SELECT version, time, author, message, features, sha256 FROM versions "
                          "WHERE layer = ? ORDER BY version", (layer,)).fetchall()
        versions = [Version(layer, *row) for row in rows]
        self._versions[layer] = (stamp, versions)
        return versions

    def check(self) -> None:
        try:
            found = self._db().execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as e:
            found = str(e)
        if found != "ok":
            raise DamagedStore(f"the database {self.path} is damaged ({found}); restore it from a backup", self.path)

    # --- features ------------------------------------------------------------------------------
    def _where(self, v: Version) -> tuple[str, tuple]:
        """The rows of version ``v``: the current one through its index, any other by its range."""
        if v.version == self._current_number(v.layer):
            return "f.layer = ? AND f.version_to = ?", (v.layer, ALIVE)
        return "f.layer = ? AND f.version_from <= ? AND f.version_to > ?", (v.layer, v.version, v.version)

    def _current_number(self, layer: str) -> int:
        current = self.current(layer)
        return current.version if current else 0

    def query(self, layer: str, version: int | None = None, *, bbox: Sequence[float] | None = None,
              filters: Sequence[tuple[str, str]] = (), limit: int | None = None, offset: int = 0) -> FeaturePage:
        v = self.version(layer, version)
        where, args = self._where(v)
        db = self._db()
        if bbox is None and not filters:
            rows = db.execute(f"SELECT f.feature FROM features f WHERE {where} ORDER BY f.key LIMIT ? OFFSET ?",
                              (*args, -1 if limit is None else limit, offset)).fetchall()
            return FeaturePage([r[0] for r in rows], v.features)
        ids = self._matching(db, v, where, args, bbox, filters)
        chosen = ids[offset:None if limit is None else offset + limit]
        return FeaturePage(self._texts(db, chosen), len(ids))

    def _matching(self, db, v: Version, where: str, args: tuple, bbox, filters) -> list[int]:
        """Row ids of the version's features in ``bbox`` with ``filters``, in key order."""
        layer = LAYERS[v.layer]
        tests = [(raw, numeric_filter(layer, name, raw)) for name, raw in filters]
        paths = ["$.properties." + json.dumps(name) for name, _ in filters]
        columns = "f.id, f.key" + "".join(", json_extract(f.feature, ?)" for _ in paths)
        if bbox is None:
            sql, params = f"SELECT {columns}, 1 FROM features f WHERE {where}", (*paths, *args)
        else:
            minx, miny, maxx, maxy = bbox
            sql = (f"SELECT {columns}, (r.minx >= ? AND r.maxx <= ? AND r.miny >= ? AND r.maxy <= ?) "
                   f"FROM features_rtree r CROSS JOIN features f ON f.id = r.id "  # the R*Tree first: SQLite
                   # would otherwise walk the whole layer by its index and probe the tree row by row (17 ms, not 0.2)
                   f"WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ? AND {where}")
            params = (*paths, minx, maxx, miny, maxy, maxx, minx, maxy, miny, *args)
        rows = [r for r in db.execute(sql, params)
                if all(property_matches(r[2 + i], raw, numeric) for i, (raw, numeric) in enumerate(tests))]
        if bbox is not None:  # boxes that only cross the bbox: test the geometry itself
            crossing = [r[0] for r in rows if not r[-1]]
            outside = set(crossing) - set(self._intersecting(db, crossing, bbox))
            rows = [r for r in rows if r[0] not in outside]
        rows.sort(key=lambda r: r[1])
        return [r[0] for r in rows]

    def _intersecting(self, db, ids: list[int], bbox) -> list[int]:
        hits = []
        box = shapely.box(*bbox)
        for part in _chunks(ids):
            rows = db.execute(f"SELECT id, geom FROM features WHERE id IN ({_marks(part)})", part).fetchall()
            geoms = shapely.from_wkb([r[1] for r in rows])
            hits.extend(r[0] for r, hit in zip(rows, shapely.intersects(geoms, box)) if hit)
        return hits

    def _texts(self, db, ids: list[int]) -> list[str]:
        texts = {}
        for part in _chunks(ids):
            texts.update(db.execute(f"SELECT id, feature FROM features WHERE id IN ({_marks(part)})", part))
        return [texts[i] for i in ids]

    def get(self, layer: str, key: str, version: int | None = None) -> str:
        v = self.version(layer, version)
        where, args = self._where(v)
        row = self._db().execute(f"SELECT f.feature FROM features f WHERE {where} AND f.key = ?",
                                 (*args, str(key))).fetchone()
        if row is None:
            raise NotFound(f"no feature '{key}' in {layer}")
        return row[0]

    def extent(self, layer: str, version: int | None = None) -> list[float] | None:
        v = self.version(layer, version)
        where, args = self._where(v)
        row = self._db().execute(f"SELECT min(r.minx), min(r.miny), max(r.maxx), max(r.maxy) FROM features f "
                                 f"JOIN features_rtree r ON r.id = f.id WHERE {where}", args).fetchone()
        if row[0] is None:
            return None
        # the R*Tree keeps 32-bit floats rounded outwards: exact within a few centimetres, enough for an extent
        return [round(float(b), 6) for b in row]

    def fields(self, layer: str, version: int | None = None) -> list[str]:
        v = self.version(layer, version)
        row = self._db().execute("SELECT fields FROM versions WHERE layer = ? AND version = ?",
                                 (layer, v.version)).fetchone()
        return json.loads(row[0])

    def read(self, layer: str, version: int | None = None) -> gpd.GeoDataFrame:
        v = self.version(layer, version)
        return self._frames.get((layer, v.sha256, v.version), lambda: self._frame(v))

    def _frame(self, v: Version) -> gpd.GeoDataFrame:
        where, args = self._where(v)
        rows = self._db().execute(f"SELECT json_extract(f.feature, '$.properties'), f.geom FROM features f "
                                  f"WHERE {where} ORDER BY f.key", args).fetchall()
        return frame_from([r[0] for r in rows], [r[1] for r in rows], self.fields(v.layer, v.version),
                          LAYERS[v.layer])

    # --- writes --------------------------------------------------------------------------------
    def write(self, layer, gdf, *, author, message="", if_version=None, time=None) -> Version:
        self._check_layer(layer)
        gdf = storable(gdf)
        rows = _rows(gdf, LAYERS[layer])
        fields = [c for c in geojson.conform(gdf, LAYERS[layer]).columns if c != gdf.geometry.name]
        return self._commit(layer, rows, None, author, message, if_version, lambda _: fields, time)

    def write_changes(self, layer, *, upserts=None, removed=(), author, message="", if_version=None) -> Version:
        self._check_layer(layer)
        if upserts is not None:
            upserts = storable(upserts)
        rows = _rows(upserts, LAYERS[layer]) if upserts is not None else {}
        removed = {str(k) for k in removed}

        def fields(previous: list[str]) -> list[str]:
            extra = [c for c in (upserts.columns if upserts is not None else ()) if c != "geometry"]
            return list(dict.fromkeys([*previous, *extra]))

        return self._commit(layer, rows, removed, author, message, if_version, fields, None)

    def _commit(self, layer: str, rows: dict[str, tuple], removed: set[str] | None, author, message,
                if_version, fields, time: str | None) -> Version:
        """One transaction: check ``if_version``, close the rows that change or go, add the new ones.

        ``removed`` None: ``rows`` is the whole layer (anything else goes); otherwise only ``rows``
        and ``removed`` change.
        """
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time, in every process
            try:
                new = self._apply(db, layer, rows, removed, author, message, if_version, fields, time)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as e:
            if "full" in str(e) or (isinstance(e.__cause__, OSError) and e.__cause__.errno in NO_SPACE):
                raise InsufficientStorage(f"the server's disk is full: a new version of '{layer}' was not stored "
                                          "(nothing was changed)") from e
            raise
        self._versions.pop(layer, None)
        return new

    def _apply(self, db, layer, rows, removed, author, message, if_version, fields, time) -> Version:
        last = db.execute("SELECT version, sha256, features, fields FROM versions WHERE layer = ? "
                          "ORDER BY version DESC LIMIT 1", (layer,)).fetchone()
        number, sha, count, previous = last if last else (0, "0" * 64, 0, "[]")
        if if_version is not None and if_version != number:
            raise PreconditionFailed(f"layer '{layer}' is at version {number}, not {if_version}")
        if removed is None:
            live = db.execute("SELECT key, id, hash FROM features WHERE layer = ? AND version_to = ?",
                              (layer, ALIVE)).fetchall()
        else:
            live = []
            for part in _chunks(sorted({*rows, *removed})):
                live += db.execute(f"SELECT key, id, hash FROM features WHERE layer = ? AND version_to = ? "
                                   f"AND key IN ({_marks(part)})", (layer, ALIVE, *part)).fetchall()
        live = {key: (row_id, h) for key, row_id, h in live}
        if removed is not None and (missing := removed - set(live)):
            raise NotFound(f"layer '{layer}' has no feature '{sorted(missing)[0]}' to remove")
        gone = set(live) - set(rows) if removed is None else removed
        changed = [k for k, row in rows.items() if k in live and live[k][1] != row[1]]
        added = [k for k in rows if k not in live]
        new = number + 1
        closing = [live[k][0] for k in [*gone, *changed]]
        for part in _chunks(closing):
            db.execute(f"UPDATE features SET version_to = ? WHERE id IN ({_marks(part)})", (new, *part))
        for key in [*changed, *added]:
            text, h, wkb, bounds = rows[key]
            row_id = db.execute("INSERT INTO features (layer, key, version_from, version_to, hash, feature, geom) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)", (layer, key, new, ALIVE, h, text, wkb)).lastrowid
            if bounds is not None:
                db.execute("INSERT INTO features_rtree VALUES (?, ?, ?, ?, ?)", (row_id, *bounds))
        sha = add_hashes(sha, [rows[k][1] for k in [*changed, *added]], [live[k][1] for k in [*gone, *changed]])
        time = time or datetime.now(timezone.utc).isoformat(timespec="seconds")
        version = Version(layer=layer, version=new, time=time, author=author, message=message,
                          features=count + len(added) - len(gone), sha256=sha)
        db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (layer, new, version.time, author, message, version.features, sha,
                    json.dumps(fields(json.loads(previous)), ensure_ascii=False)))
        return version

    def lock(self, name: str) -> FileLock:
        return FileLock(self.root / "locks" / f"{name}.lock")


def _rows(gdf: gpd.GeoDataFrame, layer) -> dict[str, tuple]:
    """key -> (text, hash, WKB, (minx, maxx, miny, maxy) or None) for each feature."""
    texts = feature_texts(gdf, layer)
    if len(texts) != len(gdf):
        raise BadRequest(f"'{layer.key}' repeats a value: every feature needs its own")
    keys = gdf[layer.key].astype(str).to_numpy() if len(gdf) else np.array([], dtype=object)
    geoms = geojson.rfc7946_geometries(gdf.geometry.values)
    wkbs = shapely.to_wkb(geoms)
    bounds = shapely.bounds(geoms)
    rows = {}
    for key, wkb, (minx, miny, maxx, maxy) in zip(keys, wkbs, bounds):
        box = None if np.isnan(minx) else (float(minx), float(maxx), float(miny), float(maxy))
        rows[key] = (texts[key], text_hash(texts[key]), wkb, box)
    return rows


def _chunks(values: Sequence, size: int = CHUNK) -> Iterable[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _marks(part: Sequence) -> str:
    return ", ".join("?" * len(part))
