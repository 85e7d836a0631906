"""The job pool: results come back, and each limit (time, memory, queue, waiting threads) holds."""

from __future__ import annotations

import operator
import threading
import time

import pytest

from geodata.errors import BadRequest, ServiceUnavailable, Unprocessable
from geodata.jobs import JobPool


def hog_memory(gib: int) -> int:
    return len(bytearray(gib * 2**30))


def geos_out_of_memory():
    import shapely.errors

    raise shapely.errors.GEOSException("std::bad_alloc")  # what shapely raises when GEOS cannot allocate


def raise_bad_request(message: str):
    raise BadRequest(message, details=["detail"])


@pytest.fixture
def pool():
    pool = JobPool(processes=1, timeout_s=1, memory_mb=1024, queue=2, waiters=2)
    yield pool
    pool.close()


def wait_until(condition, seconds: float = 30) -> None:
    """Wait for another thread's doing (a bounded poll: no sleep-and-hope)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_job_returns_its_result(pool):
    assert pool.run(operator.add, (2, 3)) == 5
    assert pool.run(sorted, ([3, 1, 2],)) == [1, 2, 3]


def test_job_processes_yield_the_cpu_to_request_threads(pool):
    import os

    assert pool.run(os.nice, (0,)) == os.nice(0) + 10


def test_a_jobs_domain_error_comes_back_whole(pool):
    with pytest.raises(BadRequest) as raised:
        pool.run(raise_bad_request, ("no grids in 海曙区",))
    assert raised.value.message == "no grids in 海曙区" and raised.value.details == ["detail"]


def test_a_job_over_its_time_limit_is_stopped_and_the_pool_keeps_working(pool):
    with pytest.raises(ServiceUnavailable) as raised:
        pool.run(time.sleep, (60,))
    assert "time limit of 1 s" in raised.value.message and raised.value.retry_after == 1
    assert pool.run(operator.add, (1, 1)) == 2  # a new process took the killed one's place
    assert pool.in_flight == 0


def test_a_job_over_its_memory_limit_fails_with_the_limit_named_and_the_pool_keeps_working(pool):
    with pytest.raises(Unprocessable) as raised:
        pool.run(hog_memory, (4,))  # 4 GiB of address space: over the 1 GiB limit
    assert "1024 MiB" in raised.value.message and raised.value.status == 422
    assert pool.run(operator.add, (1, 1)) == 2
    with pytest.raises(Unprocessable):
        pool.run(geos_out_of_memory)


def busy_answer(queue: int, waiters: int) -> ServiceUnavailable:
    """What a pool with one sleeping job answers the next job."""
    pool = JobPool(processes=1, timeout_s=30, queue=queue, waiters=waiters)
    try:
        threading.Thread(target=lambda: pytest.raises(ServiceUnavailable, pool.run, time.sleep, (60,)),
                         daemon=True).start()
        wait_until(lambda: pool.in_flight == 1)
        with pytest.raises(ServiceUnavailable) as raised:
            pool.run(operator.add, (1, 1))
        return raised.value
    finally:
        pool.close()  # cancels the sleeping job: its thread gets a 503


def test_over_the_queue_limit_the_answer_is_busy_at_once():
    answer = busy_answer(queue=1, waiters=4)
    assert "1 job already running or waiting" in answer.message and answer.retry_after > 0


def test_at_most_waiters_threads_wait_on_jobs():
    assert "1 request already waits" in busy_answer(queue=4, waiters=1).message  # plural forms: 1 request, 2 requests


def test_the_same_job_asked_twice_at_once_runs_once(pool):
    results = []
    threads = [threading.Thread(target=lambda: results.append(pool.run(time.sleep, (0.5,), key="same")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [None, None] and pool.started == 1


def test_close_ends_the_job_processes():
    import multiprocessing

    def workers() -> set[int]:
        return {p.pid for p in multiprocessing.active_children() if p.name == "pebble_pool_worker"}

    before = workers()  # other tests' pools, if any are still about
    pool = JobPool(processes=2, timeout_s=5)
    pool.run(operator.add, (1, 1))
    assert len(workers() - before) == 2
    pool.close()
    assert workers() - before == set()
