"""What the gettext catalogues cost at start and per text (issue #14): Babel imported, both .po files read and
compiled in memory, then a lookup, a plural form and a message said later.

    python benchmarks/bench_i18n.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = """
import time
t0 = time.perf_counter()
import babel.messages.pofile, babel.messages.mofile
t1 = time.perf_counter()
import geodata.i18n
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def main() -> None:
    runs = [subprocess.run([sys.executable, "-c", START], cwd=ROOT, capture_output=True, text=True, check=True)
            for _ in range(5)]
    babel, catalogues = zip(*(map(float, r.stdout.split()) for r in runs))
    print(f"start, median of 5 fresh processes: Babel imported {statistics.median(babel) * 1000:.0f} ms, "
          f"both catalogues read and compiled {statistics.median(catalogues) * 1000:.0f} ms")

    sys.path.insert(0, str(ROOT))
    from geodata import i18n

    keys = sum(1 for m in i18n.read_catalogue("zh") if m.id)
    n = 100_000
    for label, call in (("text(key, 'en')", lambda: i18n.text("nav.map", "en")),
                        ("ntext(key, 3, 'en')", lambda: i18n.ntext("upload.not_stored", 3, "en")),
                        ("says(key, **params).in_language('zh')",
                         lambda: i18n.says("error.no_grid", key="g00").in_language("zh"))):
        print(f"{label}: {timeit.timeit(call, number=n) / n * 1e6:.2f} µs ({keys} keys a catalogue)")


if __name__ == "__main__":
    main()
