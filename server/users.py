"""Users, roles and API tokens, kept by the accounts backend: ``DATA_DIR/users.json``, or the
``gridmap_users`` table of the database every instance shares (``GRIDMAP_DATABASE_URL``).

Passwords are stored as werkzeug hashes, API tokens only as SHA-256 digests
(they are long random strings, so a fast hash is enough and lookups are by
digest).  Each change is atomic (a file replaced under a lock, or one statement).

Each user also has a random ``session_nonce`` that its browser sessions carry:
a new one (on logout, a token or password reset) ends every session signed in
with the old one, wherever its cookie was copied to.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from geodata.errors import BadRequest, NotFound
from geodata.i18n import says
from geodata.scopes import Scope
from geodata.scopes import parse as parse_scope
from geodata.store.accounts import Accounts, open_accounts

ROLES = ("viewer", "editor", "admin")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    token_sha256: str
    password_hash: str | None = None
    created: str = ""
    session_nonce: str = ""  # browser sessions carry it; empty in records older than it: no session is valid
    scopes: str = "[]"  # JSON: the units this editor may change (geodata.scopes); none: everywhere

    @property
    def areas(self) -> list[Scope]:
        """The scopes this user's writes are limited to (empty: not limited)."""
        return [parse_scope(text) for text in json.loads(self.scopes or "[]")]

    def can(self, role: str) -> bool:
        """Whether this user has ``role`` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def public(self) -> dict:
        return {"name": self.name, "role": self.role, "created": self.created,
                "password": self.password_hash is not None, "scopes": [str(a) for a in self.areas]}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _nonce() -> str:
    return secrets.token_urlsafe(16)


@cache
def _dummy_hash() -> str:
    """A hash of nothing anyone knows, made like real ones: checking it costs what checking a user's does."""
    return generate_password_hash(secrets.token_urlsafe(16))


class UserStore:
    """Users on top of the accounts backend (``geodata.store.accounts``): files in the data directory,
    or tables in the PostgreSQL database every instance shares."""

    def __init__(self, where: str | Path | Accounts):
        """``where``: the accounts, a data directory or a ``postgresql://`` URL."""
        self.accounts = where if isinstance(where, Accounts) else open_accounts(where)

    @property
    def path(self) -> Path | None:
        """The users file of the embedded backend (None in a database)."""
        return getattr(self.accounts, "users_path", None)

    def all(self) -> dict[str, User]:
        return {name: User(**record) for name, record in self.accounts.users().items()}

    def _user(self, name: str) -> User | None:
        record = self.accounts.user(name)
        return None if record is None else User(**record)

    def by_token(self, token: str) -> User | None:
        record = self.accounts.user_by_token(_digest(token))
        return None if record is None else User(**record)

    def check_password(self, name: str, password: str) -> User | None:
        user = self._user(name)
        stored = user.password_hash if user is not None else None
        # one slow hash check whether or not the user exists: the answer's timing does not tell
        right = check_password_hash(stored or _dummy_hash(), password)
        return user if right and stored else None

    def by_session(self, name: str, nonce: str | None) -> User | None:
        """The user a browser session names, while the session is still valid."""
        user = self._user(name) if isinstance(name, str) else None
        if user is None or not user.session_nonce or not isinstance(nonce, str):
            return None
        return user if secrets.compare_digest(user.session_nonce, nonce) else None

    def session_nonce(self, name: str) -> str:
        """The nonce a new session of ``name`` carries (made on first use for records that have none)."""
        user = self._user(name)
        if user is not None and user.session_nonce:
            return user.session_nonce
        return self.accounts.change_user(name, {"session_nonce": _nonce()}, only_empty=True)["session_nonce"]

    def end_sessions(self, name: str) -> None:
        """Sign every browser of ``name`` out (sessions carrying the old nonce stop working)."""
        self.accounts.change_user(name, {"session_nonce": _nonce()})

    def add(self, name: str, role: str, password: str | None = None, scopes: list[str] = ()) -> tuple[User, str]:
        """A new user and its API token (shown once: only its digest is kept); ``scopes`` limit an editor's
        writes to those units (``district=海曙区``; see ``geodata.scopes``)."""
        _check(name, role)
        token = secrets.token_urlsafe(32)
        user = User(name=name, role=role, token_sha256=_digest(token),
                    password_hash=generate_password_hash(password) if password else None,
                    created=datetime.now(timezone.utc).isoformat(timespec="seconds"), session_nonce=_nonce(),
                    scopes=_scopes(role, scopes))
        self.accounts.add_user(asdict(user))
        return user, token

    def reset(self, name: str, password: str | None = None) -> str:
        """A new API token for ``name`` (the old one stops working); a new password when given.

        Either way the user's browser sessions end.
        """
        token = secrets.token_urlsafe(32)
        changes = {"token_sha256": _digest(token), "session_nonce": _nonce()}
        if password:
            changes["password_hash"] = generate_password_hash(password)
        self.accounts.change_user(name, changes)
        return token

    def remove(self, name: str) -> None:
        self.accounts.remove_user(name)

    def set_scopes(self, name: str, scopes: list[str]) -> User:
        """Limit ``name``'s writes to ``scopes`` (none: everywhere)."""
        user = self._user(name)
        if user is None:
            raise NotFound(says("user.none", name=name))
        return User(**self.accounts.change_user(name, {"scopes": _scopes(user.role, scopes)}))


def _scopes(role: str, scopes) -> str:
    """The record's text of ``scopes`` (each checked); only editors have scopes: admins write everywhere."""
    parsed = [str(parse_scope(text)) for text in scopes]
    if parsed and role != "editor":
        raise BadRequest(says("user.scopes_admin" if role == "admin" else "user.scopes_viewer", role=role))
    return json.dumps(list(dict.fromkeys(parsed)), ensure_ascii=False)


def _check(name: str, role: str) -> None:
    if role not in ROLES:
        raise BadRequest(says("user.role", roles=", ".join(ROLES), value=repr(role)))
    if not name or len(name) > 64 or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise BadRequest(says("user.name", value=repr(name)))
