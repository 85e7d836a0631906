"""The embedded store: one SQLite database in the data directory, no server to run.

Every gunicorn worker (and job process) opens its own connections; SQLite's
write-ahead log lets readers go on while one writer holds ``BEGIN IMMEDIATE``,
and each write is one transaction, so a killed writer leaves the last whole
version (no rename tricks).  Features carry the versions they live in
(``version_from`` ≤ n < ``version_to``); an R*Tree over their bounding boxes
answers ``bbox`` in place.

    DATA_DIR/gridmap.sqlite     versions, features, features_rtree
    DATA_DIR/locks/NAME.lock    locks held across processes (``Store.lock``)
    DATA_DIR/results/SHA256     results shared by the workers (``Store.shared``)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import geopandas as gpd
import shapely
from filelock import FileLock

from .. import cql
from ..cache import VersionCache
from ..errors import (DamagedStore, InsufficientStorage, NotFound, PreconditionFailed,
                      ServiceUnavailable)
from ..i18n import says
from ..schema import LAYERS
from .base import (ChangeSetStore, FeaturePage, Version, add_hashes, change_set, frame_from, imported, keyed_texts,
                   numeric_filter, properties_text, property_matches, text_hash)
from .files import NO_SPACE, atomic_write

ALIVE = 2**62  # version_to of features still in the current version
FILE = "gridmap.sqlite"
CHUNK = 500  # keys per IN (...) list: well under SQLite's parameter limit
CACHE_KIB = 8192  # SQLite's page cache a connection (its default is 2 MiB); reads go through the OS's cache
WRITE_CACHE_KIB = 131072  # ... and while it writes
_FORKED: list[sqlite3.Connection] = []  # connections a forked process inherited

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    layer TEXT NOT NULL, version INTEGER NOT NULL, time TEXT NOT NULL, author TEXT, message TEXT NOT NULL,
    features INTEGER NOT NULL, sha256 TEXT NOT NULL, fields TEXT NOT NULL, extent TEXT,
    PRIMARY KEY (layer, version));
CREATE TABLE IF NOT EXISTS features (
    id INTEGER PRIMARY KEY, layer TEXT NOT NULL, key TEXT NOT NULL,
    version_from INTEGER NOT NULL, version_to INTEGER NOT NULL,
    hash TEXT NOT NULL, feature TEXT NOT NULL, props TEXT NOT NULL, geom BLOB,
    minx REAL, miny REAL, maxx REAL, maxy REAL);
CREATE INDEX IF NOT EXISTS features_by_version ON features (layer, version_to, key);
-- what versions opened (changes, for the analysis' updates) and a feature's own rows (history): kept on
-- insert only, as SQLite updates only the indexes of the columns an UPDATE sets (version_to)
CREATE INDEX IF NOT EXISTS features_opened ON features (layer, version_from);
CREATE INDEX IF NOT EXISTS features_by_key ON features (layer, key, version_from);
CREATE VIRTUAL TABLE IF NOT EXISTS features_rtree USING rtree (id, minx, maxx, miny, maxy);
"""


def _translated(method):
    """SQLite's errors as the service's: a full disk 507, a busy database 503, a damaged file named."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            text = str(e)
            if "full" in text:
                raise InsufficientStorage(says("store.disk_full_nothing")) from e
            if "locked" in text or "busy" in text:
                raise ServiceUnavailable(says("store.busy_write"),
                                         retry_after=5) from e
            raise DamagedStore(says("store.db_unreadable", path=self.path, reason=text),
                               self.path) from e
    return wrapper


class SQLiteStore(ChangeSetStore):
    """Versioned features in ``DATA_DIR/gridmap.sqlite``, shared safely by several processes."""

    CACHE_SIZE = 4  # whole frames kept for the analysis: the current layers and one more

    def __init__(self, data_dir: str | os.PathLike):
        self.root = Path(data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "locks").mkdir(exist_ok=True)
        self.path = self.root / FILE
        self._local = threading.local()
        self._frames = VersionCache(self.CACHE_SIZE)
        self._records = VersionCache(256)  # fields and extents of versions: asked by every items request
        self._versions: dict[str, tuple[int, list[Version]]] = {}
        with self.lock("schema"):
            _translated(lambda store: store._db().executescript(SCHEMA))(self)

    @property
    def location(self) -> str:
        return str(self.root)

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork: connections never cross processes)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            if getattr(local, "db", None) is not None:
                _FORKED.append(local.db)  # the parent's: never used nor closed here (closing could end its WAL)
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed version survives a power cut, not only a kill
            # no memory-mapping: pages a worker touched would count in its memory, a province's layer
            # is 130 MB, and reads through the OS's page cache are as fast here
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            # what CQL2 filters need beyond SQLite's own functions (geodata.cql.sqlite_where)
            db.create_function("gridmap_intersects", 2, cql.sqlite_intersects, deterministic=True)
            db.create_function("gridmap_lower", 1, cql.sqlite_lower, deterministic=True)
            local.db, local.pid = db, os.getpid()
        return local.db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            db.close()
        self._local = threading.local()

    # --- versions ------------------------------------------------------------------------------
    @_translated
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
            raise DamagedStore(says("store.db_damaged", path=self.path, reason=found), self.path)

    # --- features ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self, v: Version):
        """A connection in a read transaction (one snapshot of the database), and the condition that selects
        the rows of version ``v``: the current one through its index, any other by its range.  The snapshot
        keeps a version stored meanwhile by another process out of the rows read."""
        db = self._db()
        db.execute("BEGIN")
        try:
            current = db.execute("SELECT max(version) FROM versions WHERE layer = ?", (v.layer,)).fetchone()[0]
            if v.version == current:
                yield db, "f.layer = ? AND f.version_to = ?", (v.layer, ALIVE)
            else:
                yield db, "f.layer = ? AND f.version_from <= ? AND f.version_to > ?", (v.layer, v.version, v.version)
        finally:
            db.execute("COMMIT")

    @_translated
    def query(self, layer: str, version: int | None = None, *, bbox: Sequence[float] | None = None,
              filters: Sequence[tuple[str, str]] = (), limit: int | None = None, offset: int = 0,
              where=None, sortby: Sequence[tuple[str, bool, bool]] = ()) -> FeaturePage:
        v = self.version(layer, version)
        with self._reading(v) as (db, rows_of, args):
            if bbox is None and not filters and where is None and not sortby:
                rows = db.execute(f"SELECT f.feature FROM features f WHERE {rows_of} ORDER BY f.key LIMIT ? OFFSET ?",
                                  (*args, -1 if limit is None else limit, offset)).fetchall()
                return FeaturePage([r[0] for r in rows], v.features)
            ids = self._matching(db, v, rows_of, args, bbox, filters, where, sortby)
            chosen = ids[offset:None if limit is None else offset + limit]
            return FeaturePage(self._texts(db, chosen), len(ids))

    def _matching(self, db, v: Version, rows_of: str, args: tuple, bbox, filters, where=None,
                  sortby=()) -> list[int]:
        """Row ids of the version's features in ``bbox`` with ``filters`` that the CQL2 filter ``where``
        selects, in key order (``sortby``'s first).  The R*Tree narrows to ``bbox``, or else to a
        top-level S_INTERSECTS's box; ``where`` itself runs as SQL."""
        layer = LAYERS[v.layer]
        tests = [(raw, numeric_filter(layer, name, raw)) for name, raw in filters]
        paths = ["$.properties." + json.dumps(name) for name, _ in filters]
        columns = "f.id, f.key" + "".join(", json_extract(f.feature, ?)" for _ in paths)
        condition, condition_args = cql.sqlite_where(where) if where is not None else ("1", [])
        order, order_args = cql.sqlite_order(sortby)
        box = bbox if bbox is not None else (where.box if where is not None else None)
        if box is None:
            sql = f"SELECT {columns}, 1 FROM features f WHERE {rows_of} AND {condition} ORDER BY {order}f.key"
            params = (*paths, *args, *condition_args, *order_args)
        else:
            minx, miny, maxx, maxy = box
            inside = bbox if bbox is not None else (-math.inf, -math.inf, math.inf, math.inf)  # only bbox is exact
            sql = (f"SELECT {columns}, (r.minx >= ? AND r.maxx <= ? AND r.miny >= ? AND r.maxy <= ?) "
                   f"FROM features_rtree r CROSS JOIN features f ON f.id = r.id "  # the R*Tree first: SQLite
                   # would otherwise walk the whole layer by its index and probe the tree row by row (17 ms, not 0.2)
                   f"WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ? AND {rows_of} "
                   f"AND {condition} ORDER BY {order}f.key")
            params = (*paths, inside[0], inside[2], inside[1], inside[3], maxx, minx, maxy, miny, *args,
                      *condition_args, *order_args)
        rows = db.execute(sql, params).fetchall()
        if tests:
            rows = [r for r in rows
                    if all(property_matches(r[2 + i], raw, numeric) for i, (raw, numeric) in enumerate(tests))]
        if bbox is not None:  # boxes that only cross the bbox: test the geometry itself
            crossing = [r[0] for r in rows if not r[-1]]
            outside = set(crossing) - set(self._intersecting(db, crossing, bbox))
            rows = [r for r in rows if r[0] not in outside]
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

    @_translated
    def get(self, layer: str, key: str, version: int | None = None) -> str:
        v = self.version(layer, version)
        with self._reading(v) as (db, where, args):
            row = db.execute(f"SELECT f.feature FROM features f WHERE {where} AND f.key = ?",
                             (*args, str(key))).fetchone()
        if row is None:
            raise NotFound(says("error.no_feature", key=key, layer=layer))
        return row[0]

    def extent(self, layer: str, version: int | None = None) -> list[float] | None:
        return self._record(layer, version, "extent")

    def fields(self, layer: str, version: int | None = None) -> list[str]:
        return self._record(layer, version, "fields")

    @_translated
    def _record(self, layer: str, version: int | None, column: str):
        """A JSON column of the version's record (computed when it was written; a version never changes)."""
        v = self.version(layer, version)

        def read():
            row = self._db().execute(f"SELECT {column} FROM versions WHERE layer = ? AND version = ?",
                                     (layer, v.version)).fetchone()
            return json.loads(row[0])

        return self._records.get((layer, v.version, v.sha256, column), read)

    def read(self, layer: str, version: int | None = None) -> gpd.GeoDataFrame:
        v = self.version(layer, version)
        return self._frames.get((layer, v.sha256, v.version), lambda: self._frame(v))

    @_translated
    def _frame(self, v: Version) -> gpd.GeoDataFrame:
        with self._reading(v) as (db, where, args):
            rows = db.execute(f"SELECT f.props, f.geom FROM features f WHERE {where} ORDER BY f.key",
                              args).fetchall()
        return frame_from([r[0] for r in rows], [r[1] for r in rows], self.fields(v.layer, v.version),
                          LAYERS[v.layer])

    @_translated
    def read_keys(self, layer: str, version: int, keys: Iterable[str]) -> gpd.GeoDataFrame:
        v = self.version(layer, version)
        keys = sorted({str(k) for k in keys})
        rows = []
        with self._reading(v) as (db, where, args):
            for start in range(0, len(keys), 500):  # SQLite's limit on parameters
                chunk = keys[start:start + 500]
                rows += db.execute(f"SELECT f.key, f.props, f.geom FROM features f WHERE {where} AND f.key IN "
                                   f"({','.join('?' * len(chunk))})", (*args, *chunk)).fetchall()
        rows.sort(key=lambda r: r[0])
        return frame_from([r[1] for r in rows], [r[2] for r in rows], self.fields(v.layer, v.version),
                          LAYERS[v.layer])

    # --- writes --------------------------------------------------------------------------------
    def _commit(self, layer: str, rows: dict[str, tuple], removed: set[str] | None, author, message,
                if_version, fields, time: str | None) -> Version:
        """One transaction: check ``if_version``, close the rows that change or go, add the new ones.

        ``removed`` None: ``rows`` is the whole layer (anything else goes); otherwise only ``rows``
        and ``removed`` change.
        """
        return self._transaction(layer, lambda db: self._apply(db, layer, rows, removed, author, message,
                                                               if_version, fields, time))

    def import_history(self, layer: str, history: Iterable[tuple[Version, gpd.GeoDataFrame]]) -> list[Version]:
        """The whole history in one transaction: every number kept (gaps too), all or nothing."""
        self._check_layer(layer)

        def run(db) -> list[Version]:
            done, seen = [], {}
            for old, gdf in history:
                rows, fields = self._whole(gdf, layer)
                new = self._apply(db, layer, rows, None, old.author, old.message,
                                  done[-1].version if done else 0, lambda _: fields, old.time, old.version)
                imported(old, new, seen)
                done.append(new)
            return done

        return self._transaction(layer, run)

    @_translated
    def _transaction(self, layer: str, work):
        """``work(db)`` in one write transaction: committed whole, or rolled back on any error."""
        db = self._db()
        # a province's layer rewritten: its index pages stay in memory instead of going to and fro (freed after)
        db.execute(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")
        db.execute("BEGIN IMMEDIATE")  # one writer at a time, in every process
        try:
            result = work(db)
            db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if "full" in str(e):
                raise InsufficientStorage(says("store.disk_full_layer", layer=layer)) from e
            raise
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            with contextlib.suppress(sqlite3.Error):
                db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._versions.pop(layer, None)
        return result

    def _apply(self, db, layer, rows, removed, author, message, if_version, fields, time,
               number: int | None = None) -> Version:
        """Version ``number`` (the next one when None) of ``layer``, inside the caller's transaction."""
        last = db.execute("SELECT version, sha256, features, fields FROM versions WHERE layer = ? "
                          "ORDER BY version DESC LIMIT 1", (layer,)).fetchone()
        current, sha, count, previous = last if last else (0, "0" * 64, 0, "[]")
        if if_version is not None and if_version != current:
            raise PreconditionFailed(says("store.at_version", layer=layer, current=current, given=if_version))
        new = current + 1 if number is None else number
        if new <= current:
            raise PreconditionFailed(says("store.cannot_follow", layer=layer, current=current, new=new))
        if removed is None:
            live = db.execute("SELECT key, id, hash FROM features WHERE layer = ? AND version_to = ?",
                              (layer, ALIVE)).fetchall()
        else:
            live = []
            for part in _chunks(sorted({*rows, *removed})):
                live += db.execute(f"SELECT key, id, hash FROM features WHERE layer = ? AND version_to = ? "
                                   f"AND key IN ({_marks(part)})", (layer, ALIVE, *part)).fetchall()
        live = {key: (row_id, h) for key, row_id, h in live}
        gone, changed, added = change_set(layer, live, rows, removed)
        closing = sorted(live[k][0] for k in [*gone, *changed])  # in the order of the table and its index
        for part in _chunks(closing):
            db.execute(f"UPDATE features SET version_to = ? WHERE id IN ({_marks(part)})", (new, *part))
        first = (db.execute("SELECT max(id) FROM features").fetchone()[0] or 0) + 1
        writing = [(first + i, key, *rows[key]) for i, key in enumerate(sorted([*changed, *added]))]  # index order
        db.executemany("INSERT INTO features (id, layer, key, version_from, version_to, hash, feature, props, geom, "
                       "minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       ((i, layer, key, new, ALIVE, h, text, props, wkb, *(box or (None,) * 4))
                        for i, key, text, h, props, wkb, box in writing))
        db.executemany("INSERT INTO features_rtree VALUES (?, ?, ?, ?, ?)",
                       ((i, *box) for i, _, _, _, _, _, box in writing if box is not None))
        sha = add_hashes(sha, [rows[k][1] for k in [*changed, *added]], [live[k][1] for k in [*gone, *changed]])
        time = time or datetime.now(timezone.utc).isoformat(timespec="seconds")
        version = Version(layer=layer, version=new, time=time, author=author, message=message,
                          features=count + len(added) - len(gone), sha256=sha)
        box = db.execute("SELECT min(minx), min(miny), max(maxx), max(maxy) FROM features "
                         "WHERE layer = ? AND version_to = ?", (layer, ALIVE)).fetchone()
        db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (layer, new, version.time, author, message, version.features, sha,
                    json.dumps(fields(json.loads(previous)), ensure_ascii=False),
                    json.dumps(None if box[0] is None else [round(b, 6) for b in box])))
        return version

    @staticmethod
    def _rows(gdf: gpd.GeoDataFrame, layer) -> dict[str, tuple]:
        """key -> (text, hash, properties, WKB, (minx, maxx, miny, maxy) or None) for each feature."""
        keys, texts, geoms = keyed_texts(gdf, layer)
        rows = {}
        for key, wkb, (minx, miny, maxx, maxy) in zip(keys, shapely.to_wkb(geoms), shapely.bounds(geoms).tolist()):
            text = texts[key]
            box = None if minx != minx else (minx, maxx, miny, maxy)  # NaN: no geometry
            rows[key] = (text, text_hash(text), properties_text(text), wkb, box)
        return rows

    @_translated
    def _crossing(self, layer: str, old: int, new: int) -> tuple[dict[str, str], dict[str, str]]:
        db = self._db()
        before = db.execute("SELECT key, hash FROM features WHERE layer = ? AND version_to > ? AND version_to <= ? "
                            "AND version_from <= ?", (layer, old, new, old))
        after = db.execute("SELECT key, hash FROM features WHERE layer = ? AND version_from > ? AND version_from <= ? "
                           "AND version_to > ?", (layer, old, new, new))
        return dict(before.fetchall()), dict(after.fetchall())

    @_translated
    def _key_rows(self, layer: str, key: str) -> list[tuple[int, int | None]]:
        rows = self._db().execute("SELECT version_from, version_to FROM features WHERE layer = ? AND key = ? "
                                  "ORDER BY version_from", (layer, key)).fetchall()
        return [(start, None if end >= ALIVE else end) for start, end in rows]

    @_translated
    def _stored_rows(self, layer: str, number: int) -> dict[str, tuple]:
        rows = self._db().execute("SELECT key, feature, hash, props, geom, minx, maxx, miny, maxy FROM features "
                                  "WHERE layer = ? AND version_from <= ? AND version_to > ?", (layer, number, number))
        return {key: (text, h, props, wkb, None if minx is None else (minx, maxx, miny, maxy))
                for key, text, h, props, wkb, minx, maxx, miny, maxy in rows}

    def lock(self, name: str) -> FileLock:
        return FileLock(self.root / "locks" / f"{name}.lock")

    # results: files beside the database (one machine shares this store), never rows in it (its WAL)
    def _result_path(self, key: str) -> Path:
        return self.root / "results" / hashlib.sha256(key.encode()).hexdigest()

    def _load_result(self, key: str) -> bytes | None:
        path = self._result_path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # used: the last to go when old ones are dropped
        return data

    def _save_result(self, key: str, data: bytes) -> None:
        path = self._result_path(key)
        try:
            atomic_write(path, data)
        except OSError as e:
            if e.errno in NO_SPACE:
                raise InsufficientStorage(says("store.disk_full")) from e
            raise
        kept = sorted(path.parent.glob("[0-9a-f]" * 64), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[self.RESULTS_KEPT:]:
            old.unlink(missing_ok=True)




def _chunks(values: Sequence, size: int = CHUNK) -> Iterable[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _marks(part: Sequence) -> str:
    return ", ".join("?" * len(part))
