"""The real server for tests that talk HTTP: ``python -m server`` on 127.0.0.1, a free port and a data dir."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
SERVER_START_DEADLINE_S = 180  # the first demo server builds the demo, then computes the analysis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(data_dir: Path, log_path: Path, *, demo: bool, **settings):
    """Start the server on ``data_dir``, yield its base URL once /healthz answers, stop it afterwards.

    ``settings`` are more GRIDMAP_* settings by name, e.g. ``MAX_UPLOAD_MB=1``.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}  # no stray settings
    env.update(GRIDMAP_BASEMAP="none", GRIDMAP_WORKERS="1", GRIDMAP_DEMO="1" if demo else "0")
    env.update({f"GRIDMAP_{name}": str(value) for name, value in settings.items()})
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), "--data-dir", str(data_dir)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_healthy(proc, f"{base}/healthz", log_path)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _wait_until_healthy(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    session = requests.Session()
    session.trust_env = False  # never through a proxy: the server is on 127.0.0.1
    deadline = time.monotonic() + SERVER_START_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            if session.get(url, timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        try:  # waits for the process to exit, at most 0.1 s: the next poll
            code = proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"python -m server exited with {code} before answering:\n{_tail(log_path)}", pytrace=False)
    pytest.fail(f"{url} did not answer within {SERVER_START_DEADLINE_S} s:\n{_tail(log_path)}", pytrace=False)


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
