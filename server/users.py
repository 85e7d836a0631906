"""Users, roles and API tokens, kept in ``DATA_DIR/users.json``.

Passwords are stored as werkzeug hashes, API tokens only as SHA-256 digests
(they are long random strings, so a fast hash is enough and lookups are by
digest).  Changes are atomic and serialised by a file lock, like layer writes.

Each user also has a random ``session_nonce`` that its browser sessions carry:
a new one (on logout, a token or password reset) ends every session signed in
with the old one, wherever its cookie was copied to.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from filelock import FileLock
from werkzeug.security import check_password_hash, generate_password_hash

from geodata.errors import BadRequest, Conflict, NotFound
from geodata.store import atomic_write

ROLES = ("viewer", "editor", "admin")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    token_sha256: str
    password_hash: str | None = None
    created: str = ""
    session_nonce: str = ""  # browser sessions carry it; empty in records older than it: no session is valid

    def can(self, role: str) -> bool:
        """Whether this user has ``role`` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def public(self) -> dict:
        return {"name": self.name, "role": self.role, "created": self.created,
                "password": self.password_hash is not None}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _nonce() -> str:
    return secrets.token_urlsafe(16)


@cache
def _dummy_hash() -> str:
    """A hash of nothing anyone knows, made like real ones: checking it costs what checking a user's does."""
    return generate_password_hash(secrets.token_urlsafe(16))


class UserStore:
    def __init__(self, data_dir: str | Path):
        self.path = Path(data_dir) / "users.json"
        self._lock = FileLock(Path(data_dir) / "locks" / "users.lock")
        self._cache: tuple[tuple, dict[str, User]] | None = None

    def all(self) -> dict[str, User]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cache is None or self._cache[0] != stamp:
            users = {u["name"]: User(**u) for u in json.loads(self.path.read_text())["users"]}
            self._cache = (stamp, users)
        return self._cache[1]

    def by_token(self, token: str) -> User | None:
        digest = _digest(token)
        return next((u for u in self.all().values() if secrets.compare_digest(u.token_sha256, digest)), None)

    def check_password(self, name: str, password: str) -> User | None:
        user = self.all().get(name)
        stored = user.password_hash if user is not None else None
        # one slow hash check whether or not the user exists: the answer's timing does not tell
        right = check_password_hash(stored or _dummy_hash(), password)
        return user if right and stored else None

    def by_session(self, name: str, nonce: str | None) -> User | None:
        """The user a browser session names, while the session is still valid."""
        user = self.all().get(name)
        if user is None or not user.session_nonce or not isinstance(nonce, str):
            return None
        return user if secrets.compare_digest(user.session_nonce, nonce) else None

    def session_nonce(self, name: str) -> str:
        """The nonce a new session of ``name`` carries (made on first use for records that have none)."""
        user = self.all().get(name)
        if user is not None and user.session_nonce:
            return user.session_nonce
        with self._lock:
            users = dict(self.all())
            if name not in users:
                raise NotFound(f"no user '{name}'")
            if not users[name].session_nonce:
                users[name] = replace(users[name], session_nonce=_nonce())
                self._save(users)
            return users[name].session_nonce

    def end_sessions(self, name: str) -> None:
        """Sign every browser of ``name`` out (sessions carrying the old nonce stop working)."""
        with self._lock:
            users = dict(self.all())
            if name not in users:
                raise NotFound(f"no user '{name}'")
            users[name] = replace(users[name], session_nonce=_nonce())
            self._save(users)

    def add(self, name: str, role: str, password: str | None = None) -> tuple[User, str]:
        """A new user and its API token (shown once: only its digest is kept)."""
        _check(name, role)
        token = secrets.token_urlsafe(32)
        user = User(name=name, role=role, token_sha256=_digest(token),
                    password_hash=generate_password_hash(password) if password else None,
                    created=datetime.now(timezone.utc).isoformat(timespec="seconds"), session_nonce=_nonce())
        with self._lock:
            users = dict(self.all())
            if name in users:
                raise Conflict(f"user '{name}' already exists")
            users[name] = user
            self._save(users)
        return user, token

    def reset(self, name: str, password: str | None = None) -> str:
        """A new API token for ``name`` (the old one stops working); a new password when given.

        Either way the user's browser sessions end.
        """
        token = secrets.token_urlsafe(32)
        with self._lock:
            users = dict(self.all())
            if name not in users:
                raise NotFound(f"no user '{name}'")
            changes = {"token_sha256": _digest(token), "session_nonce": _nonce()}
            if password:
                changes["password_hash"] = generate_password_hash(password)
            users[name] = replace(users[name], **changes)
            self._save(users)
        return token

    def remove(self, name: str) -> None:
        with self._lock:
            users = dict(self.all())
            if users.pop(name, None) is None:
                raise NotFound(f"no user '{name}'")
            self._save(users)

    def _save(self, users: dict[str, User]) -> None:
        body = {"users": [asdict(u) for u in users.values()]}
        atomic_write(self.path, json.dumps(body, ensure_ascii=False, indent=1).encode(), mode=0o600)


def _check(name: str, role: str) -> None:
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not name or len(name) > 64 or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise BadRequest(f"user names are 1-64 letters, digits, '_', '-' or '.', not {name!r}")
