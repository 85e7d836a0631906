"""The analysis of a new version from the analysis of the one before it: only what a change touches.

A merge or an edit changes a few grids or centres of a province; ``update`` recomputes

- coverage (and service gaps) of the changed grids and of every grid within reach of a centre
  that was added, removed, moved or re-levelled (its old and its new disc); walking (network
  catchments, the roads unchanged): also of every grid near a tile of land the walk or a life
  circle gained or lost, with its walking columns and walk gaps;
- staffing gaps of the changed grids;
- missing centres of the units (every level) of the old and new keys of the changed grids, and
  of the grids a changed centre stood or stands in, or that a reshaped grid may have taken a
  centre from;
- the tiling check of the districts of reshaped or re-keyed grids (and of those whose grids'
  edges stopped or started matching a neighbour's), and the overlaps of the reshaped grids; the
  edge check of every other grid is the previous analysis' (``Analysis.invalid_edges``), when kept;
- the summary rows of every unit any of that touched: changed by what the grids' and gaps' rows
  that went and came add up to (summed again when a unit came or went), and the total row;

and keeps everything else from the previous analysis.  The result equals ``analyse`` of the new
layers (tests/geodata/test_incremental.py checks that on random changes): each piece is computed
by the same functions, on the same metric shapes, in the same order.  ``update`` answers None
when a change is not worth it or not of a kind it knows (the districts layer changed, cities
appeared, the metric zone moved, ...): the caller analyses cold then.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import coverage as _coverage
from . import network
from .coverage import (_ROW_COLUMNS, GAP_KINDS, LEVELS, STATUSES, Analysis, _district_gaps,
                       _empty_gaps, _gap_cities, _Gaps, _gaps_frame, _invalid_edges, _overlaps, _service_gaps,
                       _staffing_gaps, _summary, catchments, centre_grids, coverage_columns, gap_columns,
                       grid_coverage, life_circle_shares, merge_tiles, missing_center_row, near_coverage,
                       ring_columns, walk_of, walking_columns, walking_people, walks)
from .crs import STORAGE_CRS, metric_crs
from .order import adcodes, orderer
from .schema import LAYERS
from .store.base import Changes
from .unitkeys import CITY, district_shape, district_shapes, has_cities, key_table, shown_city, unit_columns

UPDATED_LAYERS = ("grids", "centers")  # a change of the districts (boundaries, adcodes: the order) is analysed cold
MAX_SHARE = 0.05  # more of the grids or centres changed than this: a cold analysis is as quick
MARGIN_DEG = 1e-4  # about 10 m: lon/lat envelopes that surely hold the metric shapes they stand for
GAP_COLUMNS_ALL = ["gap_id", "kind", "level", CITY, "district", "street", "community", "grid_id", "detail"]
GRID_KEY, CENTER_KEY = LAYERS["grids"].key, LAYERS["centers"].key
GAP_KINDS_INDEX = pd.Index(GAP_KINDS, dtype=object)


def _ids(grids) -> pd.Index:
    return pd.Index(grids[GRID_KEY].to_numpy(dtype=object))  # plain objects: quicker look-ups than Arrow's


def _count(changes: Changes) -> int:
    return len(changes.added) + len(changes.changed) + len(changes.removed)


def changes_between(old: gpd.GeoDataFrame | None, new: gpd.GeoDataFrame | None, key: str) -> Changes:
    """What differs between two frames of one layer, row by row (``Store.changes`` without a store)."""
    old_rows, new_rows = _rows_by_key(old, key), _rows_by_key(new, key)
    both = old_rows.keys() & new_rows.keys()
    return Changes(frozenset(new_rows.keys() - old_rows.keys()),
                   frozenset(k for k in both if old_rows[k] != new_rows[k]),
                   frozenset(old_rows.keys() - new_rows.keys()))


def changed_frame(old: gpd.GeoDataFrame, rows: gpd.GeoDataFrame, changes: Changes,
                  key: str) -> gpd.GeoDataFrame | None:
    """The new version of a layer as ``Store.read`` gives it, from the old one (in key order), the
    rows of the keys added or changed (``Store.read_keys``) and the keys removed.  None when the
    rows do not fit the old frame's columns and types (a new field, say): then read it whole."""
    ids = old[key].to_numpy(dtype=object)
    going = pd.Index(ids).isin(list(changes.changed | changes.removed))
    if not len(rows):
        return old[~going].reset_index(drop=True)
    if list(rows.columns) != list(old.columns) or not (rows.dtypes == old.dtypes).all():
        return None
    if not changes.added and not changes.removed and len(rows) == int(going.sum()):
        # the same keys: the rows replaced where they stand (both in key order), only in the columns
        # that changed (copying 85k values of each column took longer than the rest)
        at = np.flatnonzero(going)
        if not (rows[key].to_numpy(dtype=object) == ids[at]).all():
            return None
        frame = old.copy(deep=False)
        for column in old.columns:
            if _same_values(old[column].iloc[at], rows[column], column == old.geometry.name):
                continue
            values = old[column].array.copy()
            values[at] = rows[column].array
            frame[column] = pd.Series(values, index=old.index, dtype=old[column].dtype, copy=False)
        return gpd.GeoDataFrame(frame, geometry=old.geometry.name, crs=old.crs)
    kept = old[~going]
    new_ids = rows[key].to_numpy(dtype=object)
    # each new row just before the first kept key above it (both in key order; keys unique)
    place = np.concatenate([np.arange(len(kept), dtype=float),
                            np.searchsorted(ids[~going], new_ids).astype(float) - 0.5])
    frame = pd.concat([kept, rows], ignore_index=True)
    frame = frame.iloc[np.argsort(place, kind="stable")].reset_index(drop=True)
    if not (frame.dtypes == old.dtypes).all():
        return None
    return gpd.GeoDataFrame(frame, geometry=old.geometry.name, crs=old.crs)


def _same_values(before: pd.Series, after: pd.Series, geometry: bool) -> bool:
    """Whether two columns' values are the very same (shapes byte for byte; missing as missing)."""
    if geometry:
        return list(shapely.to_wkb(np.asarray(before.array, dtype=object))) == \
            list(shapely.to_wkb(np.asarray(after.array, dtype=object)))
    return before.reset_index(drop=True).equals(after.reset_index(drop=True))


def _rows_by_key(frame, key) -> dict:
    if frame is None or frame.empty:
        return {}
    values = frame.drop(columns=frame.geometry.name).astype(object)
    values = values.where(values.notna(), None)
    wkb = shapely.to_wkb(frame.geometry.values)
    return {row[key]: (tuple(sorted(row.items())), w) for row, w in zip(values.to_dict("records"), wkb)}


def update(previous: Analysis, old: tuple, new: tuple, changes: dict[str, Changes],
           max_share: float | None = None) -> Analysis | None:
    """The analysis of ``new`` (grids, centers, districts) from ``previous``, the analysis of ``old``.

    ``changes``: layer name -> the keys added, changed and removed from ``old`` to ``new``;
    ``max_share``: of the grids or centres changed, beyond which it answers None (MAX_SHARE).
    None when a cold ``analyse`` should do it instead (see the module's note).

    A walking analysis (network catchments) takes the roads as a fourth layer of ``new``, the same as
    ``old``'s (a change of the roads is analysed cold): the centres walk again (a Dijkstra a level), only
    the tiles of land whose pieces of road changed are buffered again (``network.covered_land`` keeps the
    others), and only the grids those tiles (or a changed centre's disc) come near are measured again.
    """
    grids0, centers0, districts0 = old[:3]
    grids1, centers1, districts1 = new[:3]
    roads = new[3] if len(new) > 3 else None
    walking = walks(previous.params, roads)
    if walking != bool(walking_people(previous.coverage)):
        return None  # a walking analysis without its roads, or roads the analysis did not walk
    none = Changes(frozenset(), frozenset(), frozenset())
    grid_changes, centre_changes = changes.get("grids", none), changes.get("centers", none)
    if _count(changes.get("districts", none)) or grids0.empty or grids1.empty:
        return None
    share = MAX_SHARE if max_share is None else max_share
    if (_count(grid_changes) > share * len(grids1) + 1
            or _count(centre_changes) > share * max(len(centers1), 1) + 1):
        return None
    cities = has_cities(grids1)
    if cities != has_cities(grids0) or (cities and CITY not in previous.gaps.columns and not previous.gaps.empty):
        return None
    crs = metric_crs(grids1)
    if crs.to_string() != previous.metric_crs or len(previous.coverage) != len(grids0):
        return None
    ids0 = _ids(grids0)
    same = not grid_changes.added and not grid_changes.removed and len(grids0) == len(grids1)
    ids1 = ids0 if same else _ids(grids1)  # the same keys in the same (key) order: checked below
    if not (ids0.is_unique and ids1.is_unique and ids0.is_monotonic_increasing and ids1.is_monotonic_increasing):
        return None  # positions stand for key order below
    return _Update(previous, grids0, centers0, grids1, centers1, districts1, grid_changes, centre_changes,
                   crs, cities, ids0, ids1, roads if walking else None).run()


class _Update:
    def __init__(self, previous, grids0, centers0, grids1, centers1, districts, grid_changes, centre_changes,
                 crs, cities, ids0, ids1, roads=None):
        self.previous, self.params = previous, previous.params
        self.roads = roads  # walking: the roads (as the previous analysis walked them)
        self.walk, self.walk_gaps = None, None  # walking: the new walk, and the walk gaps of the grids measured
        self.grids0, self.centers0, self.grids1, self.centers1 = grids0, centers0, grids1, centers1
        self.districts, self.crs, self.cities = districts, crs, cities
        self.ids0, self.ids1 = ids0, ids1
        self.keys = unit_columns("community", cities)
        self._metric = {}  # new position -> metric shape
        self._bounds = {}  # 0: old, 1: new grids' envelopes

        self.added = self._positions(self.ids1, grid_changes.added)
        changed1 = self._positions(self.ids1, grid_changes.changed)
        changed0 = self._positions(self.ids0, grid_changes.changed)
        self.removed = self._positions(self.ids0, grid_changes.removed)
        # reshaped or re-keyed grids change the tiling, overlaps and units; others only their own rows
        same_shape = shapely.equals_exact(grids0.geometry.values[changed0], grids1.geometry.values[changed1], 0)
        old_keys = key_table(grids0.iloc[changed0], self.keys).to_numpy(dtype=object)
        new_keys = key_table(grids1.iloc[changed1], self.keys).to_numpy(dtype=object)
        same_keys = (old_keys == new_keys).all(axis=1) if len(old_keys) else np.zeros(0, bool)
        moved = ~(same_shape & same_keys)
        self.rekeyed = bool(len(self.added) or len(self.removed) or (~same_keys).any())
        self.struct1 = np.union1d(self.added, changed1[moved])  # new positions
        self.struct0 = np.union1d(self.removed, changed0[moved])  # old positions
        self.changed1, self.changed0 = changed1, changed0
        self.touched1 = np.union1d(self.added, changed1)  # new positions whose own rows change
        self.gone0 = np.union1d(self.removed, changed0)  # old positions whose own rows go
        self.centre_changes = centre_changes
        # each grid's edge check, old (when the previous analysis kept it) and new (the old ones but
        # around the reshaped grids: a grid's check looks only at the grids its envelope meets)
        edges0 = previous.invalid_edges
        self.edges0 = edges0 if edges0 is not None and len(edges0) == len(grids0) else None
        self.edges1 = self.edges0 if not len(self.struct0) and not len(self.struct1) else None  # the same grids

    @staticmethod
    def _positions(index: pd.Index, keys) -> np.ndarray:
        at = index.get_indexer(list(keys)) if keys else np.zeros(0, int)
        return np.sort(at[at >= 0]).astype(np.intp)

    # --- geometry helpers -----------------------------------------------------------------
    def metric(self, positions: np.ndarray) -> np.ndarray:
        """The new grids' shapes in the metric CRS, projected once each (as ``analyse`` projects them)."""
        need = [p for p in positions.tolist() if p not in self._metric]
        if need:
            projected = gpd.GeoSeries(self.grids1.geometry.values[need], crs=STORAGE_CRS).to_crs(self.crs).values
            self._metric.update(zip(need, projected))
        return np.array([self._metric[p] for p in positions.tolist()], dtype=object)

    def to_metric(self, geoms) -> np.ndarray:
        return gpd.GeoSeries(np.asarray(geoms, dtype=object), crs=STORAGE_CRS).to_crs(self.crs).values

    def bounds(self, which: int) -> np.ndarray:
        if which not in self._bounds:
            self._bounds[which] = shapely.bounds((self.grids0 if which == 0 else self.grids1).geometry.values)
        return self._bounds[which]

    def near(self, which: int, lonlat_geoms) -> np.ndarray:
        """Positions of the grids (0: old, 1: new) whose envelopes come within MARGIN_DEG of these shapes'."""
        geoms = np.asarray(lonlat_geoms, dtype=object)
        if not len(geoms):
            return np.zeros(0, np.intp)
        frame = self.grids0 if which == 0 else self.grids1
        return _hits(frame.geometry.values, self.bounds(which), _widened(shapely.bounds(geoms), MARGIN_DEG))

    def centre_bounds(self) -> np.ndarray:
        if "centres" not in self._bounds:
            self._bounds["centres"] = shapely.bounds(self.centers1.geometry.values)
        return self._bounds["centres"]

    def lonlat(self, metric_geoms) -> np.ndarray:
        return gpd.GeoSeries(np.asarray(metric_geoms, dtype=object), crs=self.crs).to_crs(STORAGE_CRS).values

    # --- the steps -----------------------------------------------------------------------
    def run(self) -> Analysis:
        coverage, uncovered_at, uncovered = self.coverage()
        parts = {kind: [] for kind in GAP_KINDS}  # new rows of each kind
        drop = {kind: np.zeros(len(self.previous.gaps), bool) for kind in GAP_KINDS}
        gaps0 = self.previous.gaps
        kinds0 = gaps0["kind"].to_numpy(dtype=object) if len(gaps0) else np.zeros(0, object)
        grid_of0 = gaps0["grid_id"].to_numpy(dtype=object) if len(gaps0) else np.zeros(0, object)

        # service gaps: the grids whose coverage was computed again
        gone_ids = set(self.ids0[self.gone0])
        drop["service_gap"] = (kinds0 == "service_gap") & pd.Series(grid_of0).isin(
            gone_ids | set(self.ids1[uncovered_at])).to_numpy()
        if len(uncovered_at):
            parts["service_gap"].append(_service_gaps(self.grids1.iloc[uncovered_at], uncovered, self.params))
        # staffing gaps: the changed grids
        drop["staffing_gap"] = (kinds0 == "staffing_gap") & pd.Series(grid_of0).isin(gone_ids).to_numpy()
        if len(self.touched1):
            parts["staffing_gap"].append(_staffing_gaps(self.grids1.iloc[self.touched1], self.metric(self.touched1)))
        self.missing_centres(parts, drop, kinds0)
        self.tiling_and_overlaps(parts, drop, kinds0, grid_of0)

        if self.walk_gaps is not None:  # the walk gaps of the grids measured again
            drop["walk_gap"] = (kinds0 == "walk_gap") & pd.Series(grid_of0).isin(
                gone_ids | set(self.ids1[uncovered_at])).to_numpy()
            parts["walk_gap"].append(self.walk_gaps)

        gaps, fresh = self.gaps(parts, drop)
        touched = self.touched_units(coverage, fresh, drop, uncovered_at)
        summaries = self.summaries(coverage, gaps, touched)
        return Analysis(self.params, self.previous.metric_crs, coverage, gaps, summaries,
                        invalid_edges=self.edges1, walk=self.walk)

    def coverage(self) -> tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray]:
        """The coverage frame; the positions computed again and their uncovered parts (metric)."""
        reach = [self.touched1]
        old_discs = self._centre_discs(self.centers0, self.centre_changes.changed | self.centre_changes.removed)
        new_discs = self._centre_discs(self.centers1, self.centre_changes.changed | self.centre_changes.added)
        around = [d for d in (old_discs, new_discs) if len(d)]
        if around:
            reach.append(self.near(1, self.lonlat(np.concatenate(around))))
        if self.roads is not None:  # and the grids near the land the walk or a life circle gained or lost
            reach.append(self._walked_again())
        again = np.unique(np.concatenate(reach)).astype(np.intp)
        walking = {}
        if len(again):  # exactly these grids, every disc within reach, in the discs' own order
            geoms = self.metric(again)
            discs1 = self._discs(self._centres_within_reach(again))
            within = np.unique(shapely.STRtree(geoms).query(discs1)[0]) if len(discs1) else np.zeros(0, int)
            if self.roads is None:
                ratio, uncovered = grid_coverage(geoms, discs1[within])
            else:  # as analyse: the walk's tiles near these grids (in their order), then the discs and rings
                ratio, uncovered = near_coverage(geoms, self.walk.land[None])
                grids = self.grids1.iloc[again]
                walking, self.walk_gaps = walking_columns(grids, geoms, discs1[within], ratio, uncovered, self.params)
                walking.update(ring_columns(grids, [life_circle_shares(geoms, self.walk, d, ratio)
                                                    for d in self.params.life_circles_m], self.params))
        else:
            ratio, uncovered = np.zeros(0), np.zeros(0, dtype=object)
        previous = self.previous.coverage
        # the previous coverage is of the old grids, row for row
        at = np.arange(len(self.ids1)) if self.ids0.equals(self.ids1) else self.ids0.get_indexer(self.ids1)
        kept = np.ones(len(self.grids1), bool)
        kept[again] = False
        if (at[kept] < 0).any():
            raise AssertionError("a grid neither kept nor computed again")  # changes that missed a grid
        coverage = self.grids1.copy(deep=False)  # copy-on-write: the new columns are its own
        take = None if self.ids0.equals(self.ids1) else np.where(at < 0, 0, at)
        columns = {**coverage_columns(self.grids1.iloc[again], ratio, self.params), **walking}
        if self.roads is not None and not len(again):
            columns.update({name: np.zeros(0) for name in walking_people(previous)})
        for name, values in columns.items():
            # the previous values, in their own type
            column = previous[name].copy() if take is None else previous[name].iloc[take].copy()
            column.index = coverage.index
            if len(again):
                column.iloc[again] = values.array if isinstance(values, pd.Series) else values
            coverage[name] = column
        return coverage, again, uncovered

    def _walked_again(self) -> np.ndarray:
        """Walking: the new walk (``self.walk``), and the positions of the new grids near a tile of land that
        the walk or a life circle gained or lost (by identity: ``network.covered_land`` keeps the others)."""
        before = self.previous.walk
        net = before.net if before is not None else network.network_of(self.roads.to_crs(self.crs))
        self.walk = walk_of(self._metric_centres(self.centers1), net, self.params)
        if before is None:  # (an analysis read back from another process: the old walk, its tiles kept here)
            before = walk_of(self._metric_centres(self.centers0), net, self.params)
        changed = []
        for limit, tiles in self.walk.land.items():
            tiles0 = before.land.get(limit, np.zeros(0, dtype=object))
            old, new = {id(t) for t in tiles0}, {id(t) for t in tiles}
            changed += [t for t in tiles if id(t) not in old] + [t for t in tiles0 if id(t) not in new]
        if not changed:
            return np.zeros(0, np.intp)
        box = shapely.bounds(np.array(changed, dtype=object))
        return self.near(1, self.lonlat(shapely.box(box[:, 0], box[:, 1], box[:, 2], box[:, 3])))

    def _metric_centres(self, centers) -> gpd.GeoDataFrame:
        """The centres' levels and points in the metric CRS, as ``analyse`` walks from them."""
        if centers.empty:
            return centers
        return gpd.GeoDataFrame({"level": centers["level"].to_numpy(dtype=object)},
                                geometry=self.to_metric(centers.geometry.values), crs=self.crs)

    def _centre_discs(self, centers, keys) -> np.ndarray:
        if not keys or centers.empty:
            return np.zeros(0, dtype=object)
        return self._discs(centers[centers[CENTER_KEY].isin(keys)])

    def _centres_within_reach(self, positions: np.ndarray) -> gpd.GeoDataFrame:
        """The new centres (in their order) whose catchments may reach these new grids."""
        centers = self.centers1
        if centers.empty:
            return centers
        b = shapely.bounds(self.grids1.geometry.values[positions])
        lat = np.radians(np.minimum(np.maximum(np.abs(b[:, 1]), np.abs(b[:, 3])) + 1, 89))
        levels = centers["level"].to_numpy(dtype=object)
        near = []
        for level in LEVELS:  # each level within its own radius, measured generously in degrees
            of_level = np.flatnonzero(levels == level)
            if not len(of_level):
                continue
            reach_m = self.params.radius(level) * 1.5 + 100
            dy, dx = reach_m / 110_000, reach_m / (110_000 * np.cos(lat))
            query = np.column_stack([b[:, 0] - dx, b[:, 1] - dy, b[:, 2] + dx, b[:, 3] + dy])
            near.append(of_level[_hits(centers.geometry.values[of_level], self.centre_bounds()[of_level], query)])
        return centers.iloc[np.sort(np.concatenate(near)) if near else []]

    def _discs(self, centers) -> np.ndarray:
        """``catchments`` of these centres (their levels and points only: a whole frame is slow to project)."""
        if centers.empty:
            return np.zeros(0, dtype=object)
        points = gpd.GeoDataFrame({"level": centers["level"].to_numpy(dtype=object)},
                                  geometry=self.to_metric(centers.geometry.values), crs=self.crs)
        return catchments(points, replace(self.params, catchment="disc"))

    def missing_centres(self, parts, drop, kinds0) -> dict[str, set]:
        """Missing-centre gaps of every unit whose grids or centres changed; the units, by level."""
        grids0, grids1 = self.grids0, self.grids1
        seeds0 = [self.struct0]  # old positions whose units are looked at again
        seeds1 = [self.struct1]
        cc = self.centre_changes
        if cc.changed or cc.removed:
            gone = self.centers0[self.centers0[CENTER_KEY].isin(cc.changed | cc.removed)]
            seeds0.append(self.near(0, gone.geometry.values))
        if cc.changed or cc.added:
            came = self.centers1[self.centers1[CENTER_KEY].isin(cc.changed | cc.added)]
            seeds1.append(self.near(1, came.geometry.values))
        if (len(self.struct0) or len(self.struct1)) and not self.centers1.empty:
            # a reshaped grid may have taken a centre from a neighbour, or given one to it
            shapes = np.concatenate([grids0.geometry.values[self.struct0], grids1.geometry.values[self.struct1]])
            points = self.centers1.geometry.values
            inside = _hits(points, self.centre_bounds(), _widened(shapely.bounds(shapes), MARGIN_DEG))
            seeds1.append(self.near(1, points[inside]))
        seeds0 = np.unique(np.concatenate(seeds0)).astype(np.intp)
        seeds1 = np.unique(np.concatenate(seeds1)).astype(np.intp)
        units = {level: set() for level in LEVELS}
        for frame, seeds in ((grids0, seeds0), (grids1, seeds1)):
            table = key_table(frame.iloc[seeds], self.keys)
            for level in LEVELS:
                units[level].update(map(tuple, table[unit_columns(level, self.cities)].to_numpy(dtype=object)))
        if not any(units.values()):
            return units

        gaps0 = self.previous.gaps
        rows0 = np.flatnonzero(kinds0 == "missing_center")  # a few of the province's gaps: looked at one by one
        if len(rows0):
            level0 = gaps0["level"].to_numpy(dtype=object)[rows0]
            keys0 = key_table(gaps0.iloc[rows0], self.keys).to_numpy(dtype=object)
            depth = {level: len(unit_columns(level, self.cities)) for level in LEVELS}
            drop["missing_center"][rows0] = [lv in units and tuple(k[:depth[lv]]) in units[lv]
                                             for lv, k in zip(level0, keys0)]

        # the new grids of those units, and the centres that might stand in them
        table1 = key_table(grids1, self.keys)
        members = {}
        within = None  # the grids of the districts: every street and community looked at is in one of them
        for level in LEVELS:
            columns = unit_columns(level, self.cities)
            if within is None:
                members[level] = within = np.flatnonzero(_isin(table1, columns, units[level]))
            else:
                members[level] = within[_isin(table1.iloc[within], columns, units[level])]
        found = {level: set() for level in LEVELS}
        levels = self.centers1["level"].to_numpy(dtype=object) if not self.centers1.empty else np.zeros(0, object)
        for level in LEVELS:
            # the centres of this level near these units' grids, and the grid each stands in (among all
            # its grids: the first in the layer's order counts)
            of_level = np.flatnonzero(levels == level)
            if not len(members[level]) or not len(of_level):
                continue
            points = self.centers1.geometry.values[of_level]
            near_points = _hits(points, self.centre_bounds()[of_level],
                                _widened(self.bounds(1)[members[level]], MARGIN_DEG))
            if len(near_points):
                candidates = self.near(1, points[near_points])
                _, at = centre_grids(self.metric(candidates), self.to_metric(points[near_points]))
                found[level] = set(map(tuple, table1.iloc[candidates[at]][unit_columns(level, self.cities)]
                                       .to_numpy(dtype=object)))
        shapes = None
        rows, geoms = [], []
        for level in LEVELS:
            columns = unit_columns(level, self.cities)
            positions = members[level]
            if not len(positions):
                continue
            groups = table1.iloc[positions].groupby(columns, sort=True).indices
            for key, at in groups.items():
                key = key if isinstance(key, tuple) else (key,)
                if key in found[level]:
                    continue
                shape = None
                if level == "district":
                    if shapes is None:
                        shapes = self._district_shapes({k[-1] for k in units["district"]})
                    shape = district_shape(shapes, key)
                if shape is None:
                    shape = merge_tiles(self.metric(positions[at]))
                rows.append(missing_center_row(level, columns, key))
                geoms.append(shape)
        if rows:
            parts["missing_center"].append(_Gaps("missing_center", pd.DataFrame(rows, columns=[CITY, *_ROW_COLUMNS]),
                                                 np.array(geoms, dtype=object)))
        return units

    def tiling_and_overlaps(self, parts, drop, kinds0, grid_of0) -> None:
        gaps0 = self.previous.gaps
        district_columns = unit_columns("district", self.cities)
        districts = set()
        renamed = set(self.ids1[self.changed1])  # an "outside" row names its grid's street, community and name
        if len(gaps0):
            outside = (kinds0 == "tiling_gap") & pd.Series(grid_of0).isin(renamed).to_numpy()
            districts |= set(map(tuple, key_table(gaps0[outside], district_columns).to_numpy(dtype=object)))
        if not len(self.struct0) and not len(self.struct1) and not districts:
            return
        for frame, positions in ((self.grids0, self.struct0), (self.grids1, self.struct1)):
            districts |= set(map(tuple, key_table(frame.iloc[positions], district_columns).to_numpy(dtype=object)))

        if len(self.struct0) or len(self.struct1):
            # the grids whose edges may have stopped or started matching: around the reshaped ones
            shapes = np.concatenate([self.grids0.geometry.values[self.struct0],
                                     self.grids1.geometry.values[self.struct1]])
            around1 = self.near(1, shapes)
            invalid1 = self._invalid(1, around1)
            around0 = self.near(0, shapes)
            invalid0 = self._invalid(0, around0) if self.edges0 is None else self.edges0[around0]
            self.edges1 = self._new_edges(around1, invalid1)
            was = pd.Series(invalid0, index=self.ids0[around0])
            now = pd.Series(invalid1, index=self.ids1[around1])
            flipped = now.index[(now != was.reindex(now.index).fillna(False).astype(bool)).to_numpy()]
            at = self.ids1.get_indexer(flipped)
            districts |= set(map(tuple, key_table(self.grids1.iloc[at], district_columns).to_numpy(dtype=object)))

            # overlaps: every pair with a reshaped grid in it, again
            struct_ids = set(self.ids0[self.struct0]) | set(self.ids1[self.struct1])
            rows0 = np.flatnonzero(kinds0 == "overlap")
            if len(rows0):
                ids = gaps0["gap_id"].to_numpy(dtype=object)[rows0]
                drop["overlap"][rows0] = [g in struct_ids or _second(i, g) in struct_ids
                                          for i, g in zip(ids, grid_of0[rows0])]
            candidates = around1[invalid1]
            if len(candidates) >= 2:
                geoms = np.empty(len(self.grids1), dtype=object)
                geoms[candidates] = self.metric(candidates)
                found = _overlaps(self.grids1, geoms, candidates, self.params)
                if len(found.rows):
                    firsts = found.rows["grid_id"].to_numpy(dtype=object)
                    seconds = [s[len(f) + 1:] for f, s in zip(firsts, found.rows["id_suffix"])]
                    keep = np.array([f in struct_ids or s in struct_ids for f, s in zip(firsts, seconds)], bool)
                    if keep.any():
                        parts["overlap"].append(_Gaps("overlap", found.rows[keep].reset_index(drop=True),
                                                      found.geoms[keep]))

        districts = {d for d in districts if not any(v is None or v != v for v in d)}
        if not districts:
            return
        if len(gaps0):
            tiling = kinds0 == "tiling_gap"
            keys0 = key_table(gaps0[tiling], district_columns).to_numpy(dtype=object)
            hit = np.zeros(len(gaps0), bool)
            hit[np.flatnonzero(tiling)] = [tuple(k) in districts for k in keys0]
            drop["tiling_gap"] = hit
        table1 = key_table(self.grids1, district_columns)
        groups = table1[_isin(table1, district_columns, districts)].groupby(district_columns, sort=True).indices
        shapes = self._district_shapes({k[-1] for k in districts})
        base = np.flatnonzero(_isin(table1, district_columns, districts))
        inputs = []
        for key, at in groups.items():
            positions = base[at]
            invalid = self._invalid(1, positions) if self.edges1 is None else self.edges1[positions]
            inputs.append((self.metric(positions), positions, invalid.any(), key))
        # each district is a union and a difference of large shapes (GEOS lets go of the GIL): in threads
        with ThreadPoolExecutor(max(1, min(_coverage.THREADS, len(inputs)))) as pool:
            done = list(pool.map(lambda item: _district_gaps(self.grids1, *item, shapes, self.cities, self.params),
                                 inputs))
        rows = [row for part_rows, _ in done for row in part_rows]
        geoms = [geom for _, part_geoms in done for geom in part_geoms]
        if rows:
            parts["tiling_gap"].append(_Gaps("tiling_gap", pd.DataFrame(rows, columns=[CITY, *_ROW_COLUMNS]),
                                             np.array(geoms, dtype=object)))

    def _district_shapes(self, names: set) -> dict:
        """``district_shapes`` of the districts of these names only (every one of a name: the same keys)."""
        layer = self.districts
        if layer is not None and not layer.empty:
            layer = layer[layer["name"].isin(names).to_numpy(dtype=bool)]
        return district_shapes(layer, self.crs, self.cities)

    def _new_edges(self, around1: np.ndarray, invalid1: np.ndarray) -> np.ndarray | None:
        """Every new grid's edge check: the old grids' kept, those ``around1`` checked again (``invalid1``)."""
        if self.edges0 is None:
            return None
        at = None if self.ids0.equals(self.ids1) else self.ids0.get_indexer(self.ids1)
        edges = self.edges0.copy() if at is None else self.edges0[np.maximum(at, 0)]
        known = np.ones(len(edges), bool) if at is None else at >= 0
        edges[around1], known[around1] = invalid1, True
        unknown = np.flatnonzero(~known)  # (an added grid of no envelope, that no query finds)
        if len(unknown):
            edges[unknown] = self._invalid(1, unknown)
        return edges

    def _invalid(self, which: int, positions: np.ndarray) -> np.ndarray:
        """Whether each of these grids' edges fail to match a neighbour's, checked among its neighbours."""
        if not len(positions):
            return np.zeros(0, bool)
        frame = self.grids0 if which == 0 else self.grids1
        with_neighbours = np.union1d(positions, self.near(which, frame.geometry.values[positions])).astype(np.intp)
        geoms = self.metric(with_neighbours) if which == 1 else self.to_metric(frame.geometry.values[with_neighbours])
        # as analyse checks them: the grids whose edges all match a neighbour's are valid at once
        return _invalid_edges(geoms)[np.searchsorted(with_neighbours, positions)]

    def gaps(self, parts, drop) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
        """The previous gaps but those dropped, with the new ones, in ``analyse``'s order; and the new ones."""
        gaps0 = self.previous.gaps
        kept = gaps0[~np.logical_or.reduce(list(drop.values()))] if len(gaps0) else gaps0
        fresh = [p for kind in GAP_KINDS for p in parts[kind] if len(p.rows)]
        fresh = _gaps_frame(fresh, self.crs) if fresh else None
        frames = [f for f in (kept, fresh) if f is not None and len(f)]
        if not frames:
            return _empty_gaps(), fresh
        columns = list(dict.fromkeys(c for f in frames for c in f.columns))
        for n, frame in enumerate(frames):  # a column one of them lacks (city): None there, as analyse has it
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                frames[n] = frame.assign(**{c: pd.Series([None] * len(frame), index=frame.index, dtype=object)
                                            for c in missing})
        table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
        table = gpd.GeoDataFrame(table[[*gap_columns(table), table.geometry.name]], geometry=table.geometry.name,
                                 crs=STORAGE_CRS)
        n_kept = len(kept) if len(kept) else 0
        return table.iloc[self._gap_order(table, n_kept)].reset_index(drop=True), fresh

    def _gap_order(self, table, n_kept: int) -> np.ndarray:
        """Positions of ``table``'s rows in ``analyse``'s order: by kind, then as each kind is made.
        The first ``n_kept`` rows are the previous analysis' (in that order), the rest new."""
        # each row's kind as a number (comparing 40k texts once a kind took longer)
        kinds = GAP_KINDS_INDEX.get_indexer(table["kind"].to_numpy(dtype=object))
        grid_ids = table["grid_id"].astype(object)
        units = np.flatnonzero((kinds == GAP_KINDS.index("missing_center")) | (kinds == GAP_KINDS.index("tiling_gap")))
        keys = np.empty(len(table), dtype=object)
        keys[units] = list(map(tuple, key_table(table.iloc[units].reindex(columns=self.keys), self.keys)
                                .to_numpy(dtype=object)))
        levels, ids = table["level"].to_numpy(dtype=object), table["gap_id"].to_numpy(dtype=object)
        depth = {level: len(unit_columns(level, self.cities)) for level in LEVELS}
        out = []
        for number, kind in enumerate(GAP_KINDS):
            rows = np.flatnonzero(kinds == number)
            if kind in ("service_gap", "staffing_gap", "walk_gap"):  # in the grids' order, which is their keys'
                kept, fresh = rows[rows < n_kept], rows[rows >= n_kept]  # kept: in that order already
                fresh = fresh[np.argsort(grid_ids.iloc[fresh].to_numpy(dtype=object), kind="stable")]
                place = np.searchsorted(grid_ids.iloc[kept].to_numpy(dtype=object),
                                        grid_ids.iloc[fresh].to_numpy(dtype=object)) - 0.5
                both = np.concatenate([kept, fresh])
                out.append(both[np.argsort(np.concatenate([np.arange(len(kept)), place]), kind="stable")])
                continue
            if kind == "missing_center":  # level by level, units by key
                key = lambda i: (LEVELS.index(levels[i]), tuple(keys[i][:depth[levels[i]]]))  # noqa: E731
            elif kind == "tiling_gap":  # districts by key; within one, as it was made (a stable sort)
                key = lambda i: tuple(keys[i][:depth["district"]])  # noqa: E731
            else:  # overlaps: pairs in the grids' order
                key = lambda i: (self.ids1.get_loc(grid_ids.iat[i]),  # noqa: E731
                                 self.ids1.get_loc(_second(ids[i], grid_ids.iat[i])))
            out.append(np.array(sorted(rows.tolist(), key=key), dtype=np.intp))
        return np.concatenate(out)

    # --- summaries -------------------------------------------------------------------------
    def touched_units(self, coverage, fresh, drop, again) -> dict[str, set]:
        """Units (city, district, street, community) whose summary rows may have changed: those of the
        grids whose own rows changed (old keys and new), and those of every gap that went or came."""
        # the grids' rows that go (the previous rows of every grid computed again, and of those removed)
        # and those that come, signed: what the units' sums change by
        at = self.ids0.get_indexer(self.ids1[again])
        went = np.union1d(at[at >= 0], self.removed).astype(np.intp)
        self.delta = pd.concat([_signed(self.previous.coverage.iloc[went], self.keys, -1),
                                _signed(coverage.iloc[again], self.keys, 1)], ignore_index=True)
        tables = [self.delta[self.keys], key_table(self.grids0.iloc[self.gone0], self.keys),
                  key_table(self.grids1.iloc[self.touched1], self.keys)]
        gaps0 = self.previous.gaps
        dropped = gaps0[np.logical_or.reduce(list(drop.values()))] if len(gaps0) else gaps0
        changed = [pd.DataFrame(f.drop(columns=f.geometry.name)).assign(sign=sign)
                   for f, sign in ((dropped, -1), (fresh, 1)) if f is not None and len(f)]
        self.gap_delta = pd.DataFrame(columns=[*self.keys, "kind", "sign"])
        if changed:
            changed_gaps = pd.concat(changed, ignore_index=True).reindex(columns=[*GAP_COLUMNS_ALL, "sign"])
            if self.cities and changed_gaps[CITY].isna().any():
                self.delta = None  # a city found from its grid: the old one or the new? summed again instead
            if self.cities:
                changed_gaps[CITY] = _gap_cities(changed_gaps, coverage)
            keys = key_table(changed_gaps, self.keys)
            tables.append(keys)
            self.gap_delta = keys.assign(kind=changed_gaps["kind"].to_numpy(), sign=changed_gaps["sign"].to_numpy())
        # every table's keys as objects once (a missing name: None); each level's columns lead the keys
        keys = np.concatenate([table[self.keys].to_numpy(dtype=object) for table in tables])
        keys[pd.isna(keys)] = None
        out = {}
        for level in (CITY, *LEVELS):
            depth = len(unit_columns(level, self.cities))
            out[level] = set(map(tuple, keys[:, :depth]))
        return out

    def _by_delta(self, level: str, old: pd.DataFrame) -> pd.DataFrame | None:
        """``old`` (a level's summary) with what the change added to and took from each unit: the same
        units in the same places (None when a unit came or went: then its rows are summed again)."""
        if self.delta is None:
            return None
        columns = unit_columns(level, self.cities)
        summed = [*_SUMMED, *walking_people(self.delta)]
        sums = self.delta.groupby(columns, sort=False)[summed].sum()
        if not np.array_equal(sums["population"].to_numpy(), np.round(sums["population"].to_numpy())):
            return None  # populations that are not whole numbers: rounding the sums is not additive
        counted = self.gap_delta.dropna(subset=columns)
        if len(counted):
            kinds = counted.groupby([*columns, "kind"], sort=False)["sign"].sum().unstack(fill_value=0)
            sums = sums.join(kinds, how="outer")
        sums = sums.reindex(columns=[*summed, *GAP_KINDS]).fillna(0)
        if not len(sums):
            return old.copy()
        units = [u if isinstance(u, tuple) else (u,) for u in sums.index]
        rows = _rows_of(old, columns, units)
        if rows is None:
            return None
        columns = {}
        for name in [*summed, *GAP_KINDS]:
            values = old[name].to_numpy().copy()
            values[rows] = values[rows] + np.round(sums[name].to_numpy()).astype(values.dtype)
            columns[name] = values
        frame = old.assign(**columns)  # one copy, not one a column
        if (frame["grids"].to_numpy()[rows] <= 0).any():
            return None  # a unit left with no grid: its row goes
        population = frame["population"].to_numpy(float)[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = frame["covered_population"].to_numpy(float)[rows] / np.where(population == 0, np.nan, population)
        values = frame["covered_share"].to_numpy(float).copy()
        values[rows] = pd.Series(share).round(4).to_numpy()
        frame["covered_share"] = values
        if "disc_covered_share" in frame.columns:  # a walking analysis: the discs' share beside the walk's
            with np.errstate(invalid="ignore", divide="ignore"):
                share = (frame["disc_covered_population"].to_numpy(float)[rows]
                         / np.where(population == 0, np.nan, population))
            values = frame["disc_covered_share"].to_numpy(float).copy()
            values[rows] = pd.Series(share).round(4).to_numpy()
            frame["disc_covered_share"] = values
        return frame

    def summaries(self, coverage, gaps, touched) -> dict[str, pd.DataFrame]:
        previous = self.previous.summaries
        status = coverage["coverage_status"].to_numpy(dtype=object)
        statuses = pd.Series(status).value_counts()
        population = pd.to_numeric(coverage["population"]).astype("Float64").fillna(0).astype(float)
        covered = pd.to_numeric(coverage["covered_population"]).astype("Float64").fillna(0).astype(float)
        walking = {name: pd.to_numeric(coverage[name]).astype("Float64").fillna(0).astype(float)
                   for name in walking_people(coverage)}
        counts = gaps["kind"].value_counts() if len(gaps) else {}
        whole = "_whole"  # the total row: one unit's sums, shaped (rounded, typed, ordered) as every row is
        one = pd.DataFrame({whole: [True], "grids": [len(coverage)], "population": [population.sum()],
                            "covered_population": [covered.sum()],
                            **{f"grids_{s}": [int(statuses.get(s, 0))] for s in STATUSES},
                            **{name: [values.sum()] for name, values in walking.items()}})
        total = _summary(one, pd.DataFrame({whole: [], "kind": []}), [whole]).drop(columns=whole)
        for kind in GAP_KINDS:
            total[kind] = int(counts.get(kind, 0))
        out = {"total": total}
        in_order = gap_table = None
        for level in (CITY, *LEVELS):
            columns = unit_columns(level, self.cities)
            if not columns:
                out[level] = out["total"]
                continue
            units = touched[level]
            quick = self._by_delta(level, previous[level]) if not self.rekeyed else None
            if quick is not None:
                out[level] = quick
                continue
            if gap_table is None:  # summed again: from the grids and gaps of the touched units
                gap_table = pd.DataFrame(gaps.drop(columns=gaps.geometry.name))
                if self.cities and (CITY not in gap_table.columns or gap_table[CITY].isna().any()):
                    gap_table[CITY] = _gap_cities(gap_table, coverage)
                table_all = key_table(coverage, self.keys)
                gap_keys = key_table(gap_table.reindex(columns=self.keys), self.keys)
            inside = _isin(table_all, columns, units)
            part = coverage[inside]
            table = key_table(part, self.keys).assign(
                grids=1, population=population[inside].to_numpy(), covered_population=covered[inside].to_numpy(),
                **{f"grids_{s}": (status[inside] == s).astype(int) for s in STATUSES},
                **{name: values[inside].to_numpy() for name, values in walking.items()})
            gaps_in = gap_table[_isin(gap_keys, columns, units)]
            fresh = _summary(table, gaps_in, columns) if len(table) else None
            old = previous[level]
            old_keys = key_table(old, columns)
            stays = ~_isin(old_keys, columns, units)
            stays = np.asarray(stays, dtype=bool)
            if fresh is not None and self.cities:
                fresh[CITY] = shown_city(fresh[CITY])
            if not self.rekeyed and fresh is not None and len(fresh) == int((~stays).sum()):
                # the same units, in the same places: the touched rows replaced where they stand
                at_old = np.flatnonzero(~stays)
                fresh_at = pd.MultiIndex.from_frame(key_table(fresh, columns)).get_indexer(
                    pd.MultiIndex.from_frame(old_keys.iloc[at_old]))
                if (fresh_at >= 0).all():
                    both = pd.concat([old.iloc[np.flatnonzero(stays)], fresh.iloc[fresh_at]], ignore_index=True)
                    target = np.concatenate([np.flatnonzero(stays), at_old])
                    out[level] = both.iloc[np.argsort(target, kind="stable")].reset_index(drop=True)
                    continue
            if in_order is None:
                in_order = orderer(coverage, adcodes(self.districts))
            frame = pd.concat([old.iloc[np.flatnonzero(stays)], fresh], ignore_index=True) \
                if fresh is not None else old.iloc[np.flatnonzero(stays)]
            names = [tuple(k) for k in key_table(frame, columns).to_numpy(dtype=object)]
            frame = frame.iloc[sorted(range(len(frame)), key=names.__getitem__)]  # as grouped: by key
            frame = in_order(frame)
            out[level] = frame.reset_index(drop=True)
        return out


def _widened(bounds: np.ndarray, margin: float) -> np.ndarray:
    return np.column_stack([bounds[:, :2] - margin, bounds[:, 2:] + margin])


def _hits(geoms: np.ndarray, bounds: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Positions (sorted) of ``geoms`` (``bounds``: their envelopes) whose envelopes meet one of the
    ``query`` envelopes (rows of xmin, ymin, xmax, ymax): those in the queries' whole envelope, then a
    tree of only those (a tree of a province's grids took longer than the rest of an update)."""
    if not len(geoms) or not np.isfinite(query).all(axis=1).any():  # (empty shapes have no envelope)
        return np.zeros(0, np.intp)
    low, high = np.nanmin(query[:, :2], axis=0), np.nanmax(query[:, 2:], axis=0)
    around = np.flatnonzero((bounds[:, 0] <= high[0]) & (bounds[:, 2] >= low[0])
                            & (bounds[:, 1] <= high[1]) & (bounds[:, 3] >= low[1]))
    if not len(around):
        return np.zeros(0, np.intp)
    boxes = shapely.box(query[:, 0], query[:, 1], query[:, 2], query[:, 3])
    return around[np.unique(shapely.STRtree(geoms[around]).query(boxes)[1])].astype(np.intp)


def _signed(coverage: pd.DataFrame, keys: list[str], sign: int) -> pd.DataFrame:
    """Grid rows as the summaries add them up (count, population, covered people, status), times ``sign``."""
    status = coverage["coverage_status"].to_numpy(dtype=object)
    population = pd.to_numeric(coverage["population"]).astype("Float64").fillna(0).to_numpy(float)
    covered = pd.to_numeric(coverage["covered_population"]).astype("Float64").fillna(0).to_numpy(float)
    return key_table(coverage, keys).assign(grids=sign, population=sign * population, covered_population=sign * covered,
                                            **{f"grids_{s}": sign * (status == s).astype(int) for s in STATUSES},
                                            **{name: sign * pd.to_numeric(coverage[name]).astype("Float64").fillna(0)
                                               .to_numpy(float) for name in walking_people(coverage)})


_SUMMED = ["grids", "population", "covered_population", *(f"grids_{s}" for s in STATUSES)]


def _rows_of(frame: pd.DataFrame, columns: list[str], units: list[tuple]) -> np.ndarray | None:
    """The row of each of ``units`` in ``frame`` (a summary); None if one has none."""
    last = np.flatnonzero(frame[columns[-1]].isin({u[-1] for u in units}).to_numpy(dtype=bool))
    keys = key_table(frame.iloc[last], columns).to_numpy(dtype=object)
    where = {tuple(k): at for k, at in zip(keys, last)}
    rows = [where.get(u, -1) for u in units]
    return None if -1 in rows else np.array(rows, dtype=np.intp)


def _isin(table: pd.DataFrame, columns: list[str], units) -> np.ndarray:
    """Which rows of ``table`` (unit columns) name one of ``units`` (tuples of ``columns``' values)."""
    units = {u for u in units if not any(v is None or v != v for v in u)}  # units of no name have no rows
    if not units or not len(table):
        return np.zeros(len(table), bool)
    # the last name first (one column, quick), the whole key only for the rows that pass
    out = np.array(table[columns[-1]].isin({u[-1] for u in units}), dtype=bool)
    if len(columns) > 1:
        at = np.flatnonzero(out)
        values = table[columns].iloc[at].astype(object).to_numpy(dtype=object)
        out[at] = [tuple(v) in units for v in values]
    return out


def _second(gap_id: str, first: str) -> str:
    """The second grid of an overlap ``overlap.FIRST.SECOND`` (ids may hold dots themselves)."""
    return gap_id[len("overlap.") + len(first) + 1:]

