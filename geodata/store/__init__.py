"""Versioned layer storage: the provider interface and its engines.

``open_store(location)`` picks the engine: a ``postgresql://`` URL is PostGIS
(any number of instances share it), anything else a data directory holding
the embedded SQLite database.
"""

from __future__ import annotations

import os

from .base import FeaturePage, Store, Version
from .files import NO_SPACE, FileStore, atomic_write

__all__ = ["FeaturePage", "FileStore", "NO_SPACE", "Store", "Version", "atomic_write", "open_store"]


def open_store(location: str | os.PathLike) -> Store:
    """The store at ``location``: a PostgreSQL URL, or a data directory (the embedded database)."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        from .postgis import PostGISStore

        return PostGISStore(text)
    from .sqlite import SQLiteStore

    return SQLiteStore(text)
