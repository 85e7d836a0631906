"""A small thread-safe LRU cache for per-version results (frames, feature sets, analyses)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class VersionCache:
    """Keeps the ``size`` most recently used values.

    Values are keyed by something that names an immutable input (a layer
    version), so they never go stale; they are only evicted.  ``build`` runs
    outside the lock: two threads may build the same value once each, which
    is cheaper than making every reader wait.
    """

    def __init__(self, size: int = 8):
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._mutex = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._mutex:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._mutex:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
