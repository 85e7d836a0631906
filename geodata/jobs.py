"""Heavy work as bounded jobs: what-if analyses, recommendations, what-ifs, upload checks.

A request that needs minutes of CPU or gigabytes of memory must not take a
request thread, or the server process, with it.  ``JobPool`` runs such work in
a few worker processes (pebble's ``ProcessPool``: a job over its time limit has
its process killed and replaced) and bounds it four ways:

- a wall-clock limit per job: over it, ``ServiceUnavailable`` (503, Retry-After);
- a memory limit per job process (``RLIMIT_AS``): a runaway job fails with
  ``MemoryError`` in its own process, answered as ``Unprocessable`` (422) naming
  the limit, and the memory goes back to the system with the process;
- at most ``queue`` jobs running or waiting, and at most ``waiters`` request
  threads waiting on them: beyond either, ``ServiceUnavailable`` at once, so
  threads stay free for readers of what is already computed.

Jobs take small arguments (the data directory, the layer versions, parameters)
and read the layers in the job process, from a store kept there (``store_at``); their
results come back pickled.  Identical jobs in flight at once run once.

The pool starts at its first job (so after a server forks its workers, one pool
per server process), with the ``forkserver`` start method (forking a threaded
server is unsafe) preloading geopandas and shapely, so a new job process starts
in milliseconds.

Examples
--------
>>> pool = JobPool(processes=1, timeout_s=30, memory_mb=2048)  # doctest: +SKIP
>>> pool.run(analyse_versions, ("/srv/data", {"grids": 3, "centers": 2, "districts": 1}, Params()),
...          key=("analysis", "3-2-1"))  # doctest: +SKIP
>>> pool.close()  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import math
import multiprocessing
import os
import resource
import threading
from concurrent.futures import CancelledError, Future
from typing import Any, Callable, Hashable

from .errors import GridmapError, ServiceUnavailable, Unprocessable
from .i18n import Says, says

# imported by the fork server once, so job processes forked from it start warm; spopt (seconds, 150 MB) is not:
# a job process imports it at its first exact recommendation, and keeps it
PRELOAD = ["geodata.jobs", "geodata.coverage", "geodata.siting", "geodata.uploads", "geodata.store"]
BUSY_RETRY_S = 5  # what a busy answer suggests: most jobs take a second or two

log = logging.getLogger(__name__)


class JobPool:
    """A bounded pool of job processes (see the module's text).  Thread-safe; ``close`` when done."""

    def __init__(self, processes: int = 1, timeout_s: float = 60.0, memory_mb: int = 2048, queue: int = 4,
                 waiters: int = 2):
        if processes < 1 or queue < 1 or waiters < 1 or timeout_s <= 0 or memory_mb <= 0:
            raise ValueError("processes, queue, waiters, timeout_s and memory_mb must be positive")
        self.processes, self.timeout_s, self.memory_mb = processes, timeout_s, memory_mb
        self.queue, self.waiters = queue, waiters
        self._jobs = 0  # running + waiting jobs
        self._waiting = threading.BoundedSemaphore(waiters)  # request threads waiting on a job
        self._mutex = threading.Lock()  # starting jobs and the pool
        self._state = threading.Lock()  # the counts; all a job's done callback takes (it runs on pebble's threads)
        self._pool = None
        self._pid = None  # the process that started the pool: a forked child starts its own
        self._in_flight: dict[Hashable, Future] = {}
        self.started = 0  # jobs started since the pool was made (tests count them)

    # --- running a job -------------------------------------------------------------------
    def run(self, function: Callable, args: tuple = (), kwargs: dict | None = None, key: Hashable = None) -> Any:
        """``function(*args, **kwargs)`` in a job process; its result, or its error raised here.

        ``key`` names the job's inputs: a job with the same key already running is
        waited for instead of started again.  Raises ServiceUnavailable when busy or
        over the time limit, Unprocessable over the memory limit.
        """
        if not self._waiting.acquire(blocking=False):
            raise self._busy(says("jobs.waiters", count=self.waiters))
        try:
            with self._mutex:
                with self._state:
                    future = self._in_flight.get(key) if key is not None else None
                if future is None:
                    future = self._start(function, args, kwargs or {}, key)
            return self._result(future)
        finally:
            self._waiting.release()

    @property
    def in_flight(self) -> int:
        """Jobs running or waiting for a process."""
        return self._jobs

    def _start(self, function, args, kwargs, key) -> Future:  # called holding the mutex
        if self._jobs >= self.queue:
            raise self._busy(says("jobs.queue", count=self.queue))
        future = self._ready_pool().schedule(function, args, kwargs, timeout=self.timeout_s)
        with self._state:
            self._jobs += 1
            self.started += 1
            if key is not None:
                self._in_flight[key] = future
        future.add_done_callback(functools.partial(self._finished, key))
        return future

    def _finished(self, key, future: Future) -> None:
        with self._state:
            if key is not None and self._in_flight.get(key) is future:
                del self._in_flight[key]
            self._jobs -= 1

    def _result(self, future: Future):
        # a job waits at most for those ahead of it (one a waiting thread), each stopped at the time limit
        wait = self.timeout_s * math.ceil(min(self.queue, self.waiters) / self.processes) + 5
        try:
            return future.result(timeout=wait)
        except TimeoutError:
            if not future.done():  # still waiting for a process: give the thread back
                future.cancel()
                raise self._busy(says("jobs.waited")) from None
            raise ServiceUnavailable(says("jobs.timeout", seconds=f"{self.timeout_s:g}"),
                                     retry_after=math.ceil(self.timeout_s)) from None
        except MemoryError:
            raise self._over_memory() from None
        except CancelledError:
            raise self._busy(says("jobs.cancelled")) from None
        except GridmapError:
            raise
        except Exception as e:
            from pebble import ProcessExpired

            # killed or crashed (a C library out of memory, mostly), or GEOS out of memory (a GEOSException)
            if isinstance(e, ProcessExpired) or "bad_alloc" in str(e):
                raise self._over_memory() from None
            if isinstance(e, RuntimeError) and not self._pool_alive():  # the pool broke: the next job makes one
                raise self._busy(says("jobs.restarting")) from None
            raise

    def _over_memory(self) -> Unprocessable:
        return Unprocessable(says("jobs.memory", limit=self.memory_mb))

    def _busy(self, why: Says) -> ServiceUnavailable:
        return ServiceUnavailable(says("jobs.busy", why=why), retry_after=BUSY_RETRY_S)

    # --- the processes ---------------------------------------------------------------------
    def _ready_pool(self):  # called holding the mutex
        if self._pool is not None and self._pid == os.getpid():
            if self._pool.active:
                return self._pool
            self._stop(self._pool)  # broken: a new one below
        elif self._pid != os.getpid():  # a forked child: the parent's pool and jobs are not ours
            with self._state:
                self._jobs, self._in_flight = 0, {}
        from pebble import ProcessPool

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self._pool = ProcessPool(max_workers=self.processes, initializer=start_job_process,
                                 initargs=(self.memory_mb,), context=context)
        self._pid = os.getpid()
        return self._pool

    def warm(self) -> None:
        """Start the job processes now (a server's worker does, in the background) so the first job starts warm."""
        with self._mutex:
            pool = self._ready_pool()
        pool.active  # noqa: B018 — pebble starts its processes on first look

    def _pool_alive(self) -> bool:
        pool = self._pool
        return pool is not None and pool.active

    def close(self) -> None:
        """Stop the job processes (waiting jobs are cancelled).  The pool starts again if used."""
        with self._mutex:
            pool, self._pool = self._pool, None
            with self._state:
                waiting = list(self._in_flight.values())
        for future in waiting:
            future.cancel()
        if pool is not None and self._pid == os.getpid():
            self._stop(pool)

    def close_later(self) -> None:
        """``close`` on a thread of its own: safe from a garbage collector's finalizer, whatever thread runs it."""
        if self._pool is not None:
            threading.Thread(target=self.close, name="gridmap-jobs-close", daemon=True).start()

    @staticmethod
    def _stop(pool) -> None:
        pool.stop()
        try:
            pool.join(timeout=10)
        except Exception as e:  # stopping is best effort: pebble's own exit handler stops workers left over
            log.warning("job pool did not stop cleanly: %s", e)


def start_job_process(memory_mb: int) -> None:
    """In each job process: cap its address space, so a runaway job fails there with MemoryError, and
    yield the CPU to the server's request threads (readers of what is already computed come first)."""
    os.nice(10)
    limit = memory_mb * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


# --- the jobs: small arguments in, results out ---------------------------------------------------

def store_at(where):
    """The store a job works on: ``where`` itself when it is one (no pool), else the one at that location."""
    from .store import Store

    return where if isinstance(where, Store) else _store_at(str(where))


@functools.lru_cache(maxsize=4)
def _store_at(location: str):
    """The job process's own store at ``location`` (a data directory or database URL), kept with its frames."""
    from .store import open_store

    return open_store(location)


def read_versions(where, versions: dict[str, int | None]):
    """The layers at exactly these versions (None: not stored yet, an empty frame)."""
    from .catalog import empty_frame
    from .schema import LAYERS

    store = store_at(where)
    return [store.read(name, number) if number else empty_frame(LAYERS[name]) for name, number in versions.items()]


def analyse_versions(where, versions: dict[str, int | None], params):
    """The coverage analysis of grids, centers and districts at these versions."""
    from .coverage import analyse

    grids, centers, districts, *roads = read_versions(where, versions)  # roads: for network catchments
    return analyse(grids, centers, districts, params, roads=roads[0] if roads else None)


def recommend_versions(where, versions: dict[str, int | None], level: str, k: int, params,
                       unit: dict[str, str], solver: str):
    """Recommended sites over grids and centers at these versions."""
    from .siting import recommend

    grids, centers, *roads = read_versions(where, versions)  # roads: for network catchments
    return recommend(grids, centers, level, k, params, unit, solver, roads=roads[0] if roads else None)


def whatif_summaries(where, versions: dict[str, int | None], params,
                     proposed: tuple[tuple[float, float, str], ...], unit: dict[str, str] | None = None,
                     shared: str | None = None) -> dict:
    """The summaries of the analysis as if centres stood at ``proposed`` (lon, lat, level) too.

    ``shared`` names the analysis of these versions and parameters kept for every worker
    (``Store.shared``): a what-if of the whole dataset is that analysis updated with the proposed
    centres (``geodata.incremental``), in a fraction of the time and memory of analysing it all again.

    ``unit`` (e.g. {"city": "宁波市"}): when the kept analysis can be updated, the answer is still the
    whole dataset's (a centre by the unit's border covers people outside it too; the caller picks the
    unit's rows). Otherwise (walking catchments, nothing kept) only the unit's grids are analysed, against
    every centre: a province's what-if in a city's time and memory. Inside a street or community the
    districts' boundaries are left out then (the rest of the district is not a tiling gap).
    """
    import geopandas as gpd
    import pandas as pd
    import shapely

    from .coverage import analyse
    from .crs import STORAGE_CRS

    grids, centers, districts, *roads = read_versions(where, versions)  # roads: for network catchments
    extra = gpd.GeoDataFrame({"level": [p[2] for p in proposed]},
                             geometry=shapely.points([(p[0], p[1]) for p in proposed]), crs=STORAGE_CRS)
    if shared and not roads:
        updated = _whatif_updated(store_at(where), shared, (grids, centers, districts), extra, params)
        if updated is not None:
            return updated.summaries
    if unit:
        inside = pd.Series(True, index=grids.index)
        for column, value in unit.items():
            inside &= (grids[column] == value).fillna(False) if column in grids.columns else False
        grids = grids[inside.to_numpy(dtype=bool)]
        if not set(unit) <= {"city", "district"}:
            districts = None
    centers = gpd.GeoDataFrame(pd.concat([centers, extra], ignore_index=True), crs=STORAGE_CRS)
    return analyse(grids, centers, districts, params, roads=roads[0] if roads else None).summaries


def _whatif_updated(store, shared: str, frames: tuple, extra, params):
    """The kept analysis of ``frames`` updated with the ``extra`` centres; None when it cannot be."""
    import geopandas as gpd
    import pandas as pd

    from . import incremental, kept
    from .coverage import analyse
    from .crs import STORAGE_CRS
    from .schema import LAYERS
    from .store.base import Changes

    grids, centers, districts = frames
    if grids.empty:
        return None
    data = store.shared(shared, lambda: kept.to_bytes(analyse(grids, centers, districts, params)))
    try:
        previous = kept.from_bytes(data, grids, params)
    except (ValueError, KeyError):
        return None
    key = LAYERS["centers"].key
    taken = set(centers[key].astype(str)) if key in centers.columns else set()
    ids = [f"proposed-{n}" for n in range(len(extra))]
    while taken & set(ids):  # names no stored centre has
        ids = ["_" + i for i in ids]
    extra = extra.assign(**{key: ids})
    with_extra = gpd.GeoDataFrame(pd.concat([centers, extra], ignore_index=True), crs=STORAGE_CRS)
    none = Changes(frozenset(), frozenset(), frozenset())
    changes = {"grids": none, "districts": none, "centers": Changes(frozenset(ids), frozenset(), frozenset())}
    # however many are proposed: the grids out of their reach are kept as they are
    return incremental.update(previous, frames, (grids, with_extra, districts), changes, max_share=1.0)


def upload_to(where, *args, **kwargs):
    """``geodata.uploads.upload`` on the job process's store (its writes are atomic and locked)."""
    from .uploads import upload

    return upload(store_at(where), *args, **kwargs)
