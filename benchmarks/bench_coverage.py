"""The whole analysis at 1×, 3× and 10× the Ningbo demo, against the analysis before and the naive idiom.

    .venv/bin/python benchmarks/bench_coverage.py [--no-server]

Prints, in one run:

- the whole analysis cold (coverage, the four gap kinds, summaries) at 1×, 3× and 10×
  (``_demo10.scaled_demo``: 10× is 84,990 grids and 25,330 centres, the stand-in for a
  province), wall and CPU time, and the peak memory (VmHWM) of each size, each size in a
  fresh process so neither caches nor peaks mix; then the CPU time of each stage, from a
  run in one thread (CPU time of threads that wait on each other says little); and the province
  demo itself (``GRIDMAP_DEMO=zhejiang``, 85,004 grids), the figure the issue's ≤ 5 s is of;
- the growth exponent log(t10 / t1) / log(10) (1.0: linear);
- the analysis as it was before (``_coverage_reference.py``) at the same sizes, and whether
  the two agree at 1× and 3× (ratios to 1e-9, the same gaps with areas to 1e-6, equal summaries);
- the naive idiom for per-grid coverage at 10×: ``grids ∩ union(all catchments)``, per grid;
  the union is built whole, the intersections are timed on a random sample of grids and
  scaled to all of them (all 84,990 would take hours), next to gridmap's per-grid coverage;
- the incremental update at 10× through the catalog (the embedded store): the time from "a merge
  of 50 grids written" to "the analysis of the new versions ready" (``Catalog.analysis``: change
  sets, their rows, ``geodata.incremental.update``), against the cold analysis of the same run, for
  a merge of 50 changed populations (as ``bench_store``'s) and one of 50 neighbouring grids
  reshaped; and whether each equals a cold analysis of the new versions; then a what-if of two
  centres over the whole data, the kept analysis updated against analysed cold;
- warm /api/summary latency and a what-if on the real server (unless ``--no-server``).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time

from _server import ROOT

SIZES = (1, 3, 10)
NAIVE_SAMPLE = 300  # grids whose naive intersection is timed at 10×
STAGES = {  # geodata.coverage function -> stage name, in the order analyse calls them
    "metric_crs": "choose CRS", "catchments": "catchments", "grid_coverage": "per-grid coverage",
    "_coverage_frame": "coverage frame", "_invalid_edges": "edge check", "_service_gaps": "service gaps",
    "_missing_centers": "missing centres",
    "_tiling_and_overlaps": "tiling & overlaps", "_staffing_gaps": "staffing gaps", "_gaps_frame": "gaps frame",
    "summarise": "summaries",
}


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def load(copies: int):
    from _demo10 import scaled_demo
    from geodata.validate import validate

    demo = scaled_demo(copies)
    return tuple(validate(getattr(demo, n), n).data for n in ("grids", "centers", "districts"))


def one_size(copies: int, which: str) -> dict:
    """In a fresh process: one cold analysis of ``copies``× the demo (``which``: gridmap or reference)."""
    import geodata.coverage as coverage

    grids, centers, districts = load(copies)
    before = rss_mb()
    stages: dict[str, list[float]] = {}
    if which == "stages":  # one thread: what each stage costs, free of waiting on other threads
        coverage.THREADS = 1
    if which in ("gridmap", "stages"):
        for name, label in STAGES.items():  # analyse looks its helpers up when it runs: time each one
            def timed(*args, _f=getattr(coverage, name), _label=label, **kwargs):
                wall, cpu = time.perf_counter(), time.process_time()
                try:
                    return _f(*args, **kwargs)
                finally:
                    spent = stages.setdefault(_label, [0.0, 0.0])
                    spent[0] += time.perf_counter() - wall
                    spent[1] += time.process_time() - cpu
            setattr(coverage, name, timed)
        analyse = coverage.analyse
    else:
        import _coverage_reference

        analyse = _coverage_reference.analyse
    wall, cpu = time.perf_counter(), time.process_time()
    result = analyse(grids, centers, districts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"copies": copies, "grids": len(grids), "centres": len(centers), "wall": wall, "cpu": cpu,
            "stages": stages, "rss_before_mb": before, "peak_mb": peak_rss_mb(),
            "gaps": result.gaps["kind"].value_counts().to_dict()}


def province(_: int) -> dict:
    """In a fresh process: one cold analysis of the province demo (``GRIDMAP_DEMO=zhejiang``), built first."""
    from geodata.coverage import analyse
    from geodata.demo import DEMOS
    from geodata.validate import validate

    demo = DEMOS["zhejiang"]()
    grids, centers, districts = (validate(getattr(demo, n), n).data for n in ("grids", "centers", "districts"))
    before = rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    analyse(grids, centers, districts)
    return {"grids": len(grids), "centres": len(centers), "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu, "rss_before_mb": before, "peak_mb": peak_rss_mb()}


def agree(copies: int) -> dict:
    """In a fresh process: do gridmap and the reference give the same analysis of ``copies``× the demo?"""
    import _coverage_reference
    from geodata.coverage import analyse

    grids, centers, districts = load(copies)
    problems = _coverage_reference.differences(_coverage_reference.analyse(grids, centers, districts),
                                               analyse(grids, centers, districts))
    return {"copies": copies, "problems": problems}


def naive(copies: int) -> dict:
    """In a fresh process: the naive idiom (intersection with the union of all catchments) against gridmap's."""
    import numpy as np
    import shapely

    from geodata.coverage import Params, catchments, grid_coverage
    from geodata.crs import metric_crs

    grids, centers, _ = load(copies)
    crs = metric_crs(grids)
    grid_geoms = grids.geometry.to_crs(crs).values
    discs = catchments(centers.to_crs(crs), Params())

    wall = time.perf_counter()
    fast, _ = grid_coverage(grid_geoms, discs)
    fast_s = time.perf_counter() - wall

    wall = time.perf_counter()
    union = shapely.union_all(discs)
    union_s = time.perf_counter() - wall
    sample = np.random.default_rng(12).choice(len(grid_geoms), size=min(NAIVE_SAMPLE, len(grid_geoms)),
                                              replace=False)
    wall = time.perf_counter()
    ratio = shapely.area(shapely.intersection(grid_geoms[sample], union)) / shapely.area(grid_geoms[sample])
    per_grid = (time.perf_counter() - wall) / len(sample)
    return {"fast_s": fast_s, "union_s": union_s, "per_grid_s": per_grid, "grids": len(grid_geoms),
            "sample": len(sample), "naive_s": union_s + per_grid * len(grid_geoms),
            "largest_difference": float(np.abs(fast[sample] - ratio).max())}


def incremental(copies: int) -> dict:
    """In a fresh process: the catalog's analysis after 50-grid merges, updated, against cold."""
    import tempfile

    import numpy as np
    import shapely
    from _coverage_reference import differences
    from shapely.affinity import scale

    from geodata.catalog import Catalog
    from geodata.coverage import analyse
    from geodata.jobs import whatif_summaries
    from geodata.store import open_store

    grids, centers, districts = load(copies)
    out = {"grids": len(grids)}
    with tempfile.TemporaryDirectory() as data_dir:
        store = open_store(data_dir)
        for name, frame in (("grids", grids), ("centers", centers), ("districts", districts)):
            store.write(name, frame, author="bench")
        catalog = Catalog(store)
        wall, cpu = time.perf_counter(), time.process_time()
        catalog.analysis()
        out["cold_s"], out["cold_cpu_s"] = time.perf_counter() - wall, time.process_time() - cpu
        catalog._sharing = None
        current = store.read("grids")
        rng = np.random.default_rng(50)
        populations = current.iloc[np.sort(rng.choice(len(current), 50, replace=False))].copy()
        populations["population"] = populations["population"].fillna(0) + 1
        # a grid and its 49 nearest (a community or two), each 2 % smaller about its centre: gaps open,
        # their units' and districts' checks run again
        middle = shapely.centroid(current.geometry.values)
        seed = middle[len(current) // 3]
        reshaped = current.iloc[np.sort(np.argsort(shapely.distance(middle, seed))[:50])].copy()
        reshaped = reshaped.set_geometry([scale(g, 0.98, 0.98) for g in reshaped.geometry.values], crs=4326)
        for label, upserts in (("populations", populations), ("reshaped", reshaped)):
            wall = time.perf_counter()
            store.write_changes("grids", upserts=upserts, author="bench", message=f"50 grids: {label}")
            written, cpu = time.perf_counter(), time.process_time()
            updated = catalog.analysis()
            ready = time.perf_counter()
            out[label] = {"write_s": written - wall, "ready_s": ready - written, "cpu_s": time.process_time() - cpu,
                          "updated": catalog._sharing is not None}
            if catalog._sharing is not None:
                catalog._sharing.join()
                out[label]["shared_s"] = time.perf_counter() - written
                catalog._sharing = None
            cold = analyse(*(store.read(n) for n in ("grids", "centers", "districts")))
            out[label]["problems"] = differences(cold, updated)
            out[label]["same_order"] = (list(cold.gaps["gap_id"]) == list(updated.gaps["gap_id"])
                                        and all(cold.summaries[k].equals(updated.summaries[k]) for k in cold.summaries))
        # a what-if over the whole data: the kept analysis updated with the proposed centres, against cold
        lon, lat = store.read("grids").geometry.values[len(current) // 2].centroid.coords[0]
        proposed = ((lon, lat, "community"), (lon + 0.02, lat + 0.01, "street"))
        wall = time.perf_counter()
        catalog.what_if(proposed)
        out["whatif_updated_s"] = time.perf_counter() - wall
        inputs = {n: store.current(n).version for n in ("grids", "centers", "districts")}
        wall = time.perf_counter()
        whatif_summaries(store, inputs, catalog.params, proposed)
        out["whatif_cold_s"] = time.perf_counter() - wall
    return out


def child(task: str, *args) -> dict:
    """Run ``task`` in a fresh interpreter and return what it printed (JSON)."""
    done = subprocess.run([sys.executable, __file__, "--child", task, *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{task} {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def exponent(small: float, large: float, factor: float) -> float:
    return math.log(large / small) / math.log(factor)


def main(server: bool = True) -> None:
    from geodata.coverage import THREADS

    for copies in SIZES:  # build the cached layers first, so no timing pays for them
        child("load", copies)

    print(f"whole analysis, cold, one fresh process per size, {THREADS} threads "
          "(wall / CPU; CPU counts every thread):")
    runs = {}
    for copies in SIZES:
        run = runs[copies] = child("gridmap", copies)
        print(f"  {copies:>2}× ({run['grids']:,} grids, {run['centres']:,} centres): {run['wall']:.2f} s wall, "
              f"{run['cpu']:.2f} s CPU; peak RSS {run['peak_mb']:.0f} MB ({run['rss_before_mb']:.0f} MB "
              f"with the layers loaded, before the analysis)")
        serial = child("stages", copies)
        stages = serial["stages"]
        print(f"       in one thread {serial['wall']:.2f} s wall, {serial['cpu']:.2f} s CPU; by stage (s CPU): "
              + ", ".join(f"{label} {cpu:.2f}" for label, (_, cpu) in stages.items())
              + f", other (projecting the layers, copying frames) "
                f"{serial['cpu'] - sum(cpu for _, cpu in stages.values()):.2f}")
    print(f"  gaps at 10×: {runs[10]['gaps']}")
    real = child("province", 0)
    print(f"  the province demo (GRIDMAP_DEMO=zhejiang: {real['grids']:,} grids, {real['centres']:,} centres): "
          f"{real['wall']:.2f} s wall, {real['cpu']:.2f} s CPU (goal ≤ 5 s); peak RSS {real['peak_mb']:.0f} MB "
          f"({real['rss_before_mb']:.0f} MB with the layers loaded; goal ≤ 1 GB a worker)")
    print(f"growth exponent 1× → 10×: {exponent(runs[1]['wall'], runs[10]['wall'], 10):.2f} wall, "
          f"{exponent(runs[1]['cpu'], runs[10]['cpu'], 10):.2f} CPU (goal ≤ 1.15); "
          f"3× → 10×: {exponent(runs[3]['wall'], runs[10]['wall'], 10 / 3):.2f} wall")

    print("the analysis before (benchmarks/_coverage_reference.py), same sizes:")
    for copies in SIZES:
        old = child("reference", copies)
        print(f"  {copies:>2}×: {old['wall']:.2f} s wall, {old['cpu']:.2f} s CPU, peak RSS {old['peak_mb']:.0f} MB; "
              f"gridmap now {old['wall'] / runs[copies]['wall']:.1f}× faster")
    for copies in (1, 3):
        problems = child("agree", copies)["problems"]
        print(f"  same answers at {copies}×: " + ("yes" if not problems else "NO: " + "; ".join(problems)))

    cost = child("naive", 10)
    print(f"naive idiom at 10×, grids ∩ union(all catchments): union {cost['union_s']:.2f} s + "
          f"{cost['per_grid_s'] * 1000:.1f} ms per grid (timed on {cost['sample']} random grids) × "
          f"{cost['grids']:,} grids = {cost['naive_s']:.0f} s")
    print(f"  gridmap's per-grid coverage {cost['fast_s']:.2f} s: {cost['naive_s'] / cost['fast_s']:.0f}× faster "
          f"(goal ≥ 20×); the whole gridmap analysis {runs[10]['wall']:.2f} s: "
          f"{cost['naive_s'] / runs[10]['wall']:.0f}× faster than the naive coverage alone "
          f"(largest difference in ratio on the sample {cost['largest_difference']:.1e})")
    inc = child("incremental", 10)
    print(f"incremental update at 10× ({inc['grids']:,} grids) through the catalog (embedded store); the cold "
          f"analysis in the same run {inc['cold_s']:.2f} s wall, {inc['cold_cpu_s']:.2f} s CPU:")
    for label, text in (("populations", "50 populations changed"), ("reshaped", "50 neighbouring grids reshaped")):
        run = inc[label]
        how = "updated" if run["updated"] else "NOT updated (analysed cold)"
        same = "yes" if not run["problems"] and run["same_order"] else "NO: " + "; ".join(run["problems"] or ["order"])
        print(f"  merge of {text}: written in {run['write_s']:.3f} s; analysis of the new versions ready "
              f"{run['ready_s']:.3f} s later ({run['cpu_s']:.3f} s CPU; goal ≤ 0.5 s), {how}: "
              f"{inc['cold_s'] / run['ready_s']:.0f}× quicker than cold"
              + (f"; kept for the other workers {run['shared_s']:.2f} s after the write" if "shared_s" in run else "")
              + f"; equal to a cold analysis: {same}")
    print(f"  a what-if of two centres over the whole data (in process, the layers read already): the kept analysis "
          f"updated {inc['whatif_updated_s']:.2f} s, analysed cold {inc['whatif_cold_s']:.2f} s")

    if server:
        warm_server()


def warm_server() -> None:
    import requests

    from _server import demo_data_dir, running_server

    # what-ifs are open to anyone here (GRIDMAP_PUBLIC_WHATIF): the timing is of the work, not of signing in
    with demo_data_dir() as data_dir, running_server(data_dir, PUBLIC_WHATIF=1) as (base, up):
        session = requests.Session()
        url = f"{base}/api/summary?level=community"
        for _ in range(4):  # every worker has it cached
            session.get(url).raise_for_status()
        times = []
        for _ in range(50):
            t = time.perf_counter()
            session.get(url).raise_for_status()
            times.append(time.perf_counter() - t)
        print(f"warm /api/summary?level=community (1×): median of 50 {statistics.median(times) * 1000:.1f} ms "
              f"(server up after {up:.1f} s, analysis computed before it answered)")
        cold = time.perf_counter()
        session.get(f"{base}/api/summary?level=district&radius_community_m=1500").raise_for_status()
        print(f"what-if summary (radius_community_m=1500), computed on request as a job: "
              f"{time.perf_counter() - cold:.3f} s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        task, copies = sys.argv[2], int(sys.argv[3])
        if task == "load":
            load(copies)
            answer = {}
        else:
            answer = {"gridmap": lambda c: one_size(c, "gridmap"), "stages": lambda c: one_size(c, "stages"),
                      "reference": lambda c: one_size(c, "reference"), "agree": agree, "naive": naive,
                      "incremental": incremental, "province": province}[task](copies)
        print(json.dumps(answer))
    else:
        main(server="--no-server" not in sys.argv)
