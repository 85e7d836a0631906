"""The collections gridmap serves, each at its current (or a given) version.

The catalog sits between the store and the routes: it knows which
collections exist — the stored layers and the derived ones (coverage, gaps).
Stored layers are queried in the store, feature by feature
(``StoredFeatures``); derived ones are computed once per set of inputs and
parameters and kept as a ready-to-query ``FeatureSet``.

The analysis with the settings' parameters is computed here and kept apart
(what-ifs never evict it); anything else — what-if analyses, recommendations,
proposed centres — runs as a bounded job (``geodata.jobs``) when the catalog
has a job pool, and its result is kept per data version and parameters.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
import zipfile
from dataclasses import dataclass, replace
from functools import cached_property

import geopandas as gpd

from . import gapdetail, geojson, incremental, kept, units
from . import jobs as job
from .cache import VersionCache, release_freed_memory
from .coverage import Analysis, Params, analyse, catchment_frame
from .errors import BadRequest, NotFound
from .i18n import DEFAULT_LANGUAGE, says
from .query import FeatureSet, Page, Query
from .schema import DERIVED, LAYERS, Layer
from .search import SearchIndex
from .store import Store, Version
from .store.base import Changes, properties_text

log = logging.getLogger(__name__)
ANALYSIS_INPUTS = ("grids", "centers", "districts")
UNIT_LEVELS = {"streets": "street", "communities": "community"}  # derived collections dissolved from the grids


def analysis_inputs(params: Params) -> tuple[str, ...]:
    """The layers an analysis with ``params`` reads: the roads too when catchments follow them."""
    return ANALYSIS_INPUTS + (("roads",) if params.catchment == "network" else ())


@dataclass(frozen=True)
class _Last:
    """An analysis and exactly what it was made of: the versions and their frames."""

    inputs: tuple[Version | None, ...]
    frames: tuple[gpd.GeoDataFrame, ...]
    analysis: Analysis


NO_CHANGES = Changes(frozenset(), frozenset(), frozenset())


@dataclass(frozen=True)
class Collection:
    layer: Layer  # as the reader sees it: without the fields hidden from them
    version: Version | None  # None: nothing stored yet, or a derived collection
    features: FeatureSet | StoredFeatures
    tag: str  # names the exact content: changes whenever the features may (for ETags and caches)
    hidden: frozenset[str] = frozenset()  # the columns left out of these features for this reader


class Catalog:
    CACHE_SIZE = 16  # stored and derived collections, each as everyone and as signed-in users see it

    def __init__(self, store: Store, params: Params = Params(), jobs: job.JobPool | None = None):
        self.store = store
        self.params = params  # the analysis settings; requests may ask for others (what-if)
        self.jobs = jobs  # None: heavy work runs in the calling thread
        self._sets = VersionCache(self.CACHE_SIZE)
        self._default = VersionCache(2, once=True)  # the settings' analysis, of the current data (and the one before)
        self._what_ifs = VersionCache(4)  # analyses with other parameters
        self._results = VersionCache(32)  # recommendations and proposed-centre summaries: small
        # the search index of the current grids and centres (and the one before): seconds to build for a
        # province, so a request that asks while the warm-up builds it waits for that one
        self._search = VersionCache(2, once=True)
        self._last: _Last | None = None  # the last settings' analysis made here, with its inputs: to update
        self._sharing: threading.Thread | None = None  # keeping an updated analysis for the other workers

    @property
    def ids(self) -> list[str]:
        return [*LAYERS, *DERIVED]

    def layer(self, collection_id: str) -> Layer:
        layer = LAYERS.get(collection_id) or DERIVED.get(collection_id)
        if layer is None:
            raise NotFound(says("error.no_collection", collection=collection_id, collections=", ".join(self.ids)))
        return layer

    def get(self, collection_id: str, version: int | None = None, params: Params | None = None,
            hidden: frozenset[str] = frozenset(), lang: str | None = None) -> Collection:
        """A collection ready for queries; ``params`` only matter to derived collections.

        ``hidden`` names fields this reader may not see (see ``server.privacy``): they are left out
        of the features, and a collection that had any of them gets another ``tag``, so nothing
        cached or validated for one audience is ever served to another.  ``lang``: the reader's language,
        which the gaps' ``detail`` is said in (another ``tag`` too).
        """
        full = self._full(collection_id, version, params)
        if collection_id == "gaps" and lang and lang != DEFAULT_LANGUAGE:
            tag = f"{full.tag}-{lang}"
            features = self._sets.get(("gaps", tag), lambda: FeatureSet(
                gapdetail.frame_in_language(full.features.gdf, lang), full.layer))
            full = replace(full, features=features, tag=tag)
        present = (frozenset(hidden) & set(full.features.columns)) - {full.layer.key}  # features keep their key
        if not present:
            return replace(full, layer=full.layer.without(hidden))
        tag = f"{full.tag}-without-{hashlib.sha256(repr(sorted(present)).encode()).hexdigest()[:8]}"
        if isinstance(full.features, StoredFeatures):
            features = StoredFeatures(self.store, full.layer, full.version, present)
        else:
            features = self._sets.get(("without", tag), lambda: FeatureSet(
                full.features.gdf.drop(columns=list(present)), full.layer.without(present)))
        return Collection(full.layer.without(hidden), full.version, features, tag, present)

    def _full(self, collection_id: str, version: int | None, params: Params | None) -> Collection:
        layer = self.layer(collection_id)
        if collection_id in DERIVED:
            if version is not None:
                raise BadRequest(says("error.computed_no_versions", collection=collection_id))
            tag, analysis = self.analysis_entry(params)
            features = self._sets.get((collection_id, tag),
                                      lambda: FeatureSet(self._derived_frame(collection_id, tag, analysis), layer))
            return Collection(layer, None, features, f"{collection_id}-{tag}")
        v = self.store.current(collection_id) if version is None else self.store.version(collection_id, version)
        if v is None:
            return Collection(layer, None, FeatureSet(empty_frame(layer), layer), f"{collection_id}-empty")
        return Collection(layer, v, StoredFeatures(self.store, layer, v), f"{collection_id}-{v.sha256[:16]}")

    def analysis(self, params: Params | None = None) -> Analysis:
        """Coverage and gaps of the current data; computed once per inputs and parameters."""
        return self.analysis_entry(params)[1]

    def analysis_entry(self, params: Params | None = None) -> tuple[str, Analysis]:
        """The analysis and a tag naming its inputs and parameters (for caching what is made of it)."""
        params = params or self.params
        names = analysis_inputs(params)
        inputs = [self.store.current(name) for name in names]
        tag = _analysis_tag(inputs, params)
        if params == self.params:  # in this process, kept apart from the what-ifs
            def compute() -> Analysis:  # from exactly the versions the tag names
                updated = self._updated(tag, inputs, params)
                if updated is not None:
                    return updated
                frames = [self.store.read(name, v.version) if v else empty_frame(LAYERS[name])
                          for name, v in zip(names, inputs)]
                analysis = self._shared_analysis(tag, frames, params)
                self._last = _Last(tuple(inputs), tuple(frames), analysis)
                release_freed_memory()  # its intermediate frames: hundreds of MB for a province
                return analysis

            return tag, self._default.get(tag, compute)
        versions = _numbers(names, inputs)
        return tag, self._what_ifs.get(tag, lambda: self._job(job.analyse_versions, (versions, params),
                                                              ("analysis", tag)))

    def _updated(self, tag: str, inputs: list[Version | None], params: Params) -> Analysis | None:
        """The analysis of ``inputs`` updated from the last one this process made (``geodata.incremental``):
        only what the change sets between their versions touch is computed again.  None when there is
        no last analysis, or the change is large or of a kind an update leaves to a cold analysis."""
        last = self._last
        if last is None or last.analysis.params != params or not hasattr(self.store, "changes"):
            return None  # (the old file store keeps no change sets)
        changes, frames = {}, []
        for name, old, new, frame in zip(analysis_inputs(params), last.inputs, inputs, last.frames):
            if old == new:
                changes[name] = NO_CHANGES
                frames.append(frame)
                continue
            if name == "roads":
                return None  # the graph is built again: analysed cold
            if old is None or new is None or new.version <= old.version or name not in incremental.UPDATED_LAYERS:
                return None  # a layer that appeared or went, or that an update leaves to a cold analysis
            changed = self.store.changes(name, old.version, new.version)
            count = len(changed.added) + len(changed.changed) + len(changed.removed)
            if count > incremental.MAX_SHARE * len(frame) + 1:
                return None  # as quick cold
            rows = self.store.read_keys(name, new.version, changed.added | changed.changed)
            frame = incremental.changed_frame(frame, rows, changed, LAYERS[name].key)
            if frame is None:
                return None
            changes[name] = changed
            frames.append(frame)
        analysis = incremental.update(last.analysis, last.frames, tuple(frames), changes)
        if analysis is None:
            return None
        self._last = _Last(tuple(inputs), tuple(frames), analysis)
        # kept for the other workers and instances after it is answered here: encoding it takes longer
        # than the update (and one that asks meanwhile waits for it, or updates from its own)
        self._sharing = threading.Thread(target=self._share, args=(tag, analysis), name="gridmap-share", daemon=True)
        self._sharing.start()
        return analysis

    def _share(self, tag: str, analysis: Analysis) -> None:
        try:
            self._shared(f"analysis/{tag}", lambda: analysis, kept.to_bytes, lambda data: analysis)
        except Exception:  # noqa: BLE001  (answered already: only the other workers lose, and compute it)
            log.exception("gridmap: an updated analysis could not be kept for the other workers")

    def _shared_analysis(self, tag: str, frames: list[gpd.GeoDataFrame], params: Params) -> Analysis:
        """The analysis of ``frames``, computed once for every worker and instance of this store."""
        return self._shared(f"analysis/{tag}", lambda: analyse(*frames[:3], params=params, roads=frames[3] if
                                                               len(frames) > 3 else None), kept.to_bytes,
                            lambda data: kept.from_bytes(data, frames[0], params))

    def _derived_frame(self, collection_id: str, tag: str, analysis: Analysis) -> gpd.GeoDataFrame:
        """A derived collection's features; streets and communities (dissolved: seconds for a province)
        computed once for every worker and instance."""
        if collection_id == "catchments":  # drawn from the analysis' inputs (a walk's tiles are kept: quick after it)
            return self._shared(f"catchments/{tag}", lambda: self._catchments(analysis.params),
                                lambda frame: kept.frames_to_bytes({"catchments": frame}),
                                lambda data: kept.frames_from_bytes(data)[0]["catchments"])
        if collection_id not in UNIT_LEVELS:
            return getattr(analysis, collection_id)
        level = UNIT_LEVELS[collection_id]
        return self._shared(
            f"{collection_id}/{tag}", lambda: units.dissolve(analysis.coverage, level, analysis.summaries[level]),
            lambda frame: kept.frames_to_bytes({"units": frame}), lambda data: kept.frames_from_bytes(data)[0]["units"])

    def _catchments(self, params: Params) -> gpd.GeoDataFrame:
        names = analysis_inputs(params)
        frames = {name: self.store.read(name, v.version) if (v := self.store.current(name)) else
                  empty_frame(LAYERS[name]) for name in names if name != "districts"}
        return catchment_frame(frames["grids"], frames["centers"], frames.get("roads"), params)

    def _shared(self, key: str, compute, encode, decode):
        """``compute()``, done by whichever process of all sharing the store asks first (``Store.shared``):
        the others ``decode`` what it kept.  The key names the code too: results of other code are not used."""
        computed = []

        def build() -> bytes:
            computed.append(compute())
            return encode(computed[0])

        data = self.store.shared(f"{key}/{kept.code_digest()}", build)
        if computed:
            return computed[0]
        try:
            return decode(data)
        except (ValueError, KeyError, zipfile.BadZipFile) as e:  # damaged: computed here, as without it
            log.warning("gridmap: a kept result (%s) could not be read (%s); computing it again", key, e)
            return compute()

    def search_index(self) -> SearchIndex:
        """Grids, units and centres to search, of the current versions; built once per versions."""
        inputs = [self.store.current(name) for name in ("grids", "centers")]

        def build() -> SearchIndex:
            return SearchIndex.of(*(self.store.read(name, v.version) if v else empty_frame(LAYERS[name])
                                    for name, v in zip(("grids", "centers"), inputs)))

        return self._search.get(tuple(v.sha256 if v else None for v in inputs), build)

    def recommendation(self, level: str, k: int, params: Params | None = None, unit: dict[str, str] | None = None,
                       solver: str = "auto"):
        """``geodata.siting.recommend`` over the current grids and centres; computed once per inputs and arguments."""
        params = params or self.params
        names = ("grids", "centers", *(("roads",) if params.catchment == "network" else ()))  # walked: the roads
        inputs = [self.store.current(name) for name in names]
        unit = dict(sorted((unit or {}).items()))
        key = ("recommendation", tuple(v.sha256 if v else None for v in inputs), level, k, params,
               tuple(unit.items()), solver)
        return self._results.get(key, lambda: self._job(
            job.recommend_versions, (_numbers(names, inputs), level, k, params, unit, solver), key))

    def what_if(self, proposed: tuple[tuple[float, float, str], ...], params: Params | None = None,
                unit: dict[str, str] | None = None) -> dict:
        """The analysis' summaries as if centres stood at ``proposed`` (lon, lat, level) too; nothing is stored.
        ``unit`` (e.g. {"city": "宁波市"}) analyses only that unit's grids (see ``jobs.whatif_summaries``)."""
        params = params or self.params
        names = analysis_inputs(params)
        inputs = [self.store.current(name) for name in names]
        unit = dict(sorted((unit or {}).items()))
        key = ("what_if", tuple(v.sha256 if v else None for v in inputs), params, proposed, tuple(unit.items()))
        # the settings' analysis, as _shared keeps it: a what-if of the whole data updates it (discs only: an
        # update looks for the grids within a changed centre's radius, and a walk reaches along the roads)
        updatable = params == self.params and params.catchment == "disc"
        shared = f"analysis/{_analysis_tag(inputs, params)}/{kept.code_digest()}" if updatable else None
        return self._results.get(key, lambda: self._job(
            job.whatif_summaries, (_numbers(names, inputs), params, proposed, unit, shared), key))

    def _job(self, function, args: tuple, key):
        """``function(location, *args)`` as a job when there is a pool; the job opens the store at ``location``."""
        if self.jobs is None:  # in this thread (scripts, benchmarks)
            return function(self.store, *args)
        return self.jobs.run(function, (self.store.location, *args), key=key)


class StoredFeatures:
    """A stored layer version, answered by the store feature by feature: nothing is read whole
    unless ``gdf`` is asked for (downloads, maps, the analysis).  Same questions as ``FeatureSet``."""

    def __init__(self, store: Store, layer: Layer, version: Version, hidden: frozenset[str] = frozenset()):
        self.store, self.layer, self.version, self.hidden = store, layer.without(hidden), version, hidden

    @property
    def _at(self) -> tuple[str, int]:
        return self.layer.name, self.version.version

    @property
    def count(self) -> int:
        return self.version.features

    @cached_property
    def columns(self) -> list[str]:
        return [c for c in self.store.fields(*self._at) if c not in self.hidden]

    @cached_property
    def bounds(self) -> list[float] | None:
        return self.store.extent(*self._at)

    @property
    def gdf(self) -> gpd.GeoDataFrame:
        whole = self.store.read(*self._at)
        return whole.drop(columns=[c for c in self.hidden if c in whole.columns]) if self.hidden else whole

    def page(self, query: Query) -> Page:
        found = self.store.query(*self._at, bbox=query.bbox, filters=query.filters, limit=query.limit,
                                 offset=query.offset, where=query.where, sortby=query.sortby)
        return Page(query.shown(self._shown(found.features)), found.number_matched, query.offset, query.limit)

    def all(self, query: Query) -> list[str]:
        return query.shown(self._shown(self.store.query(*self._at, bbox=query.bbox, filters=query.filters,
                                                        where=query.where, sortby=query.sortby).features))

    def feature(self, key: str) -> str:
        return self._shown([self.store.get(self.layer.name, key, self.version.version)])[0]

    def frame(self, query: Query) -> gpd.GeoDataFrame:
        """The features the query selects, as a frame (for downloads in other formats)."""
        return FeatureSet(self.gdf, self.layer).frame(query)  # the whole frame is read for these anyway

    def _shown(self, texts: list[str]) -> list[str]:
        """The texts without the hidden properties."""
        if not self.hidden:
            return texts
        return [_without(text, self.hidden) for text in texts]


# a property's value as gridmap writes it: a JSON string, number or literal (hidden fields are the schema's
# text and integer fields; a value of another shape is left to the JSON parser)
_SCALAR = r'(?:"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|null|true|false)'


@functools.lru_cache(maxsize=16)
def _hidden_patterns(hidden: frozenset[str]) -> tuple[re.Pattern, re.Pattern]:
    """A hidden member after another one (``,"k":v``), and as the first (``{"k":v,`` or ``{"k":v}``)."""
    names = "|".join(re.escape(json.dumps(name, ensure_ascii=False)) for name in sorted(hidden))
    return (re.compile(f',(?:{names}):{_SCALAR}(?=[,}}])'), re.compile(f'(?<={{)(?:{names}):{_SCALAR}(?:,|(?=}}))'))


def _without(text: str, hidden: frozenset[str]) -> str:
    """A stored feature's text without the ``hidden`` properties: the members cut out of the text (a
    page a request: parsing and writing every feature again cost a third of it), the rest byte for byte."""
    properties = properties_text(text)
    later, first = _hidden_patterns(hidden)
    kept = later.sub("", properties)
    while (cut := first.sub("", kept, count=1)) != kept:
        kept = cut
    if any(f'"{name}":' in kept for name in hidden):  # a value of another shape: parse it after all
        kept = geojson.dumps({k: v for k, v in json.loads(properties).items() if k not in hidden})
    return text[:-len(properties) - 1] + kept + "}"


def _analysis_tag(inputs: list[Version | None], params: Params) -> str:
    """Names an analysis: its inputs' contents and its parameters."""
    return hashlib.sha256(repr(([v.sha256 if v else None for v in inputs], params)).encode()).hexdigest()[:16]


def _numbers(names, inputs) -> dict[str, int | None]:
    return {name: v.version if v else None for name, v in zip(names, inputs)}


def empty_frame(layer: Layer) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({name: [] for name in layer.field_names}, geometry=[], crs="EPSG:4326")
