"""Migration of an old data directory (one GeoJSON file a version) into the embedded store.

    .venv/bin/python benchmarks/bench_migrate.py [--edits N]

Builds the Ningbo demo (8,499 grids) with the old FileStore, then N versions of grids that each
change 50 grids, and a restore of version 1; prints how long ``migrate`` takes, the peak memory of
the process while it runs, and the size of the old layers against the database it fills.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from _server import ROOT  # noqa: F401  (puts the project on sys.path)
from geodata.demo import build_demo
from geodata.store import FileStore, migrate
from geodata.store.sqlite import SQLiteStore
from geodata.validate import validate


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=5, help="versions of grids that change 50 grids each")
    args = parser.parse_args()
    demo = build_demo()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        old = FileStore(root)
        for name in ("districts", "grids", "centers"):
            old.write(name, validate(getattr(demo, name), name).data, author="demo", message="宁波示例")
        grids = old.read("grids").copy()
        for n in range(args.edits):
            grids.loc[grids.index[n * 50:(n + 1) * 50], "population"] += 1
            old.write("grids", grids, author="editor", message=f"第 {n + 1} 次修改")
        old.write("grids", old.read("grids", 1), author="editor", message="恢复到版本 1")
        versions = sum(len(old.versions(name)) for name in old.layer_names)
        old_bytes = size(root / "layers")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        del old, grids

        target = SQLiteStore(root)
        start = time.perf_counter()
        report = migrate.migrate(root, target)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        target.close()
        for line in report:
            print(" ", line)
        print(f"{len(demo.grids):,} grids, {versions} versions in all: migrated in {seconds:.1f} s "
              f"({seconds / versions:.2f} s a version)")
        database = sum(p.stat().st_size for p in root.glob("gridmap.sqlite*"))
        print(f"old layers {old_bytes / 2**20:.1f} MiB -> gridmap.sqlite {database / 2**20:.1f} MiB "
              "(with its write-ahead log)")
        print(f"peak RSS {peak / 1024:.0f} MiB (before migrating, with the demo built: {before / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
