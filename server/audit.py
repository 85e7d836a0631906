"""The audit log: one JSON line per write attempt — who, when, what, from where, and how it ended.

The lines are kept by the accounts backend: ``DATA_DIR/audit.log``, or the ``gridmap_audit``
table of the database every instance shares, where ``read`` finds the lines of all of them.

Write routes are marked with :func:`audited`; one ``after_request`` hook writes the
line for every write request to them, whatever answered it: the view (stored, dry
run, rejected), a role check (401, 403), a precondition (409, 412), a body limit
(413, 415), a sign-in limit (429) or a failure (5xx).  Views add their details
(version, file name, counts) with :func:`note`.  The line is written before the
answer leaves; a failed audit write is logged loudly and never turns a stored
version into an error (a client retrying it would store it twice).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone

from flask import Flask, Response, current_app, g, request

from geodata.store.accounts import Accounts, open_accounts

log = logging.getLogger(__name__)

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
OUTCOMES = {201: "stored", 200: "stored", 204: "stored"}  # a view notes its own ("dry run", "rejected")


def audited(action: str, target: str):
    """Mark a write view: its write requests are audited as ``action`` on the view argument ``target``."""
    def decorator(view):
        view.audit = (action, target)
        return view
    return decorator


def note(**details) -> None:
    """Details for this request's audit line (``outcome=`` overrides the one the status gives)."""
    g.setdefault("audit", {}).update(details)


def register(app: Flask) -> None:
    @app.after_request
    def audit_write(response: Response) -> Response:
        view = app.view_functions.get(request.endpoint)
        marked = getattr(view, "audit", None)
        if marked is None or request.method not in WRITE_METHODS:
            return response
        action, target = marked
        details = dict(g.get("audit", {}))
        status = response.status_code
        outcome = details.pop("outcome", None) or _outcome(status)
        if status >= 400 and g.get("error_message"):
            details.setdefault("error", g.error_message)
        try:
            record(action, (request.view_args or {}).get(target, ""), outcome, status=status, **details)
        except Exception:  # the answer stands: a stored version is never reported as a failure
            log.exception("AUDIT LOG WRITE FAILED for %s %s (%s, %s)", request.method, request.path, outcome,
                          details)
        return response


def _outcome(status: int) -> str:
    if status >= 500:
        return f"failed {status}"
    if status >= 400:
        return f"refused {status}"
    return OUTCOMES.get(status, f"answered {status}")


def record(action: str, target: str, outcome: str, **details) -> None:
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "user": g.user.name if g.get("user") else None,
        "remote_addr": request.remote_addr,
        "action": action, "target": target, "outcome": outcome, **details,
    }
    append(current_app.extensions["gridmap_accounts"], entry)


def append(accounts: Accounts, entry: dict) -> None:
    """Keep one line, whole whoever else writes at the same time."""
    accounts.append_audit(entry)


def read(where: str | os.PathLike | Accounts) -> list[dict]:
    """Every line, oldest first, of every instance sharing ``where``: the accounts, a data directory
    or a ``postgresql://`` URL."""
    if isinstance(where, Accounts):
        return where.audit()
    accounts = open_accounts(where)
    try:
        return accounts.audit()
    finally:
        accounts.close()
