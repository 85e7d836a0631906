"""A throwaway PostgreSQL + PostGIS cluster for the tests, and a fresh database for each test.

The cluster (Debian's ``postgresql-15-postgis-3``, which ``scripts/test.sh`` installs) is made
with ``initdb`` in a temp dir, listens on 127.0.0.1 on a free port (its unix socket stays in the
temp dir) and is removed at the end of the session.  PostgreSQL refuses to run as root, so as
root it runs as the ``postgres`` OS user.  Each test gets its own database, copied from a
template that already has PostGIS (``CREATE DATABASE ... TEMPLATE``: a file copy, fast).

Without the binaries the PostGIS tests skip, saying what to install, except in CI (CI=true),
where they fail: whatever the embedded store passes, the PostGIS store must pass.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

TEMPLATE = "gridmap_template"
INSTALL = "apt-get install postgresql-15-postgis-3"
HEARD_WITHIN_S = 1.0  # another instance's write reaches a PostGIS store by NOTIFY within this (issue #11)


def heard_within(seconds: float, probe):
    """``probe()``'s answer once it is truthy, asked again and again; fails after ``seconds`` (0: asked once)."""
    start = time.monotonic()
    while not (answer := probe()):
        assert time.monotonic() - start < seconds, f"not answered within {seconds} s"
        time.sleep(0.005)  # between polls; the deadline above bounds the wait
    return answer


def _bindir() -> Path | None:
    """The newest PostgreSQL whose server binaries and PostGIS extension are installed."""
    chosen = os.environ.get("GRIDMAP_PG_BINDIR")
    candidates = [chosen] if chosen else sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                                key=lambda p: int(Path(p).parent.name), reverse=True)
    for candidate in candidates:
        bindir = Path(candidate)
        version = bindir.parent.name
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")) and (
                Path(f"/usr/share/postgresql/{version}/extension/postgis.control").is_file() or chosen):
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One running PostgreSQL server in a temp dir; ``stop``/``start`` it to play a database restart."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="gridmap-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._user = None
        if os.geteuid() == 0:  # initdb and postgres refuse root: hand the temp dir to postgres
            self._user = pwd.getpwnam("postgres")
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._names = itertools.count(1)
        # an ICU English collation, as many servers have: keys must still sort by code point
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US", "--no-sync")
        self.start()
        with self.connect("postgres") as db:
            db.execute(f"CREATE DATABASE {TEMPLATE}")
        with self.connect(TEMPLATE) as db:
            db.execute("CREATE EXTENSION postgis")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self._user is not None:
            command = ["setpriv", f"--reuid={self._user.pw_uid}", f"--regid={self._user.pw_gid}", "--init-groups",
                       *command]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True,
                              env={**os.environ, "LC_ALL": "C.UTF-8", "PGTZ": "UTC"})
        if done.returncode:
            log = (self.root / "server.log").read_text(errors="replace")[-3000:] if (
                self.root / "server.log").exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}\n{log}")

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
                   "-c shared_buffers=64MB")  # a throwaway cluster: durability is not what it tests
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w",
                  "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str):
        import psycopg

        return psycopg.connect(self.url(database), autocommit=True)

    def new_database(self) -> str:
        """A fresh database with PostGIS; its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        with self.connect("postgres") as db:
            db.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        with self.connect("postgres") as db:
            db.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")

    def remove(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster():
    """The session's PostgreSQL + PostGIS cluster (skipped locally without the binaries, failed in CI)."""
    bindir = _bindir()
    if bindir is None:
        reason = f"PostgreSQL with PostGIS is not installed (/usr/lib/postgresql/*/bin); {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: in CI the PostGIS tests must run", pytrace=False)
        pytest.skip(reason)
    cluster = Cluster(bindir)
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def postgis_url(postgres_cluster):
    """A fresh PostGIS database of the session's cluster, dropped after the test."""
    url = postgres_cluster.new_database()
    yield url
    postgres_cluster.drop_database(url)


@pytest.fixture(params=["embedded", "postgis"])
def location(request, tmp_path) -> str:
    """Where a store and its accounts live: a data directory (the embedded engine), or a fresh PostGIS database."""
    if request.param == "embedded":
        return str(tmp_path / "data")
    return request.getfixturevalue("postgis_url")


def opened_at(location: str, open_one):
    """A fixture's body: a function opening another instance at ``location`` with ``open_one`` (as another
    process or server would), every instance closed after the test."""
    opened = []

    def another():
        opened.append(open_one(location))
        return opened[-1]

    yield another
    for instance in opened:
        instance.close()
