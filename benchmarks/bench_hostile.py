"""Readers under hostile load: this tree against a baseline commit, on the demo, in one run.

    .venv/bin/python benchmarks/bench_hostile.py [--baseline 04e9b99] [--whatif-s 20] [--slow-s 15]

Each tree (the baseline checked out into a temporary ``git worktree``, then this one) is started as
``python -m server`` with the same venv on its own copy of the demo (2 workers × 4 threads, 127.0.0.1), and
an editor is added with that tree's ``python -m server user add``. Then, while one anonymous reader asks
for ``/healthz`` and ``/api/collections/grids/items?limit=10`` in turn (one request at a time):

(b) 16 connections send a request's headers one line a second for ``--slow-s`` seconds; one the server
    closes is opened again, so 16 stay open;
(a) then, once the server answers promptly again, 20 clients post what-ifs for ``--whatif-s`` seconds,
    signed in (``Authorization: Bearer``), each with 1–3 proposed community centres in Ningbo and its own
    ``radius_community_m`` (800 … 2,985 m); a client answered otherwise than 200 waits 0.1 s before it tries
    again. A what-if still unanswered ``GRACE_S`` after the end is given up (and counted as such).

The reader opens a new connection for each request, as many readers do (under gthread, whichever worker
accepted the slow connections stalls; a kept connection to the other one would not see it). It measures
only while the load runs (its last request may finish later). Prints p50/p95 of each
reader route, the what-ifs' statuses, and issue 10's targets; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from _server import ROOT, demo_data_dir, running_server

WHATIF_CLIENTS = 20
SLOW_CONNECTIONS = 16
REQUEST_TIMEOUT_S = 120  # a reader's request; the figures show how long they really took
GRACE_S = 10  # a what-if in flight when the time is up may take this much longer
MAX_REQUESTS = 5000  # per client and phase: every loop is bounded in count as well as in time
TARGETS = {"healthz_whatif": 100, "items_whatif": 250, "healthz_slow": 100}  # p95, ms (issue 10)


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # 127.0.0.1 only, never through a proxy
    return s


class Reader(threading.Thread):
    """One anonymous reader: ``paths`` in turn, one request at a time, until ``stop``; latencies per path."""

    def __init__(self, base: str, paths: list[str], stop: threading.Event):
        super().__init__(daemon=True)
        self.base, self.paths, self.stop = base, paths, stop
        self.latencies: dict[str, list[float]] = {p: [] for p in paths}
        self.failures = Counter()

    def run(self):
        s = session()
        s.headers["Connection"] = "close"  # a new connection each time, as many readers make: the server picks
        for i in range(MAX_REQUESTS):      # which worker accepts it, and a kept one could dodge a stalled worker
            if self.stop.is_set():
                break
            path = self.paths[i % len(self.paths)]
            start = time.perf_counter()
            try:
                status = s.get(self.base + path, timeout=REQUEST_TIMEOUT_S).status_code
            except requests.RequestException as e:
                status = type(e).__name__
            if status == 200:
                self.latencies[path].append(time.perf_counter() - start)
            else:
                self.failures[(path, status)] += 1
            self.stop.wait(0.05)


def whatif_client(base: str, token: str, index: int, until: float, statuses: Counter, lock: threading.Lock):
    rng = random.Random(index)
    s = session()
    radius = 800 + 115 * index  # a different radius for each client: no shared cache entry
    for _ in range(MAX_REQUESTS):
        if time.monotonic() > until:
            return
        features = [{"type": "Feature", "properties": {"level": "community"},
                     "geometry": {"type": "Point", "coordinates": [rng.uniform(121.45, 121.65),
                                                                   rng.uniform(29.80, 29.95)]}}
                    for _ in range(rng.randint(1, 3))]
        try:
            timeout = max(1.0, until + GRACE_S - time.monotonic())
            status = s.post(f"{base}/api/whatif?radius_community_m={radius}", timeout=timeout,
                            json={"type": "FeatureCollection", "features": features},
                            headers={"Authorization": f"Bearer {token}"}).status_code
        except requests.Timeout:
            status = "unanswered"
        except requests.RequestException as e:
            status = type(e).__name__
        with lock:
            statuses[status] += 1
        if status != 200:
            time.sleep(0.1)


def slow_headers(port: int, until: float, opened: list[int], lock: threading.Lock):
    """Keeps one connection sending a header line a second until ``until``; reopens it when closed."""
    sock = None
    line = 0
    try:
        for _ in range(MAX_REQUESTS):
            if time.monotonic() > until:
                return
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    with lock:
                        opened[0] += 1
                sock.sendall(b"X-Slow-%d: y\r\n" % line)
                line += 1
            except OSError:
                if sock is not None:
                    sock.close()
                sock = None
                continue
            time.sleep(1)
    finally:
        if sock is not None:
            sock.close()


def with_reader(base: str, paths: list[str], load, seconds: float, warmup_s: float) -> Reader:
    """Start ``load(until)``; a reader goes from ``warmup_s`` in until the load's time is up."""
    until = time.monotonic() + seconds
    stop = threading.Event()
    reader = Reader(base, paths, stop)
    loader = threading.Thread(target=load, args=(until,), daemon=True)
    loader.start()
    time.sleep(warmup_s)
    reader.start()
    stop.wait(max(0.0, until - time.monotonic()))
    stop.set()
    reader.join(REQUEST_TIMEOUT_S + 10)
    loader.join(GRACE_S + 30)
    return reader


def settle(base: str, deadline_s: float = 180) -> None:
    """Wait until /healthz answers within 0.5 s again (the previous load has drained)."""
    s = session()
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        start = time.perf_counter()
        try:
            if s.get(base + "/healthz", timeout=deadline_s).status_code == 200 and time.perf_counter() - start < 0.5:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)


def measure(root: Path, data_dir: str, whatif_s: float, slow_s: float) -> dict:
    added = subprocess.run([sys.executable, "-m", "server", "user", "add", "bench", "--role", "editor",
                            "--data-dir", data_dir], cwd=root, capture_output=True, text=True, check=True)
    token = added.stdout.strip().splitlines()[-1]
    figures = {}
    lock = threading.Lock()
    with running_server(data_dir, root=root, WORKERS=2, THREADS=4, DEMO=0) as (base, up):
        figures["up_s"] = up
        port = int(base.rsplit(":", 1)[1])

        opened = [0]

        def slow(until):
            senders = [threading.Thread(target=slow_headers, args=(port, until, opened, lock), daemon=True)
                       for _ in range(SLOW_CONNECTIONS)]
            for s in senders:
                s.start()
            for s in senders:
                s.join(until - time.monotonic() + 30)

        settle(base)
        reader = with_reader(base, ["/healthz"], slow, slow_s, warmup_s=2.0)
        figures["slow"] = {"healthz": reader.latencies["/healthz"], "opened": opened[0], "failures": reader.failures}

        statuses = Counter()

        def whatifs(until):
            clients = [threading.Thread(target=whatif_client, args=(base, token, i, until, statuses, lock), daemon=True)
                       for i in range(WHATIF_CLIENTS)]
            for c in clients:
                c.start()
            for c in clients:
                c.join(until - time.monotonic() + GRACE_S + 10)

        settle(base)
        items = "/api/collections/grids/items?limit=10"
        reader = with_reader(base, ["/healthz", items], whatifs, whatif_s, warmup_s=1.0)
        figures["whatif"] = {"healthz": reader.latencies["/healthz"], "items": reader.latencies[items],
                             "statuses": statuses, "failures": reader.failures}
    return figures


def pct(values: list[float], q: float) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0] * 1000:.0f}"
    return f"{statistics.quantiles(values, n=100, method='inclusive')[q - 1] * 1000:.0f}"


def p50_p95(values: list[float]) -> str:
    return f"{pct(values, 50)} / {pct(values, 95)} ms (n={len(values)})"


def statuses(counter: Counter) -> str:
    other = sum(n for s, n in counter.items() if s not in (200, 503, "unanswered"))
    return f"{counter[200]} / {counter[503]} / {other} (+{counter['unanswered']} unanswered)"


def report(results: dict[str, dict], args) -> None:
    names = list(results)
    rows = [
        (f"(b) {SLOW_CONNECTIONS} slow-header connections, {args.slow_s:.0f} s: /healthz p50 / p95", "≤ 100 ms p95",
         lambda f: p50_p95(f["slow"]["healthz"])),
        ("    slow connections opened (the server closed the others)", "", lambda f: str(f["slow"]["opened"])),
        (f"(a) {WHATIF_CLIENTS} what-ifs, {args.whatif_s:.0f} s: /healthz p50 / p95", "≤ 100 ms p95",
         lambda f: p50_p95(f["whatif"]["healthz"])),
        ("    items?limit=10 p50 / p95", "≤ 250 ms p95", lambda f: p50_p95(f["whatif"]["items"])),
        ("    what-ifs answered 200 / 503 / other", "", lambda f: statuses(f["whatif"]["statuses"])),
        ("server up after", "", lambda f: f"{f['up_s']:.1f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  " + "  ".join(f"{n:>30}" for n in names) + f"  {'target':>14}")
    for label, target, cell in rows:
        print(f"{label:{width}}  " + "  ".join(f"{cell(results[n]):>30}" for n in names) + f"  {target:>14}")
    for name, figures in results.items():
        others = {k: v for k, v in figures["whatif"]["statuses"].items() if k not in (200, 503, "unanswered")}
        failed = figures["whatif"]["failures"] + figures["slow"]["failures"]
        if others or failed:
            print(f"{name}: what-ifs answered otherwise: {dict(others)}; reader requests that failed: {dict(failed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="04e9b99", help="git ref to compare with (default: 04e9b99)")
    parser.add_argument("--whatif-s", type=float, default=20.0, help="seconds of what-ifs (default 20)")
    parser.add_argument("--slow-s", type=float, default=20.0, help="seconds of slow-header connections (default 20)")
    args = parser.parse_args()

    commit = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    results = {}
    with demo_data_dir() as demo, tempfile.TemporaryDirectory(prefix="gridmap-hostile-") as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), commit], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for name, root in ((f"baseline {commit}", baseline), (f"this tree ({head}+)", ROOT)):
                data_dir = Path(tmp) / f"data-{root.name}"
                shutil.copytree(demo, data_dir)
                print(f"measuring {name} …", flush=True)
                results[name] = measure(root, str(data_dir), args.whatif_s, args.slow_s)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False,
                           capture_output=True)
    print()
    report(results, args)


if __name__ == "__main__":
    main()
