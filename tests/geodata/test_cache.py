"""VersionCache: LRU by count, or by the bytes of the values it keeps."""

import threading

import pytest

from geodata.cache import VersionCache, size_of

KB = 1024


def page(n: int, size: int = 100 * KB) -> bytes:
    return bytes([n % 256]) * size


def test_many_large_pages_stay_within_the_budget():
    cache = VersionCache(None, max_bytes=1000 * KB)
    for n in range(300):  # 300 pages of 100 KB: 30 MB asked, 1 MB kept
        assert cache.get(("page", n), lambda n=n: page(n)) == page(n)
        assert cache.bytes <= 1000 * KB
    assert len(cache) == 10 and cache.bytes == 1000 * KB
    assert cache.bytes == sum(size_of(cache.get(("page", n), lambda: b"")) for n in range(290, 300))


def test_least_recently_used_goes_first():
    cache = VersionCache(None, max_bytes=300 * KB)
    for n in (1, 2, 3):
        cache.get(n, lambda n=n: page(n))
    cache.get(1, lambda: b"rebuilt")  # 1 is used again: 2 is now the oldest
    cache.get(4, lambda: page(4))
    assert 2 not in cache and all(n in cache for n in (1, 3, 4))
    assert cache.get(1, lambda: b"rebuilt") == page(1)  # kept, not rebuilt


def test_a_value_larger_than_the_budget_is_answered_not_kept():
    cache = VersionCache(None, max_bytes=100 * KB)
    cache.get("small", lambda: page(0, KB))
    assert cache.get("huge", lambda: page(1, 200 * KB)) == page(1, 200 * KB)
    assert "huge" not in cache and "small" in cache and cache.bytes == KB


def test_tuples_of_bytes_and_text_are_sized():
    assert size_of((b"a" * 10, b"b" * 5)) == 15
    assert size_of("网格" * 100) > 400  # two bytes a character
    cache = VersionCache(None, max_bytes=50)
    cache.get("pair", lambda: (b"a" * 20, b"b" * 20))
    cache.get("other", lambda: (b"c" * 20, b"d" * 5))
    assert "pair" not in cache and cache.bytes == 25


def test_count_bound_as_before():
    cache = VersionCache(2)
    for n in range(5):
        cache.get(n, lambda n=n: n)
    assert len(cache) == 2 and 3 in cache and 4 in cache


def test_threads_keep_the_books_right():
    cache = VersionCache(None, max_bytes=50 * KB)

    def work(offset):
        for n in range(200):
            key = (n + offset) % 40  # overlapping keys: the same value built by several threads
            cache.get(key, lambda key=key: page(key, KB + key))

    threads = [threading.Thread(target=work, args=(i * 7,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.bytes <= 50 * KB
    assert cache.bytes == sum(KB + key for key in range(40) if key in cache)


def test_once_builds_a_value_a_single_time_while_other_threads_wait_for_it():
    cache, started, release, calls = VersionCache(2, once=True), threading.Event(), threading.Event(), []

    def build():
        calls.append(1)
        started.set()
        release.wait(10)
        return "analysis"

    first = threading.Thread(target=lambda: cache.get("k", build))
    first.start()
    started.wait(10)  # the first build is under way
    answers = []
    waiters = [threading.Thread(target=lambda: answers.append(cache.get("k", build))) for _ in range(3)]
    for t in waiters:
        t.start()
    for t in waiters:
        t.join(0.2)  # still blocked: on the first build (or, without ``once``, in a build of their own)
    assert all(t.is_alive() for t in waiters)
    release.set()
    for t in [first, *waiters]:
        t.join(10)
    assert calls == [1] and answers == ["analysis"] * 3


def test_once_builds_again_after_a_failed_build():
    cache = VersionCache(2, once=True)
    with pytest.raises(ValueError):
        cache.get("k", lambda: (_ for _ in ()).throw(ValueError("no")))
    assert cache.get("k", lambda: 7) == 7


def test_freed_memory_goes_back_to_the_system():
    from geodata.cache import release_freed_memory

    def resident_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    chunks = [bytearray(1000) for _ in range(200_000)]  # 200 MB in small blocks: the allocator's heap
    later = [bytearray(100) for _ in range(10)]  # allocated after them: the heap's top stays in use
    before = resident_mb()
    del chunks
    release_freed_memory()  # without it, about 13 MB of the 200 go back
    assert resident_mb() < before - 100
    assert len(later) == 10
