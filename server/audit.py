"""The audit log: one JSON line per write attempt — who, when, what, from where, and how it ended."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock
from flask import current_app, g, request


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
        with open(fd, "a", encoding="utf-8") as log:
            log.write(line)


def read(data_dir: Path) -> list[dict]:
    path = data_dir / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
