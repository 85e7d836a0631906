"""The collections gridmap serves, each at its current (or a given) version.

The catalog sits between the store and the routes: it knows which
collections exist, and keeps one ready-to-query ``FeatureSet`` per layer
version so that repeated requests do no work.  Derived collections (coverage,
gaps, streets, communities) will be added here.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd

from .cache import VersionCache
from .errors import NotFound
from .query import FeatureSet
from .schema import LAYERS, Layer
from .store import Store, Version


@dataclass(frozen=True)
class Collection:
    layer: Layer
    version: Version | None  # None: nothing stored yet
    features: FeatureSet


class Catalog:
    CACHE_SIZE = 8

    def __init__(self, store: Store):
        self.store = store
        self._sets = VersionCache(self.CACHE_SIZE)

    @property
    def ids(self) -> list[str]:
        return list(LAYERS)

    def layer(self, collection_id: str) -> Layer:
        try:
            return LAYERS[collection_id]
        except KeyError:
            raise NotFound(f"no collection '{collection_id}'; collections are {', '.join(self.ids)}") from None

    def get(self, collection_id: str, version: int | None = None) -> Collection:
        layer = self.layer(collection_id)
        if version is None and self.store.current(collection_id) is None:
            return Collection(layer, None, FeatureSet(_empty(layer), layer))
        v = self.store.version(collection_id, version)
        feature_set = self._sets.get((collection_id, v.version),
                                     lambda: FeatureSet(self.store.read(collection_id, v.version), layer))
        return Collection(layer, v, feature_set)


def _empty(layer: Layer) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({name: [] for name in layer.field_names}, geometry=[], crs="EPSG:4326")
