"""Sign-in under attack: what 30 wrong passwords get, and what a known or unknown user costs.

    .venv/bin/python benchmarks/bench_signin.py

Starts the real server (``python -m server``, 2 gunicorn workers) on an empty data
directory and signs in over loopback; then times ``UserStore.check_password`` in
process for a known user, an unknown one and one without a password (the server
answers all three after the same single hash check).  Prints figures; asserts nothing.
"""

from __future__ import annotations

import collections
import re
import statistics
import tempfile
import time

import requests

from _server import running_server


def sign_in(session: requests.Session, base: str, name: str, password: str) -> requests.Response:
    form = session.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', form).group(1)
    return session.post(f"{base}/login", data={"name": name, "password": password, "csrf_token": token},
                        allow_redirects=False, timeout=10)


def main() -> None:
    from server.users import UserStore

    with tempfile.TemporaryDirectory() as data_dir:
        users = UserStore(data_dir)
        users.add("wang", "editor", password="right-password")
        users.add("script", "viewer")  # no password
        with running_server(data_dir, DEMO=0, WORKERS=2) as (base, _):
            session = requests.Session()
            session.trust_env = False
            statuses, start = collections.Counter(), time.perf_counter()
            for i in range(30):
                statuses[sign_in(session, base, "wang", f"guess-{i}").status_code] += 1
            elapsed = time.perf_counter() - start
            print(f"30 wrong passwords for one account:   {elapsed:5.2f} s  statuses {dict(statuses)}")
            resp = sign_in(session, base, "wang", "right-password")
            print(f"then the right password:               {resp.status_code}  "
                  f"Retry-After {resp.headers.get('Retry-After')} s")

        def median_ms(name: str) -> float:
            times = []
            for _ in range(15):
                start = time.perf_counter()
                users.check_password(name, "wrong")
                times.append((time.perf_counter() - start) * 1000)
            return statistics.median(times)

        users.check_password("nobody", "wrong")  # the dummy hash is made once, on first use
        for label, name in (("known user", "wang"), ("unknown user", "nobody"), ("user without password", "script")):
            print(f"check_password, {label + ':':23s} {median_ms(name):6.1f} ms (median of 15)")


if __name__ == "__main__":
    main()
