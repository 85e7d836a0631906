"""The shared store: PostgreSQL + PostGIS, for any number of instances on any machines.

Same model as the embedded engine (``sqlite.py``, the reference): versions are change sets,
a feature row lives ``version_from`` ≤ n < ``version_to``, its GeoJSON kept as the exact text
served.  PostGIS answers ``bbox`` in place (a GiST index, ``&&`` then ``ST_Intersects``),
and pages are cut in SQL.  Each write is one transaction that first takes the layer's
advisory lock, so writers on every instance queue up and exactly one of those sharing an
``if_version`` wins.

A pool of connections, each checked before use, lives through a database restart: while the
database cannot be reached, calls raise ServiceUnavailable (503) naming it, and the first call
after it is back is answered again.

Every write NOTIFYs the layer's name at commit, and each process LISTENs (``VersionNotices``): a
layer's list of versions is read from the database once, then answered from memory until a notice
says another version came (another instance's or worker's write reaches here in milliseconds).

    versions   layer, version, time, author, message, features, sha256, fields
    features   layer, key, version_from, version_to, hash, feature (text), props (jsonb), geom
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import logging
import math
import os
import threading
import time
import weakref
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, Sequence

import geopandas as gpd
import psycopg
import psycopg.conninfo
import psycopg.copy
import psycopg.errors
import shapely
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import cql
from ..cache import VersionCache
from ..errors import BadRequest, DamagedStore, InsufficientStorage, NotFound, PreconditionFailed, ServiceUnavailable
from ..i18n import says
from ..schema import LAYERS
from ..tiles import BUFFER, EXTENT
from .base import (ChangeSetStore, FeaturePage, RowParts, Version, add_hashes, frame_from, gone_keys, keyed_texts,
                   numeric_filter, properties_text, replacing, storable, text_hash)

log = logging.getLogger(__name__)

ALIVE = 2**62  # version_to of features still in the current version
# advisory lock namespaces (the first key of the two-key form): never collide with each other
SCHEMA_LOCK, LAYER_LOCKS, NAMED_LOCKS = 0x67726400, 0x67726401, 0x67726402

# key COLLATE "C": keys sort by code point, as on SQLite and in Python, whatever the database's locale.
# props: the properties again, as jsonb for the filters (jsonb cannot hold \u0000: a NUL reads as U+FFFD there);
# written with the row, not generated: closing a row (version_to) must not compute it again
SCHEMA = r"""
CREATE TABLE IF NOT EXISTS versions (
    id bigserial PRIMARY KEY, layer text NOT NULL, version integer NOT NULL, time text NOT NULL, author text,
    message text NOT NULL, features integer NOT NULL, sha256 text NOT NULL, fields text NOT NULL,
    UNIQUE (layer, version));
CREATE TABLE IF NOT EXISTS features (
    id bigserial PRIMARY KEY, layer text NOT NULL, key text COLLATE "C" NOT NULL,
    version_from bigint NOT NULL, version_to bigint NOT NULL, hash text NOT NULL,
    feature text NOT NULL,
    props jsonb NOT NULL,
    geom geometry(Geometry, 4326));
CREATE TABLE IF NOT EXISTS results (key text PRIMARY KEY, data bytea NOT NULL, used timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS features_by_version ON features (layer, version_to, key);
CREATE INDEX IF NOT EXISTS features_by_key ON features (layer, key, version_from);
CREATE INDEX IF NOT EXISTS features_geom ON features USING gist (geom);
-- what versions opened (changes): rows are appended in version order, so a BRIN of a few pages finds them
-- where a B-tree would be one more index every write keeps
CREATE INDEX IF NOT EXISTS features_opened ON features USING brin (version_from);
"""
COPY_FEATURES = "COPY features (layer, key, version_from, version_to, hash, feature, props, geom) FROM STDIN"
COLUMNS = {"versions": {"id", "layer", "version", "time", "author", "message", "features", "sha256", "fields"},
           "features": {"id", "layer", "key", "version_from", "version_to", "hash", "feature", "props", "geom"}}
# a text a client may send as a number that float8 reads too (float() in property_matches)
NUMBER = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


_INHERITED: list[ConnectionPool] = []
CHANNEL = "gridmap_versions"  # the NOTIFY channel: its payload is the layer written


class VersionNotices:
    """Which layers have new versions, heard on a connection of this process's own that LISTENs.

    ``stamp(layer)`` names what a list of versions read now stays valid for: the same stamp later
    means no version has been committed since (by anyone). It is None while the listener is not
    hearing — not connected, or its connection silent for HEARD_S — and then every list must be read
    again. A thread keeps the connection, proving it alive every BEAT_S.
    """

    BEAT_S = 0.5
    HEARD_S = 2.0
    RETRY_S = 1.0  # between attempts to connect again

    def __init__(self, url: str, connect_timeout: int):
        self._url, self._connect_timeout = url, connect_timeout
        self._changes: collections.Counter[str] = collections.Counter()
        self._epoch = 0  # a new connection may have missed notices: lists read before it are suspect
        self._heard = -math.inf  # when the connection last answered
        self._closed = threading.Event()
        threading.Thread(target=self._listen, name="gridmap-notices", daemon=True).start()

    def stamp(self, layer: str) -> tuple[int, int] | None:
        if time.monotonic() - self._heard > self.HEARD_S:
            return None
        return self._epoch, self._changes[layer]

    def changed(self, layer: str) -> None:
        """This process wrote ``layer``: its own readers need not wait for the notice."""
        self._changes[layer] += 1

    def close(self) -> None:
        self._closed.set()

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=self._connect_timeout,
                                     application_name="gridmap notices") as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._epoch += 1
                    while not self._closed.is_set():
                        conn.execute("SELECT 1")
                        self._heard = time.monotonic()
                        # notices that came during the SELECT are kept for this, and yielded first
                        for notice in conn.notifies(timeout=self.BEAT_S):
                            self._changes[notice.payload] += 1
            except psycopg.Error:
                self._heard = -math.inf  # until it hears again, every list of versions is read again
                self._closed.wait(self.RETRY_S)


def database_name(url: str) -> str:
    """host:port/database, for messages (never the password)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def wait_until_reachable(url: str, seconds: float, say: Callable[[str], None]) -> None:
    """Return once the database at ``url`` takes a connection; ServiceUnavailable after ``seconds``.

    For a server started before its database (a machine booting, both restarted together): ``say`` is
    told why it waits, once a reason.  Plain connections, not the pool: nothing retries behind it."""
    deadline = time.monotonic() + seconds
    told = None
    while True:
        try:
            psycopg.connect(url, connect_timeout=max(1, min(5, math.ceil(seconds)))).close()
            return
        except psycopg.Error as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if time.monotonic() >= deadline:
            raise ServiceUnavailable(says("store.db_waited", name=database_name(url), reason=reason,
                                          seconds=f"{seconds:g}"))
        if reason != told:
            say(says("store.db_retrying", name=database_name(url), reason=reason, seconds=f"{seconds:g}"))
            told = reason
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))  # once a second: a restart takes seconds


class PostGISStore(ChangeSetStore):
    """Versioned features in a PostgreSQL database with PostGIS, shared by every instance."""

    CACHE_SIZE = 4  # whole frames kept for the analysis: the current layers and one more
    FRESH_S = 1.0  # a connection that answered this recently is not pinged again (a restart meanwhile: one 503)
    DOWN_WAIT = 1.0  # seconds a call waits for a connection while the database is known to be down
    ANALYZE_AFTER = 1000  # rows a write adds that make the planner's statistics worth renewing at once

    def __init__(self, url: str, *, pool_size: int = 10, timeout: float = 5.0):
        """``timeout``: seconds a call waits for a working connection before it is ServiceUnavailable."""
        self.url = url
        self.pool_size = pool_size
        self.timeout = timeout
        self.name = database_name(url)
        self._pools: tuple[int, ConnectionPool] | None = None
        self._pool_mutex = threading.Lock()
        self._schema_ready = False
        self._down = False  # the last attempt to connect failed
        self._frames = VersionCache(self.CACHE_SIZE)
        self._used: dict[int, float] = {}  # when each pooled connection (by id) last answered
        self._fields = VersionCache(64)
        self._extents = VersionCache(64)  # an extent a version: small, dear to scan for
        self._versions: dict[str, tuple[int, list[Version], tuple | None]] = {}  # (stamp, list, notices' stamp)
        self._notice_board: tuple[int, VersionNotices] | None = None
        with contextlib.suppress(ServiceUnavailable):  # a database still starting: the first call makes it
            with self._connection():
                pass

    @property
    def location(self) -> str:
        return self.url

    # --- connections -----------------------------------------------------------------------------
    def _pool(self) -> ConnectionPool:
        """This process's pool (a new one after a fork: connections never cross processes)."""
        with self._pool_mutex:
            if self._pools is None or self._pools[0] != os.getpid():
                if self._pools is not None:  # a forked child: never collect the parent's pool, whose
                    _INHERITED.append(self._pools[1])  # connections would say goodbye on the parent's sockets
                pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.pool_size, open=True, timeout=self.timeout,
                    kwargs={"autocommit": True, "connect_timeout": max(1, round(self.timeout)),
                            "application_name": "gridmap"},
                    configure=self._connected, reconnect_failed=self._unreachable,
                    # give up a failed connection attempt at once: the next call tries again, so the first
                    # call after a restart is answered, with no back-off delay
                    reconnect_timeout=0, name=f"gridmap {self.name}")
                self._pools = (os.getpid(), pool)
            return self._pools[1]

    def _connected(self, conn: psycopg.Connection) -> None:
        if self._down:  # one line each way in the server's log, whatever the number of requests meanwhile
            log.warning("gridmap: the database %s answers again", self.name)
        self._down = False

    def _unreachable(self, pool: ConnectionPool) -> None:
        if not self._down:
            log.warning("gridmap: the database %s cannot be reached: requests that need it answer 503 "
                        "until it is back", self.name)
        self._down = True

    def _notices(self) -> VersionNotices:
        """This process's listener (a new one after a fork: threads do not cross it)."""
        with self._pool_mutex:
            if self._notice_board is None or self._notice_board[0] != os.getpid():
                notices = VersionNotices(self.url, max(1, round(self.timeout)))
                weakref.finalize(self, notices.close)  # a store dropped unclosed stops listening too
                self._notice_board = (os.getpid(), notices)
            return self._notice_board[1]

    def close(self) -> None:
        with self._pool_mutex:
            if self._pools is not None and self._pools[0] == os.getpid():
                self._pools[1].close()
            self._pools = None
            if self._notice_board is not None and self._notice_board[0] == os.getpid():
                self._notice_board[1].close()
            self._notice_board = None

    @contextlib.contextmanager
    def _connection(self, layer: str | None = None) -> Iterator[psycopg.Connection]:
        """A working connection from the pool; the database's failures as gridmap's errors."""
        pool = self._pool()
        try:
            conn = self._checked(pool)
            try:
                if not self._schema_ready:
                    self._create_schema(conn)
                yield conn
                self._used[id(conn)] = time.monotonic()
            finally:
                pool.putconn(conn)  # a broken connection is dropped, an open transaction rolled back
        except PoolTimeout as e:
            raise self._unavailable(e, layer) from e
        except psycopg.errors.DiskFull as e:
            raise InsufficientStorage(says("store.db_disk_full_layer", name=self.name, layer=layer) if layer
                                      else says("store.db_disk_full", name=self.name)) from e
        except psycopg.OperationalError as e:
            self._purge(pool)
            raise self._unavailable(e, layer) from e

    def _checked(self, pool: ConnectionPool) -> psycopg.Connection:
        """A pooled connection that answers a ping (pre-ping).  One that does not was cut by a database
        restart, and so were the others left idle: drop them all and take a new one."""
        conn = self._getconn(pool)
        if time.monotonic() - self._used.get(id(conn), -math.inf) < self.FRESH_S:
            return conn  # it answered a moment ago: a ping would double the round trips of every call
        try:
            ConnectionPool.check_connection(conn)
            return conn
        except psycopg.OperationalError:
            pool.putconn(conn)
        self._purge(pool)
        conn = self._getconn(pool)
        try:
            ConnectionPool.check_connection(conn)
        except BaseException:
            pool.putconn(conn)
            raise
        return conn

    def _getconn(self, pool: ConnectionPool) -> psycopg.Connection:
        if not self._down:
            return pool.getconn(timeout=self.timeout)
        try:  # the last attempt to connect failed: answer soon rather than keep every caller waiting
            return pool.getconn(timeout=min(self.timeout, self.DOWN_WAIT))
        except PoolTimeout:
            if not self._answers():
                raise
        return pool.getconn(timeout=self.timeout)  # it is back: wait for the pool's new connection

    def _answers(self) -> bool:
        try:
            psycopg.connect(self.url, connect_timeout=max(1, round(self.timeout))).close()
            return True
        except psycopg.Error:
            return False

    @staticmethod
    def _purge(pool: ConnectionPool) -> None:
        with contextlib.suppress(psycopg.Error):
            pool.check()  # pings the idle connections, drops the broken ones, connects anew in the background

    def _unavailable(self, error: Exception, layer: str | None) -> ServiceUnavailable:
        if not layer:
            written = ""
        elif isinstance(error, PoolTimeout):  # before any of it was sent
            written = says("store.db_not_written", layer=layer)
        else:  # cut off mid-write, maybe while committing: the database alone knows
            written = says("store.db_maybe_written", layer=layer)
        if isinstance(error, PoolTimeout) and not self._down:
            return ServiceUnavailable(says("store.db_busy", name=self.name, seconds=f"{self.timeout:g}",
                                           written=written), retry_after=5)
        reason = says("store.db_no_connection") if isinstance(error, PoolTimeout) else (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
        return ServiceUnavailable(says("store.db_unreachable", name=self.name, reason=reason, written=written),
                                  retry_after=5)

    def _create_schema(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (SCHEMA_LOCK,))  # instances starting together
            if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone():
                try:
                    with conn.transaction():
                        conn.execute("CREATE EXTENSION postgis")
                except psycopg.errors.InsufficientPrivilege:
                    raise DamagedStore(says("store.db_no_postgis_user", name=self.name), self.name) from None
                except psycopg.Error as e:
                    if conn.broken:
                        raise
                    raise DamagedStore(says("store.db_no_postgis", name=self.name, reason=str(e).splitlines()[0]),
                                       self.name) from None
            conn.execute(SCHEMA)
        self._schema_ready = True

    def check(self) -> None:
        with self._connection() as conn:
            found = dict(conn.execute("SELECT table_name, array_agg(column_name::text) FROM information_schema.columns "
                                      "WHERE table_schema = current_schema() AND table_name = ANY(%s) "
                                      "GROUP BY table_name", (list(COLUMNS),)).fetchall())
        for table, columns in COLUMNS.items():
            missing = columns - set(found.get(table, ()))
            if missing:
                raise DamagedStore(says("store.db_not_gridmaps", table=table, name=self.name,
                                        columns=", ".join(sorted(missing))), self.name)

    # --- versions ------------------------------------------------------------------------------
    def versions(self, layer: str) -> list[Version]:
        self._check_layer(layer)
        heard = self._notices().stamp(layer)  # taken before reading: a notice meanwhile makes it stale
        cached = self._versions.get(layer)
        if cached and heard is not None and cached[2] == heard:
            return cached[1]  # no version committed since it was read
        with self._connection() as conn:
            # versions of a layer are written one at a time and never removed: the last number names the list
            stamp = conn.execute("SELECT coalesce(max(version), 0) FROM versions WHERE layer = %s",
                                 (layer,)).fetchone()[0]
            if cached and cached[0] == stamp:
                versions = cached[1]
            else:
                rows = conn.execute("SELECT version, time, author, message, features, sha256 FROM versions "
                                    "WHERE layer = %s AND version <= %s ORDER BY version",
                                    (layer, stamp)).fetchall()
                versions = [Version(layer, *row) for row in rows]
        self._versions[layer] = (stamp, versions, heard)
        return versions

    def version(self, layer: str, number: int | None = None) -> Version:
        try:
            return super().version(layer, number)
        except NotFound:
            known = self._versions.get(layer)
            if number is None or (known and known[1] and number <= known[1][-1].version):
                raise  # (versions are never removed: one below the newest known was never written)
            # written by another process (a job's, another server's) whose notice is still on its way: the
            # writer's own answer names it, so ask the database rather than the list kept in memory
            self._versions.pop(layer, None)
            return super().version(layer, number)

    def _resolve(self, layer: str, number: int | None) -> tuple[Version, bool]:
        """The version, and whether it is the current one (as far as this instance knows)."""
        v = self.version(layer, number)
        known = self._versions.get(layer)  # the list version() just read, or a later one
        return v, bool(known and known[1] and known[1][-1].version == v.version)

    def _select(self, conn, v: Version, current: bool, sql: str, params: Sequence = (), *, lead: Sequence = (),
                binary: bool = False, whole=bool) -> list[tuple]:
        """Rows of ``sql`` whose ``{where}`` picks the features of version ``v`` (``params`` follow its own,
        ``lead`` come before them).

        The current version's features are found by their index (``version_to`` = ALIVE), unless another
        instance has stored a newer version meanwhile: the same statement checks, and then finds nothing,
        so when ``whole(rows)`` is false it asks again by the version's range, which is always right.
        """
        with conn.cursor(binary=binary) as cur:
            if current:
                where = ("f.layer = %s AND f.version_to = %s AND NOT EXISTS "
                         "(SELECT 1 FROM versions n WHERE n.layer = %s AND n.version > %s)")
                rows = cur.execute(sql.replace("{where}", where),
                                   (*lead, v.layer, ALIVE, v.layer, v.version, *params)).fetchall()
                if whole(rows) or not cur.execute("SELECT EXISTS (SELECT 1 FROM versions WHERE layer = %s AND "
                                                  "version > %s)", (v.layer, v.version)).fetchone()[0]:
                    return rows
            where = "f.layer = %s AND f.version_from <= %s AND f.version_to > %s"
            return cur.execute(sql.replace("{where}", where),
                               (*lead, v.layer, v.version, v.version, *params)).fetchall()

    # --- features ------------------------------------------------------------------------------
    def query(self, layer: str, version: int | None = None, *, bbox: Sequence[float] | None = None,
              filters: Sequence[tuple[str, str]] = (), limit: int | None = None, offset: int = 0,
              where=None, sortby: Sequence[tuple[str, bool, bool]] = ()) -> FeaturePage:
        v, current = self._resolve(layer, version)
        with self._connection() as conn:
            if bbox is None and not filters and where is None and not sortby:
                rows = self._select(conn, v, current, "SELECT f.feature FROM features f WHERE {where} "
                                    "ORDER BY f.key LIMIT %s OFFSET %s", (limit, offset))
                return FeaturePage([r[0] for r in rows], v.features)
            tests, params = self._tests(LAYERS[layer], bbox, filters)
            if where is not None:  # the CQL2 filter, as SQL on the jsonb properties and the geometry
                test, more = cql.postgis_where(where)
                tests.append(test)
                params += more
            order, order_params = cql.postgis_order(sortby)
            condition = " AND ".join(["{where}", *tests])
            rows = self._select(conn, v, current, f"SELECT f.feature, count(*) OVER () FROM features f "
                                f"WHERE {condition} ORDER BY {order}f.key LIMIT %s OFFSET %s",
                                (*params, *order_params, limit, offset))
            if rows:
                return FeaturePage([r[0] for r in rows], rows[0][1])
            if not offset and limit != 0:
                return FeaturePage([], 0)
            matched = self._select(conn, v, current, f"SELECT count(*) FROM features f WHERE {condition}", params,
                                   whole=lambda rows: rows[0][0] > 0)[0][0]
            return FeaturePage([], matched)

    def tile(self, layer: str, version: int, z: int, x: int, y: int, fields: Sequence[str]) -> bytes | None:
        """PostGIS cuts it: ST_AsMVTGeom clips (64 units beyond the edges) and snaps to the 4096 grid,
        ST_AsMVT encodes; the properties are the jsonb ``props`` narrowed to ``fields``."""
        v, current = self._resolve(layer, version)
        properties = ", ".join(["%s::text, f.props -> %s::text"] * len(fields))
        sql = (f"SELECT ST_AsMVT(t, %s::text, {EXTENT}, 'geom') FROM (SELECT ST_AsMVTGeom(ST_Transform(f.geom, 3857), "
               f"ST_TileEnvelope(%s::int, %s::int, %s::int), {EXTENT}, {BUFFER}, true) AS geom, "
               f"jsonb_strip_nulls(jsonb_build_object({properties})) AS props FROM features f WHERE {{where}} AND "
               f"f.geom && ST_Transform(ST_TileEnvelope(%s::int, %s::int, %s::int, margin => {BUFFER / EXTENT}), "
               "4326)) t "
               "WHERE t.geom IS NOT NULL")
        head = [layer, z, x, y, *[p for name in fields for p in (name, name)]]  # the parameters before {where}
        with self._connection() as conn:
            rows = self._select(conn, v, current, sql, (z, x, y), lead=head, whole=lambda rows: bool(rows[0][0]))
        data = bytes(rows[0][0] or b"")
        return data or None

    @staticmethod
    def _tests(layer, bbox, filters) -> tuple[list[str], list]:
        """SQL conditions for ``bbox`` and ``filters``, as ``property_matches`` tests them."""
        tests, params = [], []
        if bbox is not None:
            # && uses the GiST index on the bounding boxes, ST_Intersects keeps only the shapes that meet
            tests.append("f.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) "
                         "AND ST_Intersects(f.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))")
            params += [*map(float, bbox), *map(float, bbox)]
        for name, raw in filters:
            if numeric_filter(layer, name, raw):
                if math.isnan(float(raw)):
                    tests.append("false")  # nothing equals NaN
                    continue
                # numbers as numbers; a text that reads as a number too (float() does), anything else never
                tests.append("(CASE jsonb_typeof(f.props -> %s) WHEN 'number' THEN (f.props ->> %s)::float8 "
                             "WHEN 'string' THEN CASE WHEN f.props ->> %s ~ %s THEN (f.props ->> %s)::float8 END "
                             "END) = %s::float8")
                params += [name, name, name, NUMBER, name, float(raw)]
            else:
                tests.append("f.props ->> %s = %s")
                params += [name, raw]
        return tests, params

    def get(self, layer: str, key: str, version: int | None = None) -> str:
        v, current = self._resolve(layer, version)
        with self._connection() as conn:
            rows = self._select(conn, v, current, "SELECT f.feature FROM features f WHERE {where} AND f.key = %s",
                                (str(key),))
        if not rows:
            raise NotFound(says("error.no_feature", key=key, layer=layer))
        return rows[0][0]

    def extent(self, layer: str, version: int | None = None) -> list[float] | None:
        v = self.version(layer, version)
        return self._extents.get((layer, v.version, v.sha256), lambda: self._extent(layer, v.version))

    def _extent(self, layer: str, version: int) -> list[float] | None:
        """A scan of the version's rows (a province's grids: tens of ms), so kept per version."""
        v, current = self._resolve(layer, version)
        with self._connection() as conn:
            (row,) = self._select(conn, v, current, "SELECT min(ST_XMin(f.geom)), min(ST_YMin(f.geom)), "
                                  "max(ST_XMax(f.geom)), max(ST_YMax(f.geom)) FROM features f WHERE {where}",
                                  whole=lambda rows: rows[0][0] is not None)
        return None if row[0] is None else [round(float(b), 6) for b in row]

    def fields(self, layer: str, version: int | None = None) -> list[str]:
        v = self.version(layer, version)

        def read() -> list[str]:
            with self._connection() as conn:
                row = conn.execute("SELECT fields FROM versions WHERE layer = %s AND version = %s",
                                   (layer, v.version)).fetchone()
            return json.loads(row[0])

        return self._fields.get((layer, v.version, v.sha256), read)  # every items request asks

    def read(self, layer: str, version: int | None = None) -> gpd.GeoDataFrame:
        v = self.version(layer, version)
        return self._frames.get((layer, v.sha256, v.version), lambda: self._frame(v))

    def _frame(self, v: Version) -> gpd.GeoDataFrame:
        _, current = self._resolve(v.layer, v.version)
        with self._connection() as conn:
            rows = self._select(conn, v, current, "SELECT f.feature, ST_AsBinary(f.geom) FROM features f "
                                "WHERE {where} ORDER BY f.key", binary=True, whole=lambda rows: len(rows) == v.features)
        fields = self.fields(v.layer, v.version)
        return frame_from([properties_text(r[0]) for r in rows], [r[1] for r in rows], fields, LAYERS[v.layer])

    def read_keys(self, layer: str, version: int, keys: Iterable[str]) -> gpd.GeoDataFrame:
        v, current = self._resolve(layer, version)
        keys = sorted({str(k) for k in keys})
        with self._connection() as conn:
            rows = self._select(conn, v, current, "SELECT f.feature, ST_AsBinary(f.geom) FROM features f "
                                "WHERE {where} AND f.key = ANY(%s) ORDER BY f.key", (keys,), binary=True,
                                whole=lambda rows: len(rows) == len(keys))
        return frame_from([properties_text(r[0]) for r in rows], [r[1] for r in rows], self.fields(v.layer, v.version),
                          LAYERS[v.layer])

    # --- writes --------------------------------------------------------------------------------
    def _commit(self, layer, rows, removed, author, message, if_version, fields, time) -> Version:
        """One transaction, the layer's lock held: check ``if_version``, close the rows that change or
        go, copy in the new ones (``removed`` None: ``rows`` is the whole layer)."""
        try:
            with self._connection(layer) as conn, conn.transaction():
                # every instance's writers of this layer queue here until the one ahead commits
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LAYER_LOCKS, layer))
                new, written = self._apply(conn, layer, rows, removed, author, message, if_version, fields, time)
        except psycopg.DataError as e:  # a text PostgreSQL cannot keep (e.g. \u0000): nothing was stored
            raise BadRequest(says("store.db_data_error", layer=layer, reason=str(e).splitlines()[0])) from e
        self._versions.pop(layer, None)
        self._notices().changed(layer)  # a list read by another thread meanwhile is stale too
        if written >= self.ANALYZE_AFTER:  # after the answer, not before it: a province's layer takes a second
            threading.Thread(target=self._analyze, name="gridmap-analyze", daemon=True).start()
        return new

    def _analyze(self) -> None:
        """Fresh planner statistics after a bulk load: without them PostgreSQL walks the key index
        instead of the GiST one for a bbox (10 ms rather than 1), until autovacuum comes round."""
        with contextlib.suppress(psycopg.Error, ServiceUnavailable):  # the version is stored: only advice lost
            with self._connection() as conn:
                conn.execute("ANALYZE features")

    def _apply(self, conn, layer, rows, removed, author, message, if_version, fields, time) -> tuple[Version, int]:
        """``rows``: a dict, or a whole layer's RowParts stored part by part as they are made."""
        last = conn.execute("SELECT version, sha256, features, fields FROM versions WHERE layer = %s "
                            "ORDER BY version DESC LIMIT 1", (layer,)).fetchone()
        number, sha, count, previous = last if last else (0, "0" * 64, 0, "[]")
        if if_version is not None and if_version != number:
            raise PreconditionFailed(says("store.at_version", layer=layer, current=number, given=if_version))
        if removed is None:
            live = conn.execute("SELECT key, id, hash FROM features WHERE layer = %s AND version_to = %s",
                                (layer, ALIVE)).fetchall()
        else:
            live = conn.execute("SELECT key, id, hash FROM features WHERE layer = %s AND version_to = %s "
                                "AND key = ANY(%s)", (layer, ALIVE, sorted({*rows, *removed}))).fetchall()
        live = {key: (row_id, h) for key, row_id, h in live}
        gone = None if removed is None else gone_keys(layer, live, rows, removed)
        new = number + 1

        def prepared(part: dict[str, tuple]) -> tuple:
            """What a part stores: the rows it closes and opens, their hashes, its COPY data."""
            changed, fresh = replacing(live, part)
            opened = [*changed, *fresh]
            return ([live[k][0] for k in changed], self._copy_data(conn, layer, new, part, opened), len(fresh),
                    [part[k][1] for k in opened], [live[k][1] for k in changed], part.keys())

        written, added, opened, closed, seen = 0, 0, [], [], set()
        for closing, data, fresh, hashes, old_hashes, keys in (
                rows.made(prepared) if isinstance(rows, RowParts) else [prepared(rows)]):
            self._close(conn, new, closing)
            if data:
                with conn.cursor() as cur, cur.copy(COPY_FEATURES) as copy:
                    copy.write(data)
            written, added = written + len(hashes), added + fresh
            opened += hashes
            closed += old_hashes
            seen.update(keys)
        if gone is None:
            gone = gone_keys(layer, live, seen, None)
        self._close(conn, new, [live[k][0] for k in gone])
        sha = add_hashes(sha, opened, [*closed, *(live[k][1] for k in gone)])
        time = time or datetime.now(timezone.utc).isoformat(timespec="seconds")
        version = Version(layer=layer, version=new, time=time, author=author, message=message,
                          features=count + added - len(gone), sha256=sha)
        conn.execute("INSERT INTO versions (layer, version, time, author, message, features, sha256, fields) "
                     "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                     (layer, new, time, author, message, version.features, sha,
                      json.dumps(fields(json.loads(previous)), ensure_ascii=False)))
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, layer))  # heard by every instance at commit
        return version, written

    @staticmethod
    def _close(conn, new: int, ids: list[int]) -> None:
        if ids:
            conn.execute("UPDATE features SET version_to = %s WHERE id = ANY(%s)", (new, ids))

    @staticmethod
    def _copy_data(conn, layer: str, new: int, rows: dict[str, tuple], keys: list[str]) -> bytes:
        """COPY FROM's data for the rows of ``keys``, formatted by psycopg without the database (any thread)."""
        if not keys:
            return b""
        data = io.BytesIO()
        with psycopg.copy.Copy(conn.cursor(), writer=psycopg.copy.FileWriter(data)) as copy:
            for key in keys:
                text, h, ewkb = rows[key]
                props = properties_text(text).replace("\\u0000", "\\ufffd")
                copy.write_row((layer, key, new, ALIVE, h, text, props, ewkb))
        return data.getvalue()

    def _whole(self, gdf, layer) -> tuple[RowParts, list[str]]:
        """A whole layer is stored part by part while the next part is made (``RowParts``)."""
        gdf = storable(gdf)
        return RowParts(gdf, LAYERS[layer], self._rows), self._fields_of(gdf, layer)

    @staticmethod
    def _rows(gdf: gpd.GeoDataFrame, layer) -> dict[str, tuple]:
        """key -> (text, hash, hex EWKB in EPSG:4326 or None) for each feature."""
        keys, texts, geoms = keyed_texts(gdf, layer)
        ewkbs = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
        return {key: (texts[key], text_hash(texts[key]), ewkb) for key, ewkb in zip(keys, ewkbs)}

    def _crossing(self, layer: str, old: int, new: int) -> tuple[dict[str, str], dict[str, str]]:
        with self._connection() as conn, conn.transaction():  # one snapshot for both
            before = conn.execute("SELECT key, hash FROM features WHERE layer = %s AND version_to > %s AND "
                                  "version_to <= %s AND version_from <= %s", (layer, old, new, old)).fetchall()
            after = conn.execute("SELECT key, hash FROM features WHERE layer = %s AND version_from > %s AND "
                                 "version_from <= %s AND version_to > %s", (layer, old, new, new)).fetchall()
        return dict(before), dict(after)

    def _key_rows(self, layer: str, key: str) -> list[tuple[int, int | None]]:
        with self._connection() as conn:  # by features_by_key
            rows = conn.execute("SELECT version_from, version_to FROM features WHERE layer = %s AND key = %s "
                                "ORDER BY version_from", (layer, key)).fetchall()
        return [(start, None if end >= ALIVE else end) for start, end in rows]

    def _stored_rows(self, layer: str, number: int) -> dict[str, tuple]:
        with self._connection(layer) as conn:
            rows = conn.execute("SELECT key, feature, hash, encode(ST_AsEWKB(geom), 'hex') FROM features "
                                "WHERE layer = %s AND version_from <= %s AND version_to > %s",
                                (layer, number, number)).fetchall()
        return {key: (text, h, ewkb) for key, text, h, ewkb in rows}

    # results: rows every instance reads (``Store.shared``)
    def _load_result(self, key: str) -> bytes | None:
        with self._connection() as conn:
            row = conn.execute("UPDATE results SET used = now() WHERE key = %s RETURNING data", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def _save_result(self, key: str, data: bytes) -> None:
        with self._connection() as conn, conn.transaction():
            conn.execute("INSERT INTO results (key, data, used) VALUES (%s, %s, now()) ON CONFLICT (key) DO "
                         "UPDATE SET data = excluded.data, used = now()", (key, data))
            conn.execute("DELETE FROM results WHERE key NOT IN (SELECT key FROM results ORDER BY used DESC "
                         "LIMIT %s)", (self.RESULTS_KEPT,))

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """A session advisory lock, held on one connection until the block ends (or the connection dies)."""
        with self._connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (NAMED_LOCKS, name))
            try:
                yield
            finally:
                with contextlib.suppress(psycopg.OperationalError):  # a lost connection let go of it already
                    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (NAMED_LOCKS, name))

