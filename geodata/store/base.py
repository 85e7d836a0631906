"""What gridmap asks of storage: versioned layers, queried feature by feature.

A provider in the spirit of pygeoapi's ``provider/base.py``: routes, pages and
downloads ask it for pages of features (``query``), one feature (``get``),
counts, extents and version records; only the analysis takes a whole layer as
a frame (``read``).  Every write makes a new, numbered, immutable version; no
version is ever changed in place.

A version is a change set: each stored feature lives from the version that
wrote it until the one that changed or removed it, so a 50-grid merge writes
about 50 rows, and "the layer at version n" is a query.  Features are kept as
their RFC 7946 GeoJSON text (``id`` = the layer's key), exactly as served.

Features of a version come in the order of their keys, on every engine.
"""

from __future__ import annotations

import abc
import concurrent.futures
import contextlib
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import geopandas as gpd
import pandas as pd
import shapely

from .. import geojson
from ..errors import BadRequest, DamagedStore, InsufficientStorage, NotFound, ServiceUnavailable
from ..i18n import says
from ..schema import LAYERS, Layer

log = logging.getLogger(__name__)
T = TypeVar("T")
NUMERIC = ("integer", "number")


@dataclass(frozen=True)
class Version:
    layer: str
    version: int
    time: str  # ISO 8601, UTC
    author: str | None
    message: str
    features: int
    sha256: str  # names the content: equal contents (a restore) have equal hashes, whatever the engine keeps

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Changes:
    """The keys that differ between two versions of a layer."""

    added: frozenset[str]
    changed: frozenset[str]  # in both, with another text
    removed: frozenset[str]


@dataclass(frozen=True)
class FeaturePage:
    features: list[str]  # GeoJSON Feature texts, in key order
    number_matched: int


class Store(abc.ABC):
    """What gridmap needs of storage.  Frames returned are shared: treat them as read-only."""

    layer_names = tuple(LAYERS)

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """What opens this store again in another process (``open_store``): a directory or a database URL."""

    # --- versions ------------------------------------------------------------------------------
    @abc.abstractmethod
    def versions(self, layer: str) -> list[Version]:
        """Every version of ``layer``, oldest first; [] if it was never written."""

    def current(self, layer: str) -> Version | None:
        versions = self.versions(layer)
        return versions[-1] if versions else None

    def version(self, layer: str, number: int | None = None) -> Version:
        """The given version (the current one when None); NotFound if there is none."""
        versions = self.versions(layer)
        if number is None:
            if not versions:
                raise NotFound(says("store.no_data", layer=layer))
            return versions[-1]
        for v in versions:
            if v.version == number:
                return v
        raise NotFound(says("store.no_version", layer=layer, number=number))

    # --- features ------------------------------------------------------------------------------
    def query(self, layer: str, version: int | None = None, *, bbox: Sequence[float] | None = None,
              filters: Sequence[tuple[str, str]] = (), limit: int | None = None, offset: int = 0,
              where=None, sortby: Sequence[tuple[str, bool, bool]] = ()) -> FeaturePage:
        """The features of a version that intersect ``bbox`` (lon/lat), whose properties equal
        ``filters`` (text as a client sends it; numbers compared as numbers) and that ``where`` (a
        ``geodata.cql.Filter``) selects, in key order (or by ``sortby``'s (property, descending, numeric)
        keys first: nulls first ascending, last descending), ``limit`` of them (None: all) from
        ``offset``, and how many match in all."""
        from ..query import FeatureSet, Query

        found = FeatureSet(self.read(layer, version), LAYERS[layer])
        chosen = found.select(Query(bbox=tuple(bbox) if bbox else None, filters=tuple(filters), where=where,
                                    sortby=tuple(sortby)))
        texts = [found.features[i] for i in chosen]
        if not sortby:  # the frame is in key order: sorted again only as the engines promise it
            texts.sort(key=lambda t: str(json.loads(t)["id"]))
        end = None if limit is None else offset + limit
        return FeaturePage(texts[offset:end], len(texts))

    def get(self, layer: str, key: str, version: int | None = None) -> str:
        """One feature's GeoJSON text; NotFound if the version has no such key."""
        from ..query import FeatureSet

        return FeatureSet(self.read(layer, version), LAYERS[layer]).feature(key)

    def count(self, layer: str, version: int | None = None) -> int:
        return self.version(layer, version).features

    def extent(self, layer: str, version: int | None = None) -> list[float] | None:
        """[minLon, minLat, maxLon, maxLat] of the version's features; None when it has none."""
        gdf = self.read(layer, version)
        return None if gdf.empty else [round(float(b), 6) for b in gdf.total_bounds]

    def fields(self, layer: str, version: int | None = None) -> list[str]:
        """The property names of the version: the layer's fields, then any others its features carry."""
        gdf = self.read(layer, version)
        return [c for c in gdf.columns if c != gdf.geometry.name]

    @abc.abstractmethod
    def read(self, layer: str, version: int | None = None) -> gpd.GeoDataFrame:
        """The whole layer at ``version`` (current when None), EPSG:4326, in key order: for the analysis."""

    def read_keys(self, layer: str, version: int, keys: Iterable[str]) -> gpd.GeoDataFrame:
        """The features of ``keys`` at ``version``, as ``read`` gives them (its columns and types, key
        order): the few rows a change set touched, without reading the layer (incremental analysis)."""
        whole = self.read(layer, version)
        key = LAYERS[layer].key
        return whole[whole[key].astype(str).isin({str(k) for k in keys})].reset_index(drop=True)

    def read_geojson(self, layer: str, version: int | None = None) -> bytes:
        """The layer at ``version`` as an RFC 7946 FeatureCollection."""
        return geojson.feature_collection(self.query(layer, version).features)

    # --- writes --------------------------------------------------------------------------------
    @abc.abstractmethod
    def write(self, layer: str, gdf: gpd.GeoDataFrame, *, author: str | None, message: str = "",
              if_version: int | None = None, time: str | None = None) -> Version:
        """Store ``gdf`` as the layer's next version, all or nothing; only what changed is written.

        ``if_version`` makes the write conditional: PreconditionFailed unless
        the current version number equals it (0 = the layer is still empty).
        ``time`` (ISO 8601, UTC) is the version's time when it is not now: for imports.
        """

    def write_changes(self, layer: str, *, upserts: gpd.GeoDataFrame | None = None, removed: Iterable[str] = (),
                      author: str | None, message: str = "", if_version: int | None = None) -> Version:
        """The next version: the current one with ``upserts`` added or replacing the features of
        their keys, and the ``removed`` keys gone (NotFound for a key it does not have)."""
        key = LAYERS[layer].key
        current = self.read(layer) if self.current(layer) else None
        frame = current if current is not None else gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
        removed = set(map(str, removed))
        missing = removed - set(frame[key].astype(str)) if key in frame else removed
        if missing:
            raise NotFound(says("store.nothing_to_remove", layer=layer, key=sorted(missing)[0]))
        keep = frame[~frame[key].astype(str).isin(removed | set(upserts[key].astype(str) if upserts is not None
                                                                 else ()))] if key in frame else frame
        parts = [keep] + ([upserts] if upserts is not None and len(upserts) else [])
        merged = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs="EPSG:4326")
        return self.write(layer, merged, author=author, message=message, if_version=if_version)

    def restore(self, layer: str, number: int, *, author: str | None, message: str = "",
                if_version: int | None = None) -> Version:
        """Version ``number``'s features again, as the layer's next version."""
        return self.write(layer, self.read(layer, number), author=author, message=message, if_version=if_version)

    def import_history(self, layer: str, history: Iterable[tuple[Version, gpd.GeoDataFrame]]) -> list[Version]:
        """Store an earlier history of the still empty ``layer`` (a migration): each ``(record, frame)``
        becomes a version with the record's time, author and message; the stored versions, in order.

        An engine that can keeps the records' numbers (gaps included) and stores all or nothing in one
        transaction (SQLite).  This default numbers on from 1, version after version: a failure leaves
        the versions stored until then.  Either way each stored version is checked (``imported``).
        """
        self._check_layer(layer)
        done, seen = [], {}
        for old, gdf in history:
            new = self.write(layer, gdf, author=old.author, message=old.message, time=old.time,
                             if_version=done[-1].version if done else 0)
            imported(old, new, seen)
            done.append(new)
        return done

    @abc.abstractmethod
    def lock(self, name: str) -> contextlib.AbstractContextManager:
        """A lock shared by every process using this store (e.g. one cold-start computation)."""

    def tile(self, layer: str, version: int, z: int, x: int, y: int, fields: Sequence[str]) -> bytes | None:
        """A Mapbox Vector Tile of the layer's version (WebMercatorQuad; ``fields`` its properties), cut by the
        engine itself; None when nothing is there.  NotImplementedError: the caller cuts it (geodata.tiles)."""
        raise NotImplementedError

    # --- results shared by every process -------------------------------------------------------
    RESULTS_KEPT = 48  # the most recent results kept; an older one asked for again is built again

    def shared(self, key: str, build: Callable[[], bytes]) -> bytes:
        """Bytes derived from stored versions (an analysis, a map layer), built by whichever process asks
        first while the others wait, then kept for every worker and instance.  ``key`` must name the
        exact inputs and the code that builds them: a kept result is never out of date, only dropped."""
        data = self._load_result(key)
        if data is not None:
            return data
        with self.lock("result-" + hashlib.sha256(key.encode()).hexdigest()[:20]):
            data = self._load_result(key)
            if data is None:
                data = build()
                try:
                    self._save_result(key, data)
                except (InsufficientStorage, ServiceUnavailable) as e:  # answered anyway, kept by no one
                    log.warning("gridmap: a result could not be kept for the other workers (%s)", e)
        return data

    def _load_result(self, key: str) -> bytes | None:
        """The result kept under ``key``, None if there is none.  Engines that keep none build each time."""
        return None

    def _save_result(self, key: str, data: bytes) -> None:
        """Keep ``data`` under ``key``, and no more than RESULTS_KEPT results in all."""

    def check(self) -> None:
        """DamagedStore naming what is damaged, if anything is; the server checks at start."""

    def close(self) -> None:
        """Let go of connections (a store is unusable afterwards)."""

    def _check_layer(self, layer: str) -> None:
        if layer not in self.layer_names:
            raise NotFound(says("store.no_layer", layer=layer, layers=", ".join(self.layer_names)))


class ChangeSetStore(Store):
    """The engines whose versions are change sets (SQLite, PostGIS) share their write path: a whole
    layer or a change set becomes rows (``_rows``: key -> (text, hash, ...) as the engine stores them),
    then the engine commits them in one transaction (``_commit``)."""

    _versions: dict[str, tuple]  # the engine's versions of each layer: (the stamp read, the list, ...)

    def version(self, layer: str, number: int | None = None) -> Version:
        if number is not None:  # a version never changes: one already known needs no look at the database
            for v in self._versions.get(layer, (0, []))[1]:
                if v.version == number:
                    return v
        return super().version(layer, number)

    def write(self, layer, gdf, *, author, message="", if_version=None, time=None) -> Version:
        self._check_layer(layer)
        rows, fields = self._whole(gdf, layer)
        return self._commit(layer, rows, None, author, message, if_version, lambda _: fields, time)

    def changes(self, layer: str, old: int, new: int) -> Changes:
        """What differs from version ``old`` to ``new`` (``old`` < ``new``; 0: the empty layer), read from
        the rows the versions between them opened and closed, never from the whole layer."""
        self.version(layer, new)
        if old:
            self.version(layer, old)
        if old >= new:
            raise BadRequest(says("store.changes_order", old=old, new=new))
        before, after = self._crossing(layer, old, new)  # key -> hash: alive at old and closed by new; the reverse
        both = before.keys() & after.keys()
        return Changes(added=frozenset(after.keys() - before.keys()),
                       changed=frozenset(k for k in both if before[k] != after[k]),
                       removed=frozenset(before.keys() - after.keys()))

    def _crossing(self, layer: str, old: int, new: int) -> tuple[dict[str, str], dict[str, str]]:
        """(key -> hash of the rows alive at ``old`` that a version up to ``new`` closed, key -> hash of the
        rows alive at ``new`` that a version after ``old`` opened)."""
        raise NotImplementedError

    def history(self, layer: str, key: str) -> list[tuple[Version, str]]:
        """The versions that changed the feature ``key``, oldest first, each with what it did to it:
        ``added``, ``changed`` or ``removed`` — read from the feature's own rows, never a whole layer."""
        self._check_layer(layer)
        rows = self._key_rows(layer, str(key))
        opened = {start for start, _ in rows}
        changes: dict[int, str] = {}
        closed_before = None
        for start, end in rows:
            changes[start] = "changed" if start == closed_before else "added"  # a row closed and one opened: a change
            if end is not None and end not in opened:
                changes[end] = "removed"
            closed_before = end
        return [(self.version(layer, number), change) for number, change in sorted(changes.items())]

    def _key_rows(self, layer: str, key: str) -> list[tuple[int, int | None]]:
        """(version_from, version_to or None while alive) of every row ``key`` ever had, by version_from."""
        raise NotImplementedError

    def write_changes(self, layer, *, upserts=None, removed=(), author, message="", if_version=None) -> Version:
        self._check_layer(layer)
        if upserts is not None:
            upserts = storable(upserts)
        rows = self._rows(upserts, LAYERS[layer]) if upserts is not None else {}
        removed = {str(k) for k in removed}

        def fields(previous: list[str]) -> list[str]:
            extra = [c for c in (upserts.columns if upserts is not None else ()) if c != upserts.geometry.name]
            return list(dict.fromkeys([*previous, *extra]))

        return self._commit(layer, rows, removed, author, message, if_version, fields, None)

    def restore(self, layer, number, *, author, message="", if_version=None) -> Version:
        """A query, not a copy: the version's rows as stored, of which only those the current version
        lacks are written again."""
        self._check_layer(layer)
        v = self.version(layer, number)
        fields = self.fields(layer, v.version)
        return self._commit(layer, self._stored_rows(layer, v.version), None, author, message, if_version,
                            lambda _: fields, None)

    @abc.abstractmethod
    def _stored_rows(self, layer: str, number: int) -> dict[str, tuple]:
        """Version ``number``'s features as ``_rows`` gives them, read as stored."""

    def _whole(self, gdf: gpd.GeoDataFrame, layer: str) -> tuple[dict[str, tuple], list[str]]:
        """A whole layer's rows and its property names."""
        gdf = storable(gdf)
        return self._rows(gdf, LAYERS[layer]), self._fields_of(gdf, layer)

    @staticmethod
    def _fields_of(gdf: gpd.GeoDataFrame, layer: str) -> list[str]:
        return [c for c in geojson.conform(gdf, LAYERS[layer]).columns if c != gdf.geometry.name]

    @staticmethod
    @abc.abstractmethod
    def _rows(gdf: gpd.GeoDataFrame, layer: Layer) -> dict[str, tuple]:
        """key -> (text, hash, ...what the engine stores) for each feature."""

    @abc.abstractmethod
    def _commit(self, layer: str, rows: dict[str, tuple], removed: set[str] | None, author, message,
                if_version, fields, time: str | None) -> Version:
        """One transaction: check ``if_version``, close the rows that change or go, add the new ones.
        ``removed`` None: ``rows`` is the whole layer (anything else goes); otherwise only ``rows``
        and ``removed`` change.  ``fields(previous)`` gives the new version's property names."""


# --- what every engine shares --------------------------------------------------------------------

def frame_from(properties: Sequence[str], wkbs: Sequence[bytes | None], fields: Sequence[str],
               layer: Layer) -> gpd.GeoDataFrame:
    """A version's frame from its features' properties (JSON texts) and WKB geometries, in that order:
    every field the version has (``fields``) as a column, typed as the layer's schema says."""
    records = json.loads("[" + ",".join(properties) + "]")  # one parse, not one a feature
    props = pd.DataFrame.from_records(records, index=range(len(properties)))
    for name in fields:
        if name not in props.columns:
            props[name] = None
    geoms = shapely.from_wkb(list(wkbs)) if len(wkbs) else []
    gdf = gpd.GeoDataFrame(props, geometry=gpd.GeoSeries(geoms, index=props.index), crs="EPSG:4326")
    return geojson.conform(gdf, layer)


def storable(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``gdf`` labelled EPSG:4326; BadRequest unless it is in the storage CRS (WGS84 lon/lat, or none said)."""
    if gdf.crs is not None and not (gdf.crs.equals("EPSG:4326") or gdf.crs.equals("OGC:CRS84")):
        raise BadRequest(says("store.wgs84", crs=gdf.crs.to_string()))
    # CRS84 is the same lon/lat numbers: only the label changes (the frames built from it say EPSG:4326)
    return gdf if gdf.crs is not None and gdf.crs.equals("EPSG:4326") else gdf.set_crs("EPSG:4326",
                                                                                       allow_override=True)


def feature_texts(gdf: gpd.GeoDataFrame, layer: Layer) -> dict[str, str]:
    """Each feature's stored text by key (RFC 7946; ``id`` = the key), as the layer's schema types it."""
    if gdf.empty:
        return {}
    conformed = geojson.conform(gdf, layer)
    return dict(zip(conformed[layer.key].astype(str), geojson.feature_strings(conformed, id_field=layer.key)))


def change_set(layer: str, live: dict[str, tuple[int, str]], rows: dict[str, tuple],
               removed: set[str] | None) -> tuple[list[str], list[str], list[str]]:
    """The keys a write closes (``gone``), replaces (``changed``: another text) and adds, given the
    current rows ``live`` (key -> (row id, hash)) and the new ``rows`` (key -> (text, hash, ...));
    ``removed`` None: ``rows`` is the whole layer.  NotFound for a removed key the layer lacks."""
    return gone_keys(layer, live, rows, removed), *replacing(live, rows)


def gone_keys(layer: str, live: dict[str, tuple[int, str]], written: Iterable[str] | dict,
              removed: set[str] | None) -> list[str]:
    """``change_set``'s ``gone``, given every key the write has (``written``)."""
    if removed is not None and (missing := removed - set(live)):
        raise NotFound(says("store.nothing_to_remove", layer=layer, key=sorted(missing)[0]))
    return [k for k in live if k not in written] if removed is None else sorted(removed)


def replacing(live: dict[str, tuple[int, str]], rows: dict[str, tuple]) -> tuple[list[str], list[str]]:
    """``change_set``'s ``changed`` and ``added``: ``rows`` may be a part of the write."""
    changed = [k for k, row in rows.items() if k in live and live[k][1] != row[1]]
    added = [k for k in rows if k not in live]
    return changed, added


class RowParts:
    """A whole layer's rows made PART features at a time, each part in a thread while the caller stores
    the one before: PostGIS then stores (in the database's process) while Python writes texts, on two
    cores at once."""

    PART = 5000

    def __init__(self, gdf: gpd.GeoDataFrame, layer: Layer, rows: Callable[[gpd.GeoDataFrame, Layer], dict]):
        unique_keys(gdf, layer)  # across the parts: each part's own check sees only itself
        self._gdf, self._layer, self._rows = gdf, layer, rows

    def made(self, then: Callable[[dict[str, tuple]], T]) -> Iterator[T]:
        """``then(part)`` of each part, made in the thread too: what the caller does with a part in
        Python belongs there, where it holds up no one (the caller's thread waits on the database, and
        each time it takes Python's lock back from a busy thread it may wait its switch interval)."""
        parts = (then(self._rows(self._gdf.iloc[i:i + self.PART], self._layer))
                 for i in range(0, len(self._gdf), self.PART))
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gridmap-rows") as ahead:
            making = ahead.submit(next, parts, None)
            while (part := making.result()) is not None:
                making = ahead.submit(next, parts, None)
                yield part


def unique_keys(gdf: gpd.GeoDataFrame, layer: Layer) -> list[str]:
    """The features' keys; BadRequest if a key repeats."""
    keys = gdf[layer.key].astype(str).tolist() if len(gdf) else []
    if len(set(keys)) != len(keys):
        raise BadRequest(says("store.repeats", key=layer.key))
    return keys


def keyed_texts(gdf: gpd.GeoDataFrame, layer: Layer) -> tuple[list[str], dict[str, str], object]:
    """The features' keys, their stored texts by key and their RFC 7946 geometries (for the engine's
    own geometry column); BadRequest if a key repeats."""
    keys = unique_keys(gdf, layer)
    return keys, feature_texts(gdf, layer), geojson.rfc7946_geometries(gdf.geometry.values)


def properties_text(text: str) -> str:
    """The ``properties`` member of a feature text written by ``geojson.feature_strings`` (properties last):
    its first ``,"properties":`` (a quote inside a string is escaped, and the geometry before it has no names)."""
    return text[text.index(',"properties":') + len(',"properties":'):-1]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


MOD = 2**256


def content_hash(hashes: Iterable[str]) -> str:
    """A version's content hash from its features' hashes: their sum, so it follows any change set
    (``add_hashes``) without reading the layer, and is the same for the same features in any order."""
    return add_hashes("0" * 64, hashes, ())


def add_hashes(total: str, added: Iterable[str], removed: Iterable[str]) -> str:
    value = int(total, 16) + sum(int(h, 16) for h in added) - sum(int(h, 16) for h in removed)
    return f"{value % MOD:064x}"


def property_matches(value, raw: str, numeric: bool) -> bool:
    """A filter's test of one stored property value: numbers as numbers, anything else as text."""
    if value is None:
        return False
    if numeric:
        try:
            return float(value) == float(raw)
        except (TypeError, ValueError):
            return False
    return str(value) == raw


def numeric_filter(layer: Layer, name: str, raw: str) -> bool:
    """Whether ``name`` is a number field (BadRequest when ``raw`` is not a number then)."""
    kinds = {f.name: f.kind for f in layer.fields}
    if kinds.get(name) not in NUMERIC:
        return False
    try:
        float(raw)
    except ValueError:
        raise BadRequest(says("query.not_number", name=name, value=repr(raw))) from None
    return True


def imported(old: Version, new: Version, seen: dict[str, str]) -> None:
    """DamagedStore unless ``new`` holds what the imported record ``old`` says: as many features, and
    for a content seen before (a restore: an equal ``old.sha256``) the same content hash as then."""
    if new.features != old.features:
        raise DamagedStore(says("store.count_differs", count=old.features, version=old.version, layer=old.layer,
                                read=new.features), None)
    first = seen.setdefault(old.sha256, new.sha256)
    if first != new.sha256:
        raise DamagedStore(says("store.restore_differs", version=old.version, layer=old.layer), None)
