"""Accounts: users, failed sign-ins, the audit log and the session key, kept where the layers are.

One small interface, two backends, picked like the store's engine (``open_accounts``):

    embedded (a data directory)         PostgreSQL (GRIDMAP_DATABASE_URL)
    DATA_DIR/users.json                 gridmap_users
    DATA_DIR/signin-failures.sqlite     gridmap_signin_failures
    DATA_DIR/audit.log                  gridmap_audit
    DATA_DIR/secret_key                 gridmap_settings ('secret_key')

The embedded backend keeps the files every worker on the machine already shares (an
audit log an administrator can tail, a users file that stays as it was).  With a database,
every instance on every machine reads and writes the same rows: a user added through one
signs in on all, a logout or reset on one ends the sessions on all, failed sign-ins count
together, and one audit log holds the lines of all.  A data directory's ``users.json`` and
``audit.log`` are imported into the database once, at the first start with it (or the first
``python -m server user`` command), and kept as ``*.migrated``; its ``secret_key`` becomes the
database's if it has none yet, so the browsers signed in stay signed in.

User records are plain dicts with the fields of ``FIELDS``; what they mean (hashes, roles,
nonces) is ``server/users.py``'s business.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import logging
import math
import os
import secrets
import sqlite3
from contextlib import closing, suppress
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from ..errors import Conflict, DamagedStore, NotFound
from ..i18n import says
from .base import Store
from .files import atomic_write

log = logging.getLogger(__name__)

# scopes: the units an editor may change, as a JSON list of "district=…[,street=…]" (empty: everywhere)
FIELDS = {"name": "", "role": "", "token_sha256": "", "password_hash": None, "created": "", "session_nonce": "",
          "scopes": "[]"}
SECRET = "secret_key"


def _record(row: dict) -> dict:
    """A user record with every field (records written before a field existed lack it)."""
    return {field: row.get(field, default) for field, default in FIELDS.items()}


class Accounts(abc.ABC):
    """Users, failed sign-ins, audit lines and the key that signs browser sessions."""

    # --- users ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def users(self) -> dict[str, dict]:
        """Every user record, by name."""

    def user(self, name: str) -> dict | None:
        return self.users().get(name)

    def user_by_token(self, digest: str) -> dict | None:
        """The user whose API token has this SHA-256 digest."""
        return next((u for u in self.users().values() if secrets.compare_digest(u["token_sha256"], digest)), None)

    @abc.abstractmethod
    def add_user(self, record: dict) -> None:
        """Store a new user; Conflict if the name is taken."""

    @abc.abstractmethod
    def change_user(self, name: str, changes: dict, *, only_empty: bool = False) -> dict:
        """Apply ``changes`` to a user (with ``only_empty``, only to fields still empty); the record after.
        NotFound if there is no such user."""

    @abc.abstractmethod
    def remove_user(self, name: str) -> None:
        """NotFound if there is no such user."""

    # --- failed sign-ins -----------------------------------------------------------------------
    @abc.abstractmethod
    def reserve_try(self, scope: str, name: str, address: str, *, now: float, window_s: float,
                    limit: int) -> int | None:
        """In one step: forget failures older than the window, and unless ``name`` (if any) or ``address``
        has ``limit`` failures in it, count one more.  None if it was counted, else the seconds until
        the one that is used up may try again."""

    @abc.abstractmethod
    def clear_tries(self, scope: str, name: str, address: str) -> None:
        """Forget this address's failures for ``name`` (not for other names)."""

    # --- audit ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def append_audit(self, entry: dict) -> None:
        """Keep one audit line (an entry with a ``time``) whole, whoever else writes at the same time."""

    @abc.abstractmethod
    def audit(self) -> list[dict]:
        """Every audit line, oldest first."""

    # --- the session key -----------------------------------------------------------------------
    @abc.abstractmethod
    def secret(self) -> str:
        """The key that signs browser sessions: made once, the same for every worker and instance."""

    def import_files(self, data_dir: str | os.PathLike) -> list[str]:
        """Bring a data directory's accounts files here (what was done, one line each; [] if nothing)."""
        return []

    def close(self) -> None:
        pass


def open_accounts(location: str | os.PathLike | Store) -> Accounts:
    """The accounts at ``location``: a PostgreSQL URL or a PostGIS store (tables in that database,
    through the store's own connections), else a data directory or the embedded store in one."""
    if isinstance(location, Store):
        return PostgresAccounts(location) if _is_url(location.location) else FileAccounts(location.location)
    if _is_url(str(location)):
        from .postgis import PostGISStore

        return PostgresAccounts(PostGISStore(str(location)), owned=True)
    return FileAccounts(location)


def _is_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))  # as open_store tells them apart


# --- embedded: files in the data directory ----------------------------------------------------------

_FAILURES_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (scope TEXT NOT NULL, name TEXT NOT NULL, address TEXT NOT NULL,
                                     at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_name ON failures (scope, name, at);
CREATE INDEX IF NOT EXISTS failures_address ON failures (scope, address, at);
CREATE INDEX IF NOT EXISTS failures_at ON failures (at);
"""


class FileAccounts(Accounts):
    """Accounts in files of one data directory, shared by the processes of one machine.

    Users: one JSON file, replaced whole (atomically) under a file lock.  Failures: a SQLite table,
    a try checked and counted in one ``BEGIN IMMEDIATE``.  Audit: lines appended under a file lock.
    Every file is created readable by the service's user only (0600): they hold hashes and addresses.
    """

    def __init__(self, data_dir: str | os.PathLike):
        self.root = Path(data_dir)
        self.users_path = self.root / "users.json"
        self.failures_path = self.root / "signin-failures.sqlite"
        self.audit_path = self.root / "audit.log"
        self.secret_path = self.root / SECRET
        self._users: tuple[tuple, dict[str, dict]] | None = None
        self._failures_ready = False

    def _lock(self, name: str) -> FileLock:
        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        return FileLock(self.root / "locks" / f"{name}.lock")

    # --- users ---------------------------------------------------------------------------------
    def users(self) -> dict[str, dict]:
        try:
            st = self.users_path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._users is None or self._users[0] != stamp:
            users = {u["name"]: _record(u) for u in json.loads(self.users_path.read_text())["users"]}
            self._users = (stamp, users)
        return self._users[1]

    def add_user(self, record: dict) -> None:
        with self._lock("users"):
            users = dict(self.users())
            if record["name"] in users:
                raise Conflict(says("user.exists", name=record["name"]))
            users[record["name"]] = _record(record)
            self._save(users)

    def change_user(self, name: str, changes: dict, *, only_empty: bool = False) -> dict:
        with self._lock("users"):
            users = dict(self.users())
            if name not in users:
                raise NotFound(says("user.none", name=name))
            old = users[name]
            new = {**old, **{k: v for k, v in changes.items() if not (only_empty and old[k])}}
            if new != old:
                users[name] = new
                self._save(users)
            return new

    def remove_user(self, name: str) -> None:
        with self._lock("users"):
            users = dict(self.users())
            if users.pop(name, None) is None:
                raise NotFound(says("user.none", name=name))
            self._save(users)

    def _save(self, users: dict[str, dict]) -> None:
        body = {"users": list(users.values())}
        atomic_write(self.users_path, json.dumps(body, ensure_ascii=False, indent=1).encode(), mode=0o600)

    # --- failed sign-ins -----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        # a connection per use: cheap next to a password hash, and never carried across gunicorn's fork
        if not self._failures_ready:
            self.root.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.failures_path, os.O_CREAT | os.O_WRONLY, 0o600))  # the service's user only
        conn = sqlite3.connect(self.failures_path, timeout=30, isolation_level=None)
        if not self._failures_ready:
            conn.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            conn.executescript(_FAILURES_SCHEMA)
            self._failures_ready = True
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def reserve_try(self, scope: str, name: str, address: str, *, now: float, window_s: float,
                    limit: int) -> int | None:
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")  # one writer across processes: check and count are one step
            try:
                conn.execute("DELETE FROM failures WHERE at <= ?", (now - window_s,))
                wait = _longest(conn.execute(
                    f"SELECT at FROM failures WHERE scope = ? AND {column} = ? "  # noqa: S608 (fixed names)
                    "ORDER BY at DESC LIMIT 1 OFFSET ?", (scope, value, limit - 1)).fetchone()
                    for column, value in (("name", name), ("address", address)) if value)
                wait = _wait(wait, window_s, now)
                if wait is None:
                    conn.execute("INSERT INTO failures VALUES (?, ?, ?, ?)", (scope, name, address, now))
                conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):  # keep the first error, not "no transaction is active"
                    conn.execute("ROLLBACK")
                raise
        return wait

    def clear_tries(self, scope: str, name: str, address: str) -> None:
        with closing(self._connect()) as conn:
            conn.execute("DELETE FROM failures WHERE scope = ? AND name = ? AND address = ?", (scope, name, address))

    # --- audit ---------------------------------------------------------------------------------
    def append_audit(self, entry: dict) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock("audit"):  # keeps lines from several processes whole
            # created readable by the service's user only (it names accounts and addresses), whatever the umask
            fd = os.open(self.audit_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with open(fd, "a", encoding="utf-8") as out:
                out.write(line)

    def audit(self) -> list[dict]:
        if not self.audit_path.exists():
            return []
        # lines end at "\n" alone: a value may hold U+2028 or a form feed, which splitlines() would cut at
        text = self.audit_path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.split("\n") if line.strip()]

    # --- the session key -----------------------------------------------------------------------
    def secret(self) -> str:
        """A random key kept in the data dir, so sessions survive restarts and all workers agree."""
        path = self.secret_path
        if not path.exists():
            tmp = self.root / f".{SECRET}.{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()  # left by a process of this id that died here
            self.root.mkdir(parents=True, exist_ok=True)
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:  # never readable by others
                f.write(secrets.token_hex(32))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # atomic and never overwrites: the first process to get here wins
            tmp.unlink()
        return path.read_text().strip()


def _longest(rows) -> float | None:
    """The latest of the LIMIT-th newest failures found (None: neither name nor address is used up)."""
    found = [row[0] for row in rows if row is not None]
    return max(found, default=None)


def _wait(at: float | None, window_s: float, now: float) -> int | None:
    """Seconds until a failure made ``at`` leaves the window (None: nothing to wait for)."""
    return None if at is None else max(1, math.ceil(at + window_s - now))


# --- PostgreSQL: tables beside the layers --------------------------------------------------------------

ACCOUNT_LOCKS = 0x67726403  # advisory lock namespace (the store's are 0x67726400-02): never collides
SCHEMA_KEY, FAILURES_KEY, IMPORT_KEY = 0, 1, 2

_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS gridmap_users (
    name text PRIMARY KEY, role text NOT NULL, token_sha256 text NOT NULL, password_hash text,
    created text NOT NULL, session_nonce text NOT NULL DEFAULT '');
ALTER TABLE gridmap_users ADD COLUMN IF NOT EXISTS scopes text NOT NULL DEFAULT '[]';
CREATE INDEX IF NOT EXISTS gridmap_users_by_token ON gridmap_users (token_sha256);
CREATE TABLE IF NOT EXISTS gridmap_signin_failures (
    scope text NOT NULL, name text NOT NULL, address text NOT NULL, at double precision NOT NULL);
CREATE INDEX IF NOT EXISTS gridmap_signin_failures_name ON gridmap_signin_failures (scope, name, at);
CREATE INDEX IF NOT EXISTS gridmap_signin_failures_address ON gridmap_signin_failures (scope, address, at);
CREATE INDEX IF NOT EXISTS gridmap_signin_failures_at ON gridmap_signin_failures (at);
CREATE TABLE IF NOT EXISTS gridmap_audit (id bigserial PRIMARY KEY, time text NOT NULL, entry json NOT NULL);
CREATE INDEX IF NOT EXISTS gridmap_audit_by_time ON gridmap_audit (time, id);
CREATE TABLE IF NOT EXISTS gridmap_settings (name text PRIMARY KEY, value text NOT NULL);
"""
_COLUMNS = ", ".join(FIELDS)


def _text(value: str) -> str:
    """PostgreSQL's text holds no NUL: a name a client sent with one is counted as another name."""
    return value.replace("\x00", "\ufffd")


class PostgresAccounts(Accounts):
    """Accounts in tables of the PostGIS store's database, through the store's pool: the same checked
    connections, and ServiceUnavailable (503) naming the database while it is down."""

    def __init__(self, store, *, owned: bool = False):
        self.store = store
        self._owned = owned  # made for this object alone (a command, a test): closed with it
        self._ready = False

    @contextlib.contextmanager
    def _conn(self) -> Iterator:
        with self.store._connection() as conn:  # noqa: SLF001 (one package: the store's pool and its errors)
            if not self._ready:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ACCOUNT_LOCKS, SCHEMA_KEY))
                    conn.execute(_PG_SCHEMA)
                self._ready = True
            yield conn

    def close(self) -> None:
        if self._owned:
            self.store.close()

    # --- users ---------------------------------------------------------------------------------
    def _one(self, where: str, value: str) -> dict | None:
        with self._conn() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM gridmap_users WHERE {where} = %s",  # noqa: S608 (fixed)
                               (_text(value),)).fetchone()
        return None if row is None else dict(zip(FIELDS, row))

    def users(self) -> dict[str, dict]:
        with self._conn() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM gridmap_users ORDER BY name").fetchall()  # noqa: S608
        return {row[0]: dict(zip(FIELDS, row)) for row in rows}

    def user(self, name: str) -> dict | None:
        return self._one("name", name)

    def user_by_token(self, digest: str) -> dict | None:
        return self._one("token_sha256", digest)  # by its index: a digest of a long random token tells nothing

    def add_user(self, record: dict) -> None:
        record = _record(record)
        with self._conn() as conn:
            added = conn.execute(f"INSERT INTO gridmap_users ({_COLUMNS}) VALUES ({', '.join(['%s'] * len(FIELDS))}) "
                                 "ON CONFLICT (name) DO NOTHING RETURNING name", list(record.values())).fetchone()
        if added is None:
            raise Conflict(says("user.exists", name=record["name"]))

    def change_user(self, name: str, changes: dict, *, only_empty: bool = False) -> dict:
        unknown = set(changes) - set(FIELDS) - {"name"}
        if unknown or "name" in changes:
            raise ValueError(f"cannot change {sorted(unknown) or 'name'} of a user")
        value = "coalesce(nullif({0}, ''), %s)" if only_empty else "%s"
        sets = ", ".join(f"{field} = {value.format(field)}" for field in changes)
        with self._conn() as conn:
            row = conn.execute(f"UPDATE gridmap_users SET {sets} WHERE name = %s RETURNING {_COLUMNS}",  # noqa: S608
                               (*changes.values(), _text(name))).fetchone()
        if row is None:
            raise NotFound(says("user.none", name=name))
        return dict(zip(FIELDS, row))

    def remove_user(self, name: str) -> None:
        with self._conn() as conn:
            gone = conn.execute("DELETE FROM gridmap_users WHERE name = %s RETURNING name", (_text(name),)).fetchone()
        if gone is None:
            raise NotFound(says("user.none", name=name))

    # --- failed sign-ins -----------------------------------------------------------------------
    def reserve_try(self, scope: str, name: str, address: str, *, now: float, window_s: float,
                    limit: int) -> int | None:
        name, address = _text(name), _text(address)
        with self._conn() as conn, conn.transaction():
            # one reservation at a time across instances: check and count are one step
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ACCOUNT_LOCKS, FAILURES_KEY))
            conn.execute("DELETE FROM gridmap_signin_failures WHERE at <= %s", (now - window_s,))
            wait = _wait(_longest(conn.execute(
                f"SELECT at FROM gridmap_signin_failures WHERE scope = %s AND {column} = %s "  # noqa: S608 (fixed)
                "ORDER BY at DESC LIMIT 1 OFFSET %s", (scope, value, limit - 1)).fetchone()
                for column, value in (("name", name), ("address", address)) if value), window_s, now)
            if wait is None:
                conn.execute("INSERT INTO gridmap_signin_failures VALUES (%s, %s, %s, %s)", (scope, name, address, now))
        return wait

    def clear_tries(self, scope: str, name: str, address: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM gridmap_signin_failures WHERE scope = %s AND name = %s AND address = %s",
                         (scope, _text(name), _text(address)))

    # --- audit ---------------------------------------------------------------------------------
    def append_audit(self, entry: dict) -> None:
        with self._conn() as conn:
            conn.execute("INSERT INTO gridmap_audit (time, entry) VALUES (%s, %s::json)",
                         (str(entry.get("time", "")), json.dumps(entry, ensure_ascii=False)))

    def audit(self) -> list[dict]:
        with self._conn() as conn:
            # as text, parsed here: the line's own key order (psycopg's json loader would do it too)
            rows = conn.execute("SELECT entry::text FROM gridmap_audit ORDER BY time, id").fetchall()
        return [json.loads(row[0]) for row in rows]

    # --- the session key -----------------------------------------------------------------------
    def secret(self) -> str:
        with self._conn() as conn:
            conn.execute("INSERT INTO gridmap_settings VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                         (SECRET, secrets.token_hex(32)))  # the first instance to get here sets it
            return conn.execute("SELECT value FROM gridmap_settings WHERE name = %s", (SECRET,)).fetchone()[0]

    # --- import of a data directory's files ------------------------------------------------------
    def import_files(self, data_dir: str | os.PathLike) -> list[str]:
        """Import ``users.json`` and ``audit.log`` of ``data_dir`` (then kept as ``*.migrated``), and its
        ``secret_key`` if the database has none.  Each file's content is imported once (a mark in
        ``gridmap_settings`` names its digest), so instances starting together or a start killed midway
        never import a line twice; a user whose name the database already has keeps the database's record."""
        root = Path(data_dir)
        files = [root / name for name in ("users.json", "audit.log", SECRET)]
        if not any(path.is_file() for path in files):
            return []
        lines: list[str] = []
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ACCOUNT_LOCKS, IMPORT_KEY))
            users, audit, secret = files
            if secret.is_file() and conn.execute(
                    "INSERT INTO gridmap_settings VALUES (%s, %s) ON CONFLICT (name) DO NOTHING RETURNING name",
                    (SECRET, secret.read_text().strip())).fetchone():
                lines.append(f"the session key of {secret} is the database's: browsers signed in stay signed in")
            for path, load in ((users, self._import_users), (audit, self._import_audit)):
                if not path.is_file():
                    continue
                body = path.read_bytes()
                mark = f"imported {hashlib.sha256(body).hexdigest()}"
                if not conn.execute("INSERT INTO gridmap_settings VALUES (%s, %s) ON CONFLICT (name) DO NOTHING "
                                    "RETURNING name", (mark, str(path))).fetchone():
                    lines.append(f"{path} was imported before")
                    continue
                try:
                    lines.append(load(conn, path, body))
                except (ValueError, KeyError, TypeError) as e:  # the start stops: no account is silently lost
                    raise DamagedStore(says("user.import_unreadable", path=path, reason=f"{type(e).__name__}: {e}"),
                                       path) from None
        for path in files[:2]:  # after the commit: a start killed before this finds the mark next time
            moved = path.with_name(path.name + ".migrated")
            try:
                os.replace(path, moved)
                lines.append(f"{path} is kept as {moved}")
            except FileNotFoundError:  # none, or another process moved it
                pass
            except OSError as e:  # imported anyway: the mark keeps it from being imported again
                lines.append(f"{path} could not be renamed ({e}); it will not be imported again")
        for line in lines:
            log.warning("gridmap: accounts: %s", line)
        return lines

    @staticmethod
    def _import_users(conn, path: Path, body: bytes) -> str:
        records = [_record(u) for u in json.loads(body)["users"]]
        kept = []
        for record in records:
            if conn.execute(f"INSERT INTO gridmap_users ({_COLUMNS}) VALUES ({', '.join(['%s'] * len(FIELDS))}) "
                            "ON CONFLICT (name) DO NOTHING RETURNING name", list(record.values())).fetchone() is None:
                kept.append(record["name"])
        line = f"{path}: {len(records) - len(kept)} users imported"
        if kept:
            line += f"; the database already had {', '.join(kept)} (its records are kept)"
        return line

    @staticmethod
    def _import_audit(conn, path: Path, body: bytes) -> str:
        entries, torn = [], 0
        for text in body.decode("utf-8", errors="replace").split("\n"):
            if text.strip():
                try:
                    entries.append(json.loads(text))
                except ValueError:  # a line cut short by a full disk: left in the kept file
                    torn += 1
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO gridmap_audit (time, entry) VALUES (%s, %s::json)",
                            [(str(e.get("time", "")) if isinstance(e, dict) else "", json.dumps(e, ensure_ascii=False))
                             for e in entries])
        return f"{path}: {len(entries)} audit lines imported" + (f", {torn} unreadable left out" if torn else "")
