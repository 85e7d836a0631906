"""What the accounts cost a request, on both backends side by side.

    .venv/bin/python benchmarks/bench_accounts.py [--users 1000] [--lines 10000]

The embedded backend (files in a data directory) and the PostgreSQL one (tables in a
throwaway PostGIS cluster, as the tests make it: ``tests/postgres.py``): the lookups
every signed-in request makes (a token, a session), a sign-in's reservation of a try,
one audit line written, and the whole audit log read.  Medians of repeated calls, in
one process; prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from _server import ROOT  # noqa: F401  (puts the project on sys.path)
from geodata.store.accounts import open_accounts
from server.users import UserStore


def median_ms(call, repeat: int = 200) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def figures(location: str, users: int, lines: int) -> dict[str, float]:
    accounts = open_accounts(location)
    store = UserStore(accounts)
    try:
        for i in range(users):  # records as add() writes them, without a password hash each (slow on purpose)
            accounts.add_user({"name": f"u{i}", "role": "viewer", "token_sha256": f"{i:064x}", "password_hash": None,
                               "created": "2026-12-02T00:00:00+00:00", "session_nonce": f"n{i}"})
        _, token = store.add("wang", "editor")
        nonce = store.session_nonce("wang")
        entry = {"time": "2026-12-02T00:00:00+00:00", "user": "wang", "remote_addr": "10.0.0.1",
                 "action": "upload", "target": "grids", "outcome": "stored", "status": 201, "version": 3}
        for _ in range(lines):
            accounts.append_audit(entry)
        clock = iter(range(10**9))
        return {
            "token lookup (by_token)": median_ms(lambda: store.by_token(token)),
            "session lookup (by_session)": median_ms(lambda: store.by_session("wang", nonce)),
            "reserve a sign-in try": median_ms(lambda: accounts.reserve_try(
                "password", f"x{next(clock)}", "10.0.0.1", now=1e6, window_s=900, limit=10**9)),
            "append one audit line": median_ms(lambda: accounts.append_audit(entry)),
            f"read the audit log ({lines:,} lines)": median_ms(accounts.audit, repeat=5),
        }
    finally:
        accounts.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=10000)
    args = parser.parse_args()
    from tests.postgres import Cluster, _bindir

    with tempfile.TemporaryDirectory() as data_dir:
        results = {"files": figures(data_dir, args.users, args.lines)}
        bindir = _bindir()
        if bindir is None:
            print("PostgreSQL with PostGIS is not installed: the embedded backend alone")
        else:
            cluster = Cluster(bindir)
            try:
                results["postgresql"] = figures(cluster.new_database(), args.users, args.lines)
            finally:
                cluster.remove()
    print(f"{args.users:,} users; medians in ms")
    print(f"{'':40s}" + "".join(f"{name:>12s}" for name in results))
    for row in results["files"]:
        print(f"{row:40s}" + "".join(f"{results[name][row]:12.3f}" for name in results))


if __name__ == "__main__":
    main()
