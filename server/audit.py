"""The audit log: one JSON line per write attempt — who, when, what, from where, and how it ended.

Write routes are marked with :func:`audited`; one ``after_request`` hook writes the
line for every write request to them, whatever answered it: the view (stored, dry
run, rejected), a role check (401, 403), a precondition (409, 412), a body limit
(413, 415), a sign-in limit (429) or a failure (5xx).  Views add their details
(version, file name, counts) with :func:`note`.  The line is written before the
answer leaves; a failed audit write is logged loudly and never turns a stored
version into an error (a client retrying it would store it twice).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock
from flask import Flask, Response, current_app, g, request

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
    append(Path(current_app.config["DATA_DIR"]), entry)


def append(data_dir: Path, entry: dict) -> None:
    """Append one line; the lock keeps lines from several processes whole."""
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    with FileLock(data_dir / "locks" / "audit.lock"):
        # created readable by the service's user only (it names accounts and addresses), whatever the umask
        fd = os.open(data_dir / "audit.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8") as out:
            out.write(line)


def read(data_dir: Path) -> list[dict]:
    path = data_dir / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
