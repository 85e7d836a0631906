"""Failed sign-ins, counted per account and per address, shared by every worker and server.

After ``LIMIT`` failures in ``WINDOW_S`` seconds an account (or an address) is refused
with 429 until the oldest of them leaves the window — even with the right password,
or the limit would only slow a guesser down.

The counts live in one SQLite table in the data directory, so they hold across
gunicorn workers and across servers sharing that directory.  Flask-Limiter's
storages were the alternative: in memory each worker would count apart (2 workers,
twice the tries), and redis/memcached/mongo would be a second service to run for
this alone.  A try is also *reserved* before the password is checked, in one
write transaction: many guesses sent at once cannot all pass a check made at the
same count, which a count-after-the-answer limiter lets through.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import time
from contextlib import closing, suppress
from pathlib import Path

from geodata.errors import ServiceUnavailable, TooManyRequests

log = logging.getLogger(__name__)

LIMIT = 5
WINDOW_S = 15 * 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (scope TEXT NOT NULL, name TEXT NOT NULL, address TEXT NOT NULL,
                                     at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_name ON failures (scope, name, at);
CREATE INDEX IF NOT EXISTS failures_address ON failures (scope, address, at);
CREATE INDEX IF NOT EXISTS failures_at ON failures (at);
"""


class Attempts:
    """``reserve`` a try before checking a secret; ``clear`` the tries it cost once it proved right."""

    def __init__(self, data_dir: str | Path, limit: int = LIMIT, window_s: float = WINDOW_S):
        self.path = Path(data_dir) / "signin-failures.sqlite"
        self.limit, self.window_s = limit, window_s
        self._ready = False
        self.clock = time.time  # tests move it on

    def _connect(self) -> sqlite3.Connection:
        # a connection per use: cheap next to a password hash, and never carried across gunicorn's fork
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # the service's user only
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        if not self._ready:
            conn.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            conn.executescript(_SCHEMA)
            self._ready = True
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def reserve(self, scope: str, name: str, address: str) -> None:
        """Count one try for ``name`` (if any) and ``address``; TooManyRequests if either is used up.

        The try counts as a failure until ``clear`` takes it back.  If the counts cannot be kept
        (disk full, unreadable file) nobody is let try: 503, not an unlimited sign-in.
        """
        try:
            wait = self._reserve(scope, name, address)
        except (sqlite3.Error, OSError) as e:
            log.error("cannot count failed attempts in %s: %s", self.path, e)
            raise ServiceUnavailable("sign-in is unavailable for a moment; the error is logged", retry_after=60) from e
        if wait is not None:
            raise TooManyRequests(f"too many failed attempts; try again in {wait} s", retry_after=wait)

    def _reserve(self, scope: str, name: str, address: str) -> int | None:
        now = self.clock()
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")  # one writer across processes: check and count are one step
            try:
                conn.execute("DELETE FROM failures WHERE at <= ?", (now - self.window_s,))
                waits = [self._wait(conn, scope, column, value, now)
                         for column, value in (("name", name), ("address", address)) if value]
                wait = max((w for w in waits if w is not None), default=None)
                if wait is None:
                    conn.execute("INSERT INTO failures VALUES (?, ?, ?, ?)", (scope, name, address, now))
                conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):  # keep the first error, not "no transaction is active"
                    conn.execute("ROLLBACK")
                raise
        return wait

    def clear(self, scope: str, name: str, address: str) -> None:
        """The secret was right: forget this address's failures for ``name`` (not for other names)."""
        try:
            with closing(self._connect()) as conn:
                conn.execute("DELETE FROM failures WHERE scope = ? AND name = ? AND address = ?",
                             (scope, name, address))
        except (sqlite3.Error, OSError) as e:  # the sign-in stands; its try stays counted until the window passes
            log.error("cannot clear failed attempts in %s: %s", self.path, e)

    def _wait(self, conn: sqlite3.Connection, scope: str, column: str, value: str, now: float) -> int | None:
        """Seconds until ``value`` may try again (None: it may now): when its LIMIT-th newest failure expires."""
        row = conn.execute(f"SELECT at FROM failures WHERE scope = ? AND {column} = ? "  # noqa: S608 (fixed names)
                           "ORDER BY at DESC LIMIT 1 OFFSET ?", (scope, value, self.limit - 1)).fetchone()
        if row is None:
            return None
        return max(1, math.ceil(row[0] + self.window_s - now))
