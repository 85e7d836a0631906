"""Layer storage engines side by side: the old FileStore, the embedded SQLite store and PostGIS.

    .venv/bin/python benchmarks/bench_store.py            # the Ningbo demo and ten times its grids
    .venv/bin/python benchmarks/bench_store.py --quick    # the Ningbo demo only
    .venv/bin/python benchmarks/bench_store.py --database-url postgresql://user@127.0.0.1/db

Sizes: the Ningbo demo (8,499 grids) and ``--copies`` (10) copies of it side by side
(84,990 grids, 707k vertices; ``_demo10.py``, cached on disk).  For each engine and
size, on the grids layer:

- write of the whole layer (version 1), replace of all grids (version 2: every
  grid's population changed), merge of 50 changed grids (``write_changes``), and
  how much the store grows with that merge, as a share of the layer's size on disk
  (SQLite: the database file and its WAL after a checkpoint; PostGIS: the
  ``pg_total_relation_size`` of its tables; FileStore: the data directory);
- cold read of the whole layer (``read``) in a new store object;
- ``query(bbox=…, limit=100)`` over ``--queries`` random boxes of 1-4 km around
  grids, in a new store object: the first query alone, and p50/p95 with it included.
  The number matched is checked against shapely on the same frame.

Then, through HTTP, for each engine the app can run on (it is read from
``server/__init__.py``: FileStore until the app opens its store with ``open_store``):
cold start of ``python -m server`` on a new data directory holding the layers to its
first answered ``/api/collections/grids/items?bbox=…&limit=100`` (the workers compute
their analysis and map layers in the background: an app whose workers compute them
before they fork pays for it here), then, once the map layers are answered (the
workers' warm-up done), that route's p50/p95 over the same boxes (gzip asked for, as
browsers do; then again without) on one kept-alive connection with a thin client (http.client:
the time of the request on the wire, its answer read and unzipped); then again with
python-requests, whose own work (proxy lookups in the environment, header objects) adds some
2.5 ms a request here, which no browser or QGIS pays; one ``/api/summary?level=district`` and then the
largest RSS among the server's processes: with the analysis done.
Timings are wall clock on a shared machine: the load average is printed beside them,
and the CPU time of this process beside write and replace.

PostGIS: ``--database-url`` or ``GRIDMAP_BENCH_DATABASE_URL`` (a fresh database is
created beside the one named, when the role may), else a throwaway cluster from
Debian's PostgreSQL 15 (``postgresql-15-postgis-3``) on 127.0.0.1, removed afterwards.
The column is left out, with the reason printed, when neither works or
``geodata/store/postgis.py`` is not there.

Prints figures and a table against the issue's targets; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import importlib
import os
import pwd
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import requests

from _demo10 import scaled_demo
from _server import ROOT, free_port, running_server, wait_for_warm_up

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MERGED = 50
TARGETS = {  # at the large size (the "Done when")
    "replace": "≤ 10 s", "merge": "≤ 1 s", "growth": "≤ 5 %", "p50": "≤ 5 ms", "http_start": "≤ 10 s",
    "http_p50": "≤ 5 ms", "rss": "≤ 1024 MB",
}
ENGINES = ("FileStore", "SQLite", "PostGIS")


# --- engines -----------------------------------------------------------------------------------

@dataclass
class Engine:
    """One storage place for one run: ``open()`` gives a new store object on it."""

    name: str
    open: Callable
    size: Callable[[], int]  # bytes on disk now
    location: str  # a data directory, or the database URL
    cleanup: Callable[[], None] = lambda: None


def dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def file_engine(tmp: Path) -> Engine:
    from geodata.store.files import FileStore

    root = Path(tempfile.mkdtemp(prefix="files-", dir=tmp))
    return Engine("FileStore", lambda: FileStore(root), lambda: dir_bytes(root / "layers"), str(root),
                  lambda: shutil.rmtree(root, ignore_errors=True))


def sqlite_engine(tmp: Path) -> Engine:
    from geodata.store.sqlite import FILE, SQLiteStore

    root = Path(tempfile.mkdtemp(prefix="sqlite-", dir=tmp))

    def size() -> int:
        path = root / FILE
        if path.exists():  # fold the WAL into the file first, so both count only what is kept
            with contextlib.closing(sqlite3.connect(path, timeout=60)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in root.glob(FILE + "*"))

    return Engine("SQLite", lambda: SQLiteStore(root), size, str(root), lambda: shutil.rmtree(root, ignore_errors=True))


class Postgres:
    """Where PostGIS databases come from: a given server, or a throwaway cluster started here."""

    def __init__(self, url: str | None, tmp: Path):
        self.url, self.tmp, self.cluster, self.created = url, tmp, None, []

    def start(self) -> None:
        """A throwaway cluster unless a URL was given (RuntimeError saying why not)."""
        if self.url:
            return
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"no URL given and no {PG_BIN}/initdb (apt-get install postgresql-15-postgis-3)")
        self.cluster = Path(tempfile.mkdtemp(prefix="pg-", dir=self.tmp))
        as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            user = pwd.getpwnam("postgres")
            os.chmod(self.tmp, 0o755)
            os.chown(self.cluster, user.pw_uid, user.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        port = free_port()
        run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
        try:
            run(str(PG_BIN / "initdb"), "-D", str(self.cluster / "data"), "-A", "trust", "-U", "postgres",
                "-E", "UTF8", "--no-sync")
            run(str(PG_BIN / "pg_ctl"), "-D", str(self.cluster / "data"), "-l", str(self.cluster / "log"), "-w",
                "-o", f"-p {port} -k {self.cluster} -c listen_addresses=127.0.0.1", "start")
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"the throwaway cluster did not start: {(e.stderr or e.stdout).strip()[-300:]}") from e
        self._stop = lambda: run(str(PG_BIN / "pg_ctl"), "-D", str(self.cluster / "data"), "-m", "fast", "-w", "stop")
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        print(f"PostgreSQL: a throwaway cluster on 127.0.0.1:{port} ({self.cluster})")

    def database(self, name: str) -> str:
        """The URL of a new, empty database with PostGIS (the given one itself when none may be created)."""
        import psycopg

        parts = urllib.parse.urlsplit(self.url)
        url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
        try:
            with psycopg.connect(self.url, autocommit=True) as db:
                db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                db.execute(f'CREATE DATABASE "{name}"')
            self.created.append(name)
        except psycopg.Error as e:
            print(f"PostGIS: cannot create database {name} ({str(e).strip()}): using {self.url} as it is")
            url = self.url
        with contextlib.suppress(psycopg.Error), psycopg.connect(url, autocommit=True) as db:
            db.execute("CREATE EXTENSION IF NOT EXISTS postgis")  # the store may need a superuser for it
        return url

    def close(self) -> None:
        import psycopg

        if self.cluster is not None:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._stop()
            shutil.rmtree(self.cluster, ignore_errors=True)
            return
        for name in self.created:
            with contextlib.suppress(psycopg.Error), psycopg.connect(self.url, autocommit=True) as db:
                db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgis_engine(pg: Postgres, name: str) -> Engine:
    import psycopg

    module = importlib.import_module("geodata.store.postgis")
    url = pg.database(name)

    def size() -> int:
        with psycopg.connect(url, autocommit=True) as db:  # relation files grow as rows are written
            row = db.execute("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') "
                             "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                             "AND c.relname <> 'spatial_ref_sys'").fetchone()
        return int(row[0])

    return Engine("PostGIS", lambda: module.PostGISStore(url), size, url)


# --- the store's own figures -------------------------------------------------------------------

@dataclass
class Figures:
    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def timed(fn, cpu: dict | None = None, key: str = ""):
    """(result, wall seconds); this process's CPU seconds go to ``cpu[key]`` (steadier on a busy machine)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = fn()
    if cpu is not None:
        cpu[key] = time.process_time() - start_cpu
    return result, time.perf_counter() - start


def bboxes(grids, count: int, seed: int = 11) -> list[tuple[float, float, float, float]]:
    """Boxes of 1-4 km around random grids (about 0.009° of latitude a km)."""
    import shapely

    rng = np.random.default_rng(seed)
    points = shapely.get_coordinates(shapely.point_on_surface(grids.geometry.values[rng.choice(len(grids), count)]))
    half = rng.uniform(0.0045, 0.018, count)
    return [(round(x - h, 6), round(y - h, 6), round(x + h, 6), round(y + h, 6))
            for (x, y), h in zip(points, half)]


def expected_matches(frame, boxes) -> list[int]:
    import shapely

    tree = shapely.STRtree(frame.geometry.values)
    return [len(tree.query(shapely.box(*b), predicate="intersects")) for b in boxes]


def store_figures(engine: Engine, grids, boxes, expected, query_budget_s: float) -> Figures:
    out = Figures()
    v = out.values
    store = engine.open()
    empty = engine.size()
    _, v["write"] = timed(lambda: store.write("grids", grids, author="bench", message="whole layer"), v, "write_cpu")
    layer_bytes = engine.size() - empty
    v["layer_mb"] = layer_bytes / 1e6
    replaced = grids.copy()
    replaced["population"] = replaced["population"].fillna(0) + 1
    _, v["replace"] = timed(lambda: store.write("grids", replaced, author="bench", message="every population"),
                            v, "replace_cpu")
    before = engine.size()
    rng = np.random.default_rng(50)
    upserts = replaced.iloc[np.sort(rng.choice(len(replaced), MERGED, replace=False))].copy()
    upserts["population"] = upserts["population"] + 1
    merged, v["merge"] = timed(lambda: store.write_changes("grids", upserts=upserts, author="bench",
                                                           message=f"{MERGED} grids"))
    v["growth"] = 100 * (engine.size() - before) / layer_bytes
    if merged.features != len(grids) or merged.version != 3:
        out.notes.append(f"merge gave version {merged.version} with {merged.features} features, "
                         f"expected 3 with {len(grids)}")
    store.close()

    store = engine.open()
    frame, v["read"] = timed(lambda: store.read("grids"))
    if len(frame) != len(grids) or int(frame["population"].sum()) != int(replaced["population"].sum()) + MERGED:
        out.notes.append(f"cold read gave {len(frame)} rows, population {frame['population'].sum()}")
    store.close()

    store = engine.open()
    times, wrong = [], []
    started = time.perf_counter()
    for box, want in zip(boxes, expected):
        page, took = timed(lambda: store.query("grids", bbox=box, limit=100))
        times.append(took)
        if page.number_matched != want or len(page.features) != min(100, want):
            wrong.append((box, page.number_matched, want))
        if time.perf_counter() - started > query_budget_s:
            break
    store.close()
    v["first"] = times[0] * 1000
    v["p50"] = statistics.median(times) * 1000
    v["p95"] = float(np.percentile(times, 95)) * 1000
    v["queries"] = len(times)
    if len(times) < len(boxes):
        out.notes.append(f"only {len(times)} of {len(boxes)} queries within the {query_budget_s:.0f} s budget")
    if wrong:
        box, got, want = wrong[0]
        out.notes.append(f"{len(wrong)} queries matched a wrong number of grids, e.g. bbox={box}: {got}, "
                         f"shapely says {want}")
    return out


# --- through HTTP ------------------------------------------------------------------------------

def app_engines(root: Path = ROOT) -> tuple[list[str], str]:
    """The engines ``python -m server`` of the tree ``root`` can run on, and why."""
    source = (root / "server" / "__init__.py").read_text()
    if "open_store" not in source:
        return ["FileStore"], f"the app of {root} opens a FileStore (its server/__init__.py has no open_store)"
    config = (root / "server" / "config.py").read_text()
    engines = ["SQLite"] + (["PostGIS"] if '"DATABASE_URL"' in config else [])
    return engines, f"the app of {root} opens its store with open_store"


def http_runs(old_app: str | None) -> list[tuple[str, Path]]:
    """(engine, tree whose ``python -m server`` runs) for each HTTP column, printing why."""
    engines, why = app_engines()
    print(f"HTTP: {why}")
    runs = [(name, ROOT) for name in engines]
    if old_app and "FileStore" not in engines:
        old_engines, old_why = app_engines(Path(old_app).resolve())
        print(f"HTTP baseline: {old_why}")
        runs += [(name, Path(old_app).resolve()) for name in old_engines if name == "FileStore"]
    return runs


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields.get(k, "0 kB").split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))


def server_pid(port: int) -> int:
    """The ``python -m server`` listening on ``port`` (our own child, found through /proc)."""
    me = os.getpid()
    for pid in descendants(me)[1:]:
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if b"server" in cmd and f"GRIDMAP_PORT={port}".encode() in env:
                return pid
    raise RuntimeError("the server process was not found")


def http_figures(root: Path, data_dir: str, settings: dict, boxes, expected) -> Figures:
    out = Figures()
    v = out.values
    start = time.perf_counter()
    with running_server(data_dir, root, DEMO="false", **settings) as (base, _):
        items = f"{base}/api/collections/grids/items"
        first = requests.get(items, params={"bbox": ",".join(map(str, boxes[0])), "limit": 100}, timeout=300)
        v["http_start"] = time.perf_counter() - start
        if first.status_code != 200 or first.json().get("numberMatched") != expected[0]:
            out.notes.append(f"first items page: HTTP {first.status_code}, numberMatched "
                             f"{first.json().get('numberMatched') if first.ok else '-'} (expected {expected[0]}): "
                             f"the app is not serving this store's data")
            return out
        warm, v["warm"] = timed(lambda: wait_for_warm_up(base))
        host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
        lean = http.client.HTTPConnection(host, port, timeout=60)  # one kept-alive connection, as a browser's
        session = requests.Session()
        runs = (("gzip, deflate", "http", lean), ("identity", "http_plain", lean),
                ("gzip, deflate", "http_requests", session))
        for shift, (encoding, key, client) in enumerate(runs):
            times = []
            for box in boxes:  # moved by 1e-6° each time round: a new URL, never a cached page
                query = urllib.parse.urlencode({"bbox": ",".join(str(round(b + shift * 1e-6, 6)) for b in box),
                                                "limit": 100})
                t = time.perf_counter()
                if client is lean:
                    lean.request("GET", f"/api/collections/grids/items?{query}", headers={"Accept-Encoding": encoding})
                    answer = lean.getresponse()
                    body = answer.read()
                    if answer.headers.get("Content-Encoding") == "gzip":
                        body = gzip.decompress(body)
                    ok = answer.status == 200
                else:
                    ok = session.get(f"{items}?{query}", headers={"Accept-Encoding": encoding}, timeout=60).ok
                times.append(time.perf_counter() - t)
                if not ok:
                    out.notes.append(f"items?{query}: not 200")
                    return out
            v[f"{key}_p50"] = statistics.median(times) * 1000
            v[f"{key}_p95"] = float(np.percentile(times, 95)) * 1000
        lean.close()
        summary, v["summary"] = timed(lambda: session.get(f"{base}/api/summary", params={"level": "district"},
                                                          timeout=600))
        if not summary.ok:
            out.notes.append(f"/api/summary?level=district: HTTP {summary.status_code}")
        port = urllib.parse.urlsplit(base).port
        master = server_pid(port)
        sizes = {pid: rss_mb(pid) for pid in descendants(master)}
        v["rss"] = max(now for now, _ in sizes.values())
        v["rss_peak"] = max(peak for _, peak in sizes.values())
        v["rss_master"] = sizes[master][0]
        out.notes.append(f"{len(sizes)} server processes, RSS now/peak MB: "
                         + ", ".join(f"{now:.0f}/{peak:.0f}" for now, peak in sizes.values()))
    return out


def fill_for_http(engine: Engine, demo) -> None:
    from geodata.validate import validate

    store = engine.open()
    for name in ("districts", "grids", "centers"):
        store.write(name, validate(getattr(demo, name), name).data, author="bench", message="bench data")
    store.close()


# --- printing ----------------------------------------------------------------------------------

ROWS = [  # key, label, unit, format
    ("write", "write of the whole layer", "s", "{:.2f}"),
    ("replace", "replace of all grids", "s", "{:.2f}"),
    ("write_cpu", "  write: CPU of this process", "s", "{:.2f}"),
    ("replace_cpu", "  replace: CPU of this process", "s", "{:.2f}"),
    ("merge", f"merge of {MERGED} grids", "s", "{:.3f}"),
    ("growth", "store growth by the merge", "%", "{:.2f}"),
    ("layer_mb", "layer on disk", "MB", "{:.1f}"),
    ("read", "cold read of the layer", "s", "{:.2f}"),
    ("first", "first bbox query (cold)", "ms", "{:.1f}"),
    ("p50", "bbox query p50 (first incl.)", "ms", "{:.2f}"),
    ("p95", "bbox query p95", "ms", "{:.2f}"),
    ("http_start", "HTTP cold start to items", "s", "{:.2f}"),
    ("http_p50", "HTTP items?bbox p50", "ms", "{:.2f}"),
    ("http_p95", "HTTP items?bbox p95", "ms", "{:.2f}"),
    ("http_plain_p50", "  the same without gzip: p50", "ms", "{:.2f}"),
    ("http_plain_p95", "  the same without gzip: p95", "ms", "{:.2f}"),
    ("http_requests_p50", "  the same with python-requests: p50", "ms", "{:.2f}"),
    ("warm", "HTTP warm-up done (after the first page)", "s", "{:.1f}"),
    ("summary", "HTTP summary?level=district", "s", "{:.2f}"),
    ("rss", "max RSS of a server process", "MB", "{:.0f}"),
    ("rss_peak", "max peak RSS (VmHWM)", "MB", "{:.0f}"),
]


def table(title: str, results: dict[str, Figures], large: bool) -> None:
    print(f"\n{title}")
    head = f"{'figure':34s} | {'target':9s} | " + " | ".join(f"{e:>9s}" for e in ENGINES) + " | ratio (old ÷ new)"
    print(head)
    print("-" * len(head))
    for key, label, unit, fmt in ROWS:
        cells = {e: results[e].values.get(key) if e in results else None for e in ENGINES}
        if all(c is None for c in cells.values()):
            continue
        target = TARGETS.get(key, "") if large else ""
        shown = [f"{fmt.format(c):>9s}" if c is not None else f"{'-':>9s}" for c in cells.values()]
        ratios = []
        old = cells["FileStore"]
        if old and key not in ("layer_mb",):
            for e in ("SQLite", "PostGIS"):
                if cells[e]:
                    ratios.append(f"{e} {old / cells[e]:.1f}x")
        print(f"{label + ' (' + unit + ')':34s} | {target:9s} | " + " | ".join(shown) + " | " + ", ".join(ratios))
    for e in ENGINES:
        for note in results[e].notes if e in results else ():
            print(f"  {e}: {note}")


# --- main --------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the Ningbo demo only")
    parser.add_argument("--copies", type=int, default=10, help="the large size: copies of the demo (default 10)")
    parser.add_argument("--queries", type=int, default=200, help="bbox queries per engine (default 200)")
    parser.add_argument("--query-budget", type=float, default=60,
                        help="seconds of bbox queries at most per engine (the FileStore parses the layer each time)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: FileStore,SQLite,PostGIS")
    parser.add_argument("--no-http", action="store_true", help="the store figures only")
    parser.add_argument("--old-app", metavar="DIR",
                        help="a copy of a tree whose app still runs on the FileStore, for the HTTP baseline "
                             "(e.g. `mkdir /tmp/old && git archive e97fbee | tar -x -C /tmp/old`)")
    parser.add_argument("--database-url", default=os.environ.get("GRIDMAP_BENCH_DATABASE_URL"),
                        help="a PostgreSQL server for the PostGIS column (default: GRIDMAP_BENCH_DATABASE_URL, "
                             "else a throwaway cluster)")
    args = parser.parse_args()
    wanted = [e.strip() for e in args.engines.split(",")]
    sizes = [1] if args.quick else [1, args.copies]

    with tempfile.TemporaryDirectory(prefix="gridmap-bench-store-") as tmp:
        tmp = Path(tmp)
        pg = Postgres(args.database_url, tmp)
        postgis_skip = None
        if "PostGIS" in wanted:
            try:
                importlib.import_module("geodata.store.postgis")
                pg.start()
            except (ImportError, RuntimeError) as e:
                postgis_skip = f"PostGIS left out: {e}"
                print(postgis_skip)
        try:
            for copies in sizes:
                run_size(copies, args, wanted, pg, postgis_skip, tmp)
        finally:
            pg.close()


def run_size(copies: int, args, wanted: list[str], pg: Postgres, postgis_skip: str | None, tmp: Path) -> None:
    from geodata.validate import validate

    demo, built = timed(lambda: scaled_demo(copies))
    grids = validate(demo.grids, "grids").data
    vertices = len(grids.get_coordinates())
    print(f"\n=== {len(grids):,} grids, {vertices:,} vertices ({copies} × the Ningbo demo; "
          f"made or loaded in {built:.1f} s) ===")
    boxes = bboxes(grids, args.queries)
    expected = expected_matches(grids, boxes)
    print(f"{len(boxes)} bboxes of 1-4 km, {statistics.mean(expected):.1f} grids each on average")

    makers = {"FileStore": lambda suffix="": file_engine(tmp), "SQLite": lambda suffix="": sqlite_engine(tmp),
              "PostGIS": lambda suffix="": postgis_engine(pg, f"gridmap_bench_{copies}{suffix}")}
    results: dict[str, Figures] = {}
    for name in ENGINES:
        if name not in wanted or (name == "PostGIS" and postgis_skip):
            continue
        engine = makers[name]()
        try:
            results[name] = store_figures(engine, grids, boxes, expected, args.query_budget)
        except Exception as e:  # a broken engine is a figure too: say what broke, go on with the others
            results[name] = Figures(notes=[f"failed: {type(e).__name__}: {e}"])
        finally:
            engine.cleanup()
        f = results[name].values
        print(f"{name} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): "
              + (", ".join(f"{k} {f[k]:.3g}" for k in f) or "; ".join(results[name].notes)), flush=True)

    if not args.no_http:
        runs = http_runs(args.old_app)
        for name, root in runs:
            if name not in wanted or (name == "PostGIS" and postgis_skip):
                continue
            engine = makers[name]("_http")
            data_dir = engine.location if name != "PostGIS" else tempfile.mkdtemp(prefix="data-", dir=tmp)
            settings = {"DATABASE_URL": engine.location} if name == "PostGIS" else {}
            try:
                fill_for_http(engine, demo)
                http = http_figures(root, data_dir, settings, boxes, expected)
                results.setdefault(name, Figures()).values.update(http.values)
                results[name].notes.extend(f"HTTP: {n}" for n in http.notes)
            except Exception as e:
                results.setdefault(name, Figures()).notes.append(f"HTTP failed: {type(e).__name__}: {e}")
            finally:
                engine.cleanup()
        for name in ENGINES:
            if name in wanted and name not in dict(runs):
                results.setdefault(name, Figures()).notes.append(
                    "HTTP not measured: no app here runs on it" + ("" if name != "FileStore" or args.old_app else
                                                                   " (--old-app DIR: a checkout still on FileStore)"))
    if postgis_skip:
        results.setdefault("PostGIS", Figures()).notes.append(postgis_skip)
    table(f"{len(grids):,} grids (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", results,
          large=copies > 1)


if __name__ == "__main__":
    main()
