"""An upload from start to finish: parse, merge, validate, check the tiling, weigh the impact, store — or nothing.

Framework-neutral: the route hands over the bytes and the form's options and
gets back what to answer.  Nothing is written unless the whole file is
acceptable, and then it is written as one new version.  A replace that would
remove much of a layer, or all of a district, is stored only when confirmed
(SPEC §4): a file holding one street's grids must not silently wipe a city.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import gapdetail, io
from .coverage import Params, tiling_problems
from .crs import metric_crs
from .diff import diff
from .errors import BadRequest, PreconditionFailed
from .i18n import in_language, known, says, text
from .schema import LAYERS
from .scopes import check as check_scope, whole_layer
from .store import Store, Version
from .unitkeys import CITY, has_cities
from .validate import Problem, Report, validate

MODES = ("replace", "merge")
CONFIRM = "replace"  # the form's confirm=replace: store a replace even though it removes this much
CONFIRM_PERCENT = 10  # a replace removing this share of the layer's features (or more) needs CONFIRM
# The field that names a feature's district: ``district`` (grids, centres, any layer that has one),
# but the districts layer is its own district.
DISTRICT_FIELD = {"districts": "name"}
MAX_NAMED = 20  # districts named in a sentence; the per-district list has them all


@dataclass(frozen=True)
class DistrictImpact:
    """What a new version does to one district's features (``changed``/``added``: by their new district)."""

    district: str
    before: int
    after: int
    removed: int
    added: int
    changed: int

    @property
    def emptied(self) -> bool:
        """Every feature the district has now would be removed."""
        return self.before > 0 and self.removed == self.before

    def to_dict(self) -> dict:
        return {"district": self.district, "before": self.before, "after": self.after, "removed": self.removed,
                "added": self.added, "changed": self.changed, "emptied": self.emptied}


@dataclass(frozen=True)
class Impact:
    """What storing an upload would do to the current version of a layer: counts in total and per district."""

    layer: str
    mode: str
    before: int  # features now
    after: int  # features once stored
    removed: int
    added: int
    changed: int
    unchanged: int
    districts: tuple[DistrictImpact, ...]  # the districts it touches, by name
    lang: str = "en"

    @property
    def removed_percent(self) -> float:
        return 100 * self.removed / self.before if self.before else 0.0

    @property
    def emptied(self) -> list[str]:
        return [d.district for d in self.districts if d.emptied]

    @property
    def needs_confirmation(self) -> bool:
        """A replace removing ≥ CONFIRM_PERCENT % of the features, or all of a district's (SPEC §4)."""
        if self.mode != "replace" or self.before == 0:
            return False
        return self.removed * 100 >= CONFIRM_PERCENT * self.before or bool(self.emptied)

    def summary(self) -> str:
        """In words, e.g. "将删除 8,449 个网格（99.4%），新增 0，修改 50；9 个区县将失去全部网格：…"."""
        noun = _noun(self.layer, self.lang)
        words = text("impact.summary", self.lang).format(
            removed=f"{self.removed:,}", before=f"{self.before:,}", share=_percent(self.removed, self.before),
            added=f"{self.added:,}", changed=f"{self.changed:,}", noun=noun)
        emptied = self.emptied
        if emptied:
            names = text("impact.list_separator", self.lang).join(emptied[:MAX_NAMED])
            if len(emptied) > MAX_NAMED:
                names += " …"
            one = "one" if len(emptied) == 1 else "many"
            words += text(f"impact.emptied_{one}", self.lang).format(n=len(emptied), names=names, noun=noun)
        return words

    def confirmation_message(self) -> str:
        return text("impact.needs_confirmation", self.lang).format(
            summary=self.summary(), threshold=CONFIRM_PERCENT, noun=_noun(self.layer, self.lang), word=CONFIRM)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "before": self.before, "after": self.after, "removed": self.removed,
                "added": self.added, "changed": self.changed, "unchanged": self.unchanged,
                "removed_percent": round(self.removed_percent, 2), "emptied_districts": self.emptied,
                "districts": [d.to_dict() for d in self.districts],
                "needs_confirmation": self.needs_confirmation, "threshold_percent": CONFIRM_PERCENT,
                "summary": self.summary()}


@dataclass(frozen=True)
class Outcome:
    """What an upload came to: ``status`` 201 stored, 200 dry run, 409 needs confirmation, 422 rejected."""

    status: int
    layer: str
    features: int
    report: Report
    parsed: io.Parsed
    version: Version | None = None  # the new version, or the current one for a dry run or a refusal
    impact: Impact | None = None  # what it does to the current version; None when the file has errors
    confirmed: bool = False
    lang: str = "en"  # the reader's: the report's words (its codes, fields and keys are the same in any)

    def to_dict(self) -> dict:
        report = self.report.to_dict()
        report.update(format=self.parsed.format, source_crs=self.parsed.source_crs,
                      encoding=in_language(self.parsed.encoding, self.lang),
                      notes=[in_language(note, self.lang) for note in self.parsed.notes])
        if self.impact is not None:
            report["impact"] = {**self.impact.to_dict(), "confirmed": self.confirmed}
        return {"version": self.version.version if self.version else None, "features": self.features,
                "report": report}

    def refusal(self) -> dict | None:
        """The ``error`` member of the answer when nothing was stored for a reason in the report, else None."""
        if self.status == 422:
            errors = [p.to_dict() for p in self.report.errors]
            return {"code": "invalid_upload", "details": errors,
                    "message": says("upload.not_stored", count=len(errors)).in_language(self.lang)}
        if self.status == 409:
            return {"code": "replace_needs_confirmation", "message": self.impact.confirmation_message(),
                    "details": [d.to_dict() for d in self.impact.districts]}
        return None


def upload(store: Store, layer: str, data: bytes, filename: str, *, author: str, message: str = "",
           mode: str = "replace", dry_run: bool = False, if_version: int | None = None,
           options: io.UploadOptions = io.UploadOptions(), limits: io.Limits = io.Limits(),
           params: Params = Params(), lang: str = "en", confirm: str | None = None,
           scopes: tuple = (), tiling_refused: bool = False, removed: tuple[str, ...] = ()) -> Outcome:
    """Make ``data`` the next version of ``layer`` (``mode=merge``: only the features it names).

    ``removed`` (a merge: an edit's change set): keys of stored features the version drops, checked,
    scoped and stored together with the features ``data`` holds.

    ``scopes`` (``geodata.scopes``): an editor limited to some units may merge only features inside them.
    ``tiling_refused``: a merge that makes a new tiling gap or overlap where its grids are is a 422 (an edit
    on the map: never a silent sliver), not a warning.
    A replace whose impact needs confirmation (:attr:`Impact.needs_confirmation`)
    comes back with status 409 and stores nothing unless ``confirm`` is
    ``"replace"``.  Raises BadRequest for a bad mode or confirm,
    PreconditionFailed when ``if_version`` is stale, and the reader's 4xx
    errors for files that cannot be read at all.
    """
    if layer not in LAYERS:
        raise BadRequest(says("error.upload_layer", layers=", ".join(LAYERS), layer=layer))
    if mode not in MODES:
        raise BadRequest(says("error.upload_mode", value=repr(mode)))
    if confirm not in (None, "", CONFIRM):
        raise BadRequest(says("error.upload_confirm", word=CONFIRM, value=repr(confirm)))
    confirmed = confirm == CONFIRM
    parsed = io.read_upload(data, filename, layer, options, limits)
    key = LAYERS[layer].key
    report = validate(parsed.data, layer, lang)  # the file's own problems, numbered by its features
    current = store.current(layer)
    merging = mode == "merge" and current is not None
    removed = tuple(str(k) for k in removed)
    if removed and not merging:
        raise BadRequest(says("upload.remove_needs_merge"))
    if report.ok and merging:  # the stored features were checked when stored: the file's check is the merge's
        merged = _merge(store.read(layer), report.data, key)
        merged = merged[~merged[key].astype(str).isin(removed)].reset_index(drop=True)
        report = Report(report.layer, report.errors, report.warnings, merged)
    if report.ok and mode == "replace":
        whole_layer(scopes, says("scope.replace_upload"))
    elif report.ok:  # a merge, into an empty layer too: what it writes and replaces lie in the editor's units
        written = report.data[report.data[key].astype(str).isin(set(parsed.data[key].astype(str)))]
        check_scope(store, layer, scopes, written, [*written[key], *removed])
    if report.ok and layer == "grids":
        report = _with_tiling_problems(report, store, params, parsed.data if merging else None, refuse=tiling_refused,
                                       removed=removed, lang=lang)
    features = len(report.data) if report.ok else len(parsed.data)
    if not report.ok:
        return Outcome(422, layer, features, report, parsed, current, lang=lang)
    found = impact(store.read(layer) if current is not None else None, report.data, layer, mode, lang,
                   named=set(parsed.data[key].astype(str)) | set(removed) if merging else None)
    if dry_run:
        return Outcome(200, layer, features, report, parsed, current, found, confirmed, lang=lang)
    now = current.version if current is not None else 0
    if if_version is not None and if_version != now:  # a stale check hears 412 (check again), not 409
        raise PreconditionFailed(says("error.stale_version", layer=layer, now=now, given=if_version))
    if found.needs_confirmation and not confirmed:
        return Outcome(409, layer, features, report, parsed, current, found, lang=lang)
    if mode == "replace" and not confirmed:
        if_version = now  # the impact was weighed against this version: never store over another unconfirmed
    if merging:  # only the features the file names are written: a 50-grid merge stores 50 rows
        named = report.data[report.data[key].astype(str).isin(set(parsed.data[key].astype(str)))]
        version = store.write_changes(layer, upserts=named, removed=removed, author=author, message=message,
                                      if_version=if_version)
    else:
        version = store.write(layer, report.data, author=author, message=message, if_version=if_version)
    return Outcome(201, layer, features, report, parsed, version, found, confirmed, lang=lang)


def impact(current: gpd.GeoDataFrame | None, new: gpd.GeoDataFrame, layer: str, mode: str = "replace",
           lang: str = "en", named: set[str] | None = None) -> Impact:
    """What making ``new`` the layer's next version does to ``current`` (None: the layer is empty).

    Features are matched by the layer's key.  Per district (``district`` for
    grids and centres, ``name`` for districts): ``before``/``after`` count its
    features now and then, ``removed`` by the district they are in now,
    ``added`` and ``changed`` by the one they will be in.

    Examples
    --------
    >>> found = impact(store.read("grids"), one_street, "grids")  # doctest: +SKIP
    >>> found.removed, found.emptied, found.needs_confirmation  # doctest: +SKIP
    (8449, ['北仑区', '奉化区', ...], True)
    """
    key, by = LAYERS[layer].key, DISTRICT_FIELD.get(layer, "district")
    if current is None or current.empty:
        current = new.iloc[:0]
    if named is None:
        found = diff(current, new, key)
        unchanged = len(found.unchanged)
    else:  # a merge: only the features it names can differ (a province's whole diff would take seconds)
        found = diff(current[current[key].astype(str).isin(named)], new[new[key].astype(str).isin(named)], key)
        unchanged = len(current) - len(found.removed) - len(found.changed)
    changed = [c["key"] for c in found.changed]
    districts: tuple[DistrictImpact, ...] = ()
    if by in current.columns and by in new.columns:
        cities = has_cities(current) or has_cities(new)  # two cities' 市辖区 are two districts
        old_d = _district_of(current, key, by, cities)
        new_d = _district_of(new, key, by, cities)
        counts = pd.DataFrame({
            "before": old_d.value_counts(), "after": new_d.value_counts(),
            "removed": old_d.loc[found.removed].value_counts(), "added": new_d.loc[found.added].value_counts(),
            "changed": new_d.loc[changed].value_counts()}).fillna(0).astype(int)
        touched = counts[(counts.removed > 0) | (counts.added > 0) | (counts.changed > 0)].sort_index()
        districts = tuple(DistrictImpact(str(name), *(int(v) for v in row))
                          for name, row in zip(touched.index, touched[list(counts.columns)].to_numpy()))
    return Impact(layer=layer, mode=mode, before=len(current), after=len(new), removed=len(found.removed),
                  added=len(found.added), changed=len(changed),
                  unchanged=unchanged, districts=districts, lang=lang)


def _district_of(gdf: gpd.GeoDataFrame, key: str, by: str, cities: bool = False) -> pd.Series:
    """Each feature's district (blank as ""), indexed by its key as text; "city / district" with ``cities``."""
    names = gdf[by].fillna("").astype(str)
    if cities and CITY in gdf.columns:
        city = gdf[CITY].astype(object).where(gdf[CITY].notna(), "").astype(str)
        names = (city + " / " + names).str.removeprefix(" / ")
    return pd.Series(names.to_numpy(), index=gdf[key].astype(str).to_numpy())


def _noun(layer: str, lang: str) -> str:
    """What the layer's features are called in a sentence: 网格 / grids; 要素 / features for any other."""
    key = f"impact.noun.{layer}"
    return text(key if known(key) else "impact.noun", lang)


def _percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` to one decimal, rounded down unless it is all: 8,449 of 8,499 is 99.4%, not 100%."""
    if not whole or not part:
        return "0%"
    if part >= whole:
        return "100%"
    tenths = part * 1000 // whole
    if tenths == 0:
        return "<0.1%"  # not "0%": something is removed
    return f"{tenths // 10}%" if tenths % 10 == 0 else f"{tenths / 10:.1f}%"


def _merge(current: gpd.GeoDataFrame, new: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
    """Features of ``new`` replace those with the same key; the others stay, in their order."""
    kept = current[~current[key].isin(new[key])]
    return gpd.GeoDataFrame(pd.concat([kept, new], ignore_index=True), crs=current.crs)


def _with_tiling_problems(report: Report, store: Store, params: Params, uploaded: gpd.GeoDataFrame | None = None,
                          *, refuse: bool = False, removed: tuple[str, ...] = (), lang: str = "en") -> Report:
    """Tiling gaps, overlaps and grids outside their district: worth a warning, not a refusal — unless
    ``refuse`` (an edit): then those a merge makes anew where its grids are, before or after, are errors.

    ``uploaded``: the file of a merge, whose places number the problems (else the report's data's); a merge
    is checked in the districts it touches (its grids', before and after, and their neighbours'), where
    alone it can change anything: a province's whole tiling would take seconds for one grid.
    """
    districts = store.read("districts") if store.current("districts") else None
    key = LAYERS["grids"].key
    grids, written = report.data, None
    if uploaded is not None:
        written = set(uploaded[key].astype(str)) | set(removed)
        grids = _touched_districts(report.data, store.read("grids"), written, key)
    problems = tiling_problems(grids, districts, params)
    if problems.empty:
        return report
    new = np.zeros(len(problems), dtype=bool)
    if refuse and written is not None:
        stored = store.read("grids")
        before = _touched_districts(stored, report.data, written, key)
        # where the written grids are now, and where the removed ones were (a gap a removal leaves)
        places = np.concatenate([report.data[report.data[key].astype(str).isin(written)].geometry.values,
                                 stored[stored[key].astype(str).isin(set(removed))].geometry.values])
        new = _new_problems(problems, tiling_problems(before, districts, params), places, params)
    position = {k: i for i, k in enumerate(report.data[key])}
    found = [Problem(position.get(row.grid_id), row.grid_id, None, tiling_message(row, lang))
             for row in problems.itertuples()]
    if uploaded is not None:
        found = list(_number_by_file(tuple(found), uploaded, key))
    # a refused edit's problems carry their place, for the map to draw (a few; warnings may be thousands)
    errors = tuple(replace(p, geometry=json.loads(shapely.to_geojson(shape)))
                   for p, is_new, shape in zip(found, new, problems.geometry.values) if is_new)
    warnings = tuple(p for p, is_new in zip(found, new) if not is_new)
    return Report(report.layer, report.errors + errors, report.warnings + warnings,
                  None if errors else report.data)


def tiling_message(row, lang: str) -> str:
    """A tiling gap's or overlap's message in ``lang`` (``check.tiling_gap``, ``check.outside_district``,
    ``check.overlap``): what it is about (a district, a grid, two grids) as the analysis's ``detail``
    names it, and its area."""
    key, fields = gapdetail.read(row.detail) or ("", {"name": str(row.detail).split(": ", 1)[0]})
    name = f"{fields['a']} ∩ {fields['b']}" if key == "overlap" else fields.get("name", "")  # data: any language
    kind = "outside_district" if row.kind == "tiling_gap" and pd.notna(row.grid_id) else row.kind
    return text(f"check.{kind}", lang).format(name=name, area=f"{row.area_m2:,.0f}", district=row.district)


def _touched_districts(grids: gpd.GeoDataFrame, other: gpd.GeoDataFrame, written: set[str],
                       key: str) -> gpd.GeoDataFrame:
    """The grids of ``grids`` in the districts the ``written`` keys are in (in ``grids`` or in ``other``, the
    layer before or after) or that hold a grid meeting one of them."""
    columns = [CITY, "district"] if has_cities(grids) or has_cities(other) else ["district"]
    mine = grids[grids[key].astype(str).isin(written)]
    theirs = other[other[key].astype(str).isin(written)]
    shapes = np.concatenate([mine.geometry.values, theirs.geometry.values])
    near = grids.iloc[np.unique(grids.sindex.query(shapes, predicate="intersects")[1]) if len(shapes) else []]
    units = pd.concat([_units(frame, columns) for frame in (mine, theirs, near)]).drop_duplicates()
    return grids[pd.MultiIndex.from_frame(_units(grids, columns)).isin(pd.MultiIndex.from_frame(units))]


def _units(frame: gpd.GeoDataFrame, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: frame[c].astype(object).where(frame[c].notna(), "") if c in frame.columns else ""
                         for c in columns}, index=frame.index)


def _new_problems(after: gpd.GeoDataFrame, before: gpd.GeoDataFrame, written, params: Params) -> np.ndarray:
    """Which ``after`` problems meet the written grids and hold land no ``before`` problem of their kind held
    (more than the sliver tolerance): a gap an edit made, or made larger — not one that was there, or shrank."""
    meets = np.zeros(len(after), dtype=bool)
    if len(written):
        hits = shapely.STRtree(np.asarray(written)).query(after.geometry.values, predicate="intersects")
        meets[np.unique(hits[0])] = True
    if not meets.any():
        return meets
    crs = metric_crs(after)
    shapes, old = after.geometry.to_crs(crs).values, before.geometry.to_crs(crs).values
    new = meets.copy()
    for i in np.flatnonzero(meets):
        same = old[(before["kind"] == after["kind"].iloc[i]).to_numpy()]
        added = shapely.difference(shapes[i], shapely.union_all(same)) if len(same) else shapes[i]
        new[i] = shapely.area(added) > params.sliver_m2
    return new


def _number_by_file(problems: tuple[Problem, ...], uploaded: gpd.GeoDataFrame, key: str) -> tuple[Problem, ...]:
    """Problems found in a merged layer, pointed at the feature's index in the uploaded file (None: already stored)."""
    in_file = {str(k): i for i, k in enumerate(uploaded[key])} if key in uploaded.columns else {}
    # an index without a key counts in the merged layer, not in the file: no feature of the file
    return tuple(replace(p, index=in_file.get(p.key)) for p in problems)
