"""Who may see what: restricted fields and version authors are for signed-in readers only.

The one place that decides it.  Fields named in ``GRIDMAP_RESTRICTED_FIELDS``
(personal and party data: instructors, party branches and members by default)
and the accounts that wrote each version are shown to signed-in users (any
role, by session or token) and left out of every answer to anyone else.  Routes
ask :func:`hidden_fields` / :func:`shows_authors` and hand the answer to
``geodata`` (``Catalog.get(hidden=…)``, ``Layer.without``), which leaves the
fields out of the features — so filters on them are unknown parameters too —
and gives such a collection another tag, so no cache or ETag made for one
audience answers the other.  Every response may differ by audience: each says
``Vary: Cookie, Authorization``.

The files that hold secrets or personal records are the service user's alone (0600).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from flask import Flask, Response, current_app, request

from .auth import current_user

PRIVATE_FILES = ("audit.log", "secret_key", "users.json")
PRIVATE_MODE = 0o600
SHARED_ENDPOINTS = {"static", "assets.asset"}  # the same bytes for everyone


def signed_in() -> bool:
    return current_user() is not None


def hidden_fields() -> frozenset[str]:
    """The fields this request's reader may not see: the restricted ones, unless signed in."""
    return frozenset() if signed_in() else frozenset(current_app.config["RESTRICTED_FIELDS"])


def shows_authors() -> bool:
    """Whether this reader may see which account wrote each version."""
    return signed_in()


def version_record(version) -> dict:
    """A stored version as this reader may see it (no author unless signed in)."""
    record = version.to_dict()
    if not shows_authors():
        record.pop("author", None)
    return record


def tighten(data_dir: str | Path, log: logging.Logger) -> None:
    """Make the private files that exist in ``data_dir`` readable and writable by this user only."""
    for name in PRIVATE_FILES:
        path = Path(data_dir) / name
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o777 != PRIVATE_MODE:
                try:
                    os.chmod(path, PRIVATE_MODE)
                except PermissionError:  # another user's file: say so, and serve anyway
                    log.warning("cannot make %s readable by this user only (chmod 600 it)", path)


def register(app: Flask) -> None:
    tighten(app.config["DATA_DIR"], app.logger)

    @app.after_request
    def vary_by_audience(response: Response) -> Response:
        if request.endpoint not in SHARED_ENDPOINTS:
            response.vary.update(("Cookie", "Authorization"))
        return response
