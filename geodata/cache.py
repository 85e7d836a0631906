"""A small thread-safe LRU cache for per-version results (frames, feature sets, analyses, rendered bytes)."""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


def size_of(value) -> int:
    """Bytes a rendered value holds: bytes and str by length, tuples and lists by their items.

    >>> size_of((b"plain", b"gz"))
    7
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, str):
        return sys.getsizeof(value)  # 1, 2 or 4 bytes a character: Chinese text takes 2
    if isinstance(value, (tuple, list)):
        return sum(size_of(v) for v in value)
    return sys.getsizeof(value)


class VersionCache:
    """Keeps the ``size`` most recently used values, or as many as fit in ``max_bytes``.

    Values are keyed by something that names an immutable input (a layer
    version), so they never go stale; they are only evicted.  ``build`` runs
    outside the lock: two threads may build the same value once each, which
    is cheaper than making every reader wait -- unless ``once``: then a
    thread asking for a value being built waits for it (an analysis of a
    province is too dear to compute twice at once).

    With ``max_bytes`` (for rendered pages and documents, whose keys a client
    can vary at will) the values' sizes (``sizer``) together stay within it,
    least recently used first out; a value larger than the whole budget is
    answered but not kept.
    """

    def __init__(self, size: int | None = 8, *, max_bytes: int | None = None,
                 sizer: Callable[[object], int] = size_of, once: bool = False):
        self.size = size
        self.max_bytes = max_bytes
        self._sizer = sizer
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self.bytes = 0  # the sizes of the values kept (with max_bytes)
        self._mutex = threading.Lock()
        self._once = once  # a value dear to build (an analysis): other threads wait for the first build
        self._building: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._mutex:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            lock = self._building.setdefault(key, threading.Lock()) if self._once else None
        if lock is None:
            return self._put(key, build())
        with lock:
            with self._mutex:
                if key in self._items:  # built while this thread waited
                    self._items.move_to_end(key)
                    return self._items[key]
            try:
                return self._put(key, build())
            finally:
                with self._mutex:
                    self._building.pop(key, None)

    def peek(self, key: Hashable):
        """The value kept for ``key`` (now the most recently used), or None: nothing is built."""
        with self._mutex:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: T) -> T:
        return self._put(key, value)

    def _put(self, key: Hashable, value: T) -> T:
        size = self._sizer(value) if self.max_bytes is not None else 0
        if self.max_bytes is not None and size > self.max_bytes:
            return value
        with self._mutex:
            self.bytes -= self._sizes.pop(key, 0)
            self._items[key] = value
            self._items.move_to_end(key)
            self._sizes[key] = size
            self.bytes += size
            while (self.size is not None and len(self._items) > self.size) or \
                    (self.max_bytes is not None and self.bytes > self.max_bytes):
                old, _ = self._items.popitem(last=False)
                self.bytes -= self._sizes.pop(old)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items


def release_freed_memory() -> None:
    """Hand memory freed after a large computation back to the system.

    glibc's allocator keeps freed memory for reuse: a worker's first analysis of a province frees a few
    hundred MB of intermediate frames that would stay in its resident size (measured: 730 MB after the
    warm-up, 506 MB after this).  Elsewhere than glibc this does nothing.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
