"""The analysis as it was before it was made to scale (issue 12): the reference the fast one must equal.

Only for ``bench_coverage.py`` and the equality tests; never imported by the product.
Copied verbatim from geodata/coverage.py at that time, but for the summaries, ``Params``
and ``Analysis``, which it takes from the product (they are not what changed).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata.crs import STORAGE_CRS, metric_crs
from geodata.coverage import Analysis, Params, summarise  # the summaries are not under test here

LEVELS = ("district", "street", "community")
UNIT_COLUMNS = {"district": ["district"], "street": ["district", "street"],
                "community": ["district", "street", "community"]}
SMALL_PART_VERTICES = 10_000  # gaps and overlaps below this size are measured with a negative buffer
QUAD_SEGS = 16  # a 64-gon: its area is within 0.17 % of πr² (the 32-gon default is 0.64 % short)
LEVEL_NAMES = {"district": "区县", "street": "街道", "community": "社区"}


def analyse(grids: gpd.GeoDataFrame, centers: gpd.GeoDataFrame,
            districts: gpd.GeoDataFrame | None = None, params: Params = Params()) -> Analysis:
    """Coverage of every grid, the four kinds of gaps, and summaries at every level.

    Parameters
    ----------
    grids, centers, districts : layers as stored (WGS84); ``districts`` may be None or empty.
    params : radii and thresholds.

    Examples
    --------
    >>> result = analyse(grids, centers, districts)
    >>> result.summaries["city"].loc[0, "covered_share"]  # doctest: +SKIP
    0.87
    """
    if grids.empty:
        return _empty_analysis(grids, params)
    crs = metric_crs(grids)
    grid_geoms = grids.geometry.to_crs(crs).values
    center_m = centers.to_crs(crs) if not centers.empty else centers

    ratio, uncovered = grid_coverage(grid_geoms, catchments(center_m, params))
    coverage = _coverage_frame(grids, ratio, params)
    gap_parts = [
        _service_gaps(grids, uncovered, params),
        _missing_centers(grids, grid_geoms, center_m, districts, crs),
        *_tiling_and_overlaps(grids, grid_geoms, districts, crs, params),
        _staffing_gaps(grids, grid_geoms),
    ]
    gaps = _gaps_frame(gap_parts, crs)
    return Analysis(params, crs.to_string(), coverage, gaps, summarise(coverage, gaps, districts))


def tiling_problems(grids: gpd.GeoDataFrame, districts: gpd.GeoDataFrame | None = None,
                    params: Params = Params()) -> gpd.GeoDataFrame:
    """Only the tiling gaps and overlaps of ``grids`` (for checking an upload before it is stored)."""
    if grids.empty:
        return _empty_gaps()
    crs = metric_crs(grids)
    return _gaps_frame(_tiling_and_overlaps(grids, grids.geometry.to_crs(crs).values, districts, crs, params), crs)


# --- catchments and per-grid coverage ------------------------------------------------------

def catchments(centers_m: gpd.GeoDataFrame, params: Params) -> np.ndarray:
    """One disc per centre, of its level's radius, in the centres' (metric) CRS."""
    if centers_m.empty:
        return np.array([], dtype=object)
    radii = centers_m["level"].map({level: params.radius(level) for level in LEVELS}).fillna(0).to_numpy(float)
    discs = shapely.buffer(centers_m.geometry.values, radii, quad_segs=QUAD_SEGS)
    return discs[radii > 0]


def grid_coverage(grid_geoms: np.ndarray, discs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of each grid's area inside any disc, and each grid's uncovered part.

    Equal to ``area(grid ∩ union(discs)) / area(grid)`` (tests check it against
    that idiom), without ever building the city-wide union.
    """
    grid_geoms = np.asarray(grid_geoms, dtype=object)
    n = len(grid_geoms)
    uncovered = grid_geoms.copy()
    if len(discs) == 0:
        return np.zeros(n), uncovered
    tree = shapely.STRtree(discs)
    grid_idx, disc_idx = tree.query(grid_geoms, predicate="intersects")
    inside_one = np.zeros(n, dtype=bool)
    inside_one[tree.query(grid_geoms, predicate="covered_by")[0]] = True
    uncovered[inside_one] = shapely.Polygon()

    # the rest: each grid minus the union of the discs that touch it
    partial = np.zeros(n, dtype=bool)
    partial[grid_idx] = True
    partial &= ~inside_one
    keep = partial[grid_idx]
    grid_idx, disc_idx = grid_idx[keep], disc_idx[keep]
    if len(grid_idx):
        rows, starts, counts = np.unique(grid_idx, return_index=True, return_counts=True)  # grid_idx is sorted
        table = np.full((len(rows), counts.max()), None, dtype=object)
        table[np.repeat(np.arange(len(rows)), counts), np.arange(len(grid_idx)) - np.repeat(starts, counts)] = \
            discs[disc_idx]
        uncovered[rows] = shapely.difference(grid_geoms[rows], shapely.union_all(table, axis=1))

    area = shapely.area(grid_geoms)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(area > 0, 1.0 - shapely.area(uncovered) / area, 0.0)
    return np.clip(ratio, 0.0, 1.0), uncovered


def covered_population(grids: gpd.GeoDataFrame, ratio: np.ndarray) -> pd.Series:
    """Each grid's people inside a catchment: its population times its covered share, rounded (NA: no population).

    The one definition of "covered people": the summaries add these up, and siting starts from them.
    """
    population = pd.to_numeric(grids["population"]).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(pd.array(np.round(population * ratio), dtype="Float64").astype("Int64"), index=grids.index)


def _coverage_frame(grids: gpd.GeoDataFrame, ratio: np.ndarray, params: Params) -> gpd.GeoDataFrame:
    coverage = grids.copy()
    coverage["coverage_ratio"] = np.round(ratio, 6)
    coverage["covered_population"] = covered_population(grids, ratio)
    coverage["coverage_status"] = np.select(
        [ratio >= params.covered_ratio, ratio >= params.partial_ratio], ["covered", "partial"], "uncovered")
    return coverage


# --- gaps ----------------------------------------------------------------------------------

@dataclass
class _Gaps:
    """Gap rows of one kind, geometries in the metric CRS."""

    kind: str
    rows: pd.DataFrame  # level, district, street, community, grid_id, detail, id_suffix
    geoms: np.ndarray


def _grid_rows(grids: gpd.GeoDataFrame, positions, details) -> pd.DataFrame:
    rows = grids.iloc[positions][["district", "street", "community", "grid_id"]].reset_index(drop=True)
    rows["level"] = None
    rows["detail"] = list(details)
    rows["id_suffix"] = rows["grid_id"]
    return rows


def _service_gaps(grids, uncovered: np.ndarray, params: Params) -> _Gaps:
    area = shapely.area(uncovered)
    positions = np.flatnonzero(area >= max(params.sliver_m2, 1e-6))
    names = grids["name"].to_numpy()
    details = [f"{names[i]}: {area[i]:,.0f} m² outside every catchment 不在任何服务半径内" for i in positions]
    return _Gaps("service_gap", _grid_rows(grids, positions, details), uncovered[positions])


def _missing_centers(grids, grid_geoms, centers_m, districts, crs) -> _Gaps:
    """Units (district, street, community) with no centre of their own level inside them."""
    units = grids[["district", "street", "community"]].astype(object)
    found = {level: set() for level in LEVELS}
    if not centers_m.empty:
        point_idx, grid_idx = shapely.STRtree(grid_geoms).query(centers_m.geometry.values, predicate="intersects")
        first = np.unique(point_idx, return_index=True)[1]  # a centre on a shared edge counts once
        point_idx, grid_idx = point_idx[first], grid_idx[first]
        levels = centers_m["level"].to_numpy()[point_idx]
        for level in LEVELS:
            at_level = grid_idx[levels == level]
            found[level] = set(map(tuple, units.iloc[at_level][UNIT_COLUMNS[level]].to_numpy()))

    district_shapes = {}
    if districts is not None and not districts.empty:
        district_shapes = dict(zip(districts["name"], districts.geometry.to_crs(crs).values))
    rows, geoms = [], []
    for level in LEVELS:
        columns = UNIT_COLUMNS[level]
        groups = units.groupby(columns, sort=True).indices
        for key, positions in groups.items():
            key = key if isinstance(key, tuple) else (key,)
            if key in found[level]:
                continue
            names = dict(zip(columns, key))
            shape = district_shapes.get(key[0]) if level == "district" else None
            if shape is None:
                shape = merge_tiles(grid_geoms[positions])
            rows.append({**{c: names.get(c) for c in ("district", "street", "community")}, "grid_id": None,
                         "level": level, "id_suffix": f"{level}.{'.'.join(key)}",
                         "detail": f"{key[-1]}: 无{LEVEL_NAMES[level]}级党群服务中心 (no {level}-level centre)"})
            geoms.append(shape)
    return _Gaps("missing_center", pd.DataFrame(rows, columns=_ROW_COLUMNS), np.array(geoms, dtype=object))


_ROW_COLUMNS = ["district", "street", "community", "grid_id", "level", "detail", "id_suffix"]


def merge_tiles(geoms: np.ndarray):
    """Union of polygons that should tile without overlap (fast); exact union when they do not."""
    if shapely.coverage_is_valid(geoms):
        return shapely.coverage_union_all(geoms)
    return shapely.union_all(geoms)


def _significant(parts: np.ndarray, params: Params) -> np.ndarray:
    """Parts beyond the sliver tolerance: big enough and wider than a hairline."""
    big = shapely.area(parts) >= params.sliver_m2
    if params.sliver_width_m > 0 and big.any():
        # wider than a hairline: some point lies more than half the width inside
        half = params.sliver_width_m / 2
        candidates = parts[big]
        # most wide parts say so at once: a point inside them far from their edge
        wide = shapely.distance(shapely.point_on_surface(candidates), shapely.boundary(candidates)) > half
        unsure = np.flatnonzero(~wide)
        few = shapely.get_num_coordinates(candidates[unsure]) < SMALL_PART_VERTICES
        # a negative buffer is exact and quick on small parts but took minutes and gigabytes on a
        # 100k-vertex one; the largest inscribed circle is O(n log n) there (slow only on long thin boxes)
        wide[unsure[few]] = ~shapely.is_empty(shapely.buffer(candidates[unsure[few]], -half))
        if (~few).any():
            circles = shapely.maximum_inscribed_circle(candidates[unsure[~few]], tolerance=half / 10)
            wide[unsure[~few]] = shapely.length(circles) > half
        big[big] = wide
    return big


def _tiling_and_overlaps(grids, grid_geoms, districts, crs, params: Params) -> list[_Gaps]:
    """Land of a district in no grid, grids reaching outside their district, land in two grids."""
    invalid_edges = ~shapely.is_empty(shapely.coverage_invalid_edges(grid_geoms))
    overlaps = _overlaps(grids, grid_geoms, np.flatnonzero(invalid_edges), params)

    rows, geoms = [], []
    by_district = grids.groupby("district", sort=True).indices
    district_shapes = {}
    if districts is not None and not districts.empty:
        district_shapes = dict(zip(districts["name"], districts.geometry.to_crs(crs).values))
    for name, positions in by_district.items():
        geoms_d = grid_geoms[positions]
        union = (shapely.coverage_union_all(geoms_d) if not invalid_edges[positions].any()
                 else shapely.union_all(geoms_d))
        land = district_shapes.get(name)
        # without district boundaries, holes inside the grids' union are the gaps
        holes = shapely.difference(land, union) if land is not None else _holes(union)
        parts = shapely.get_parts(holes)
        for n, part in enumerate(parts[_significant(parts, params)], start=1):
            rows.append({"district": name, "street": None, "community": None, "grid_id": None, "level": None,
                         "id_suffix": f"{name}.{n}",
                         "detail": f"{name}: {part.area:,.0f} m² of the district in no grid 未划入网格"})
            geoms.append(part)
        if land is None:
            continue
        outside = shapely.get_parts(shapely.difference(union, land))
        outside = outside[_significant(outside, params)]
        if len(outside):
            hit = np.unique(shapely.STRtree(geoms_d).query(outside, predicate="intersects")[1])
            for i in hit:
                part = shapely.difference(geoms_d[i], land)
                if _significant(np.array([part]), params)[0]:
                    row = grids.iloc[positions[i]]
                    rows.append({"district": name, "street": row["street"], "community": row["community"],
                                 "grid_id": row["grid_id"], "level": None, "id_suffix": f"outside.{row['grid_id']}",
                                 "detail": f"{row['name']}: {part.area:,.0f} m² outside its district {name} "
                                           f"超出所属区县"})
                    geoms.append(part)
    tiling = _Gaps("tiling_gap", pd.DataFrame(rows, columns=_ROW_COLUMNS), np.array(geoms, dtype=object))
    return [tiling, overlaps]


def _holes(union) -> object:
    rings = [ring for poly in shapely.get_parts(union) for ring in poly.interiors]
    return shapely.MultiPolygon([shapely.Polygon(r) for r in rings]) if rings else shapely.Polygon()


def _overlaps(grids, grid_geoms, candidates: np.ndarray, params: Params) -> _Gaps:
    """Land in two grids.  Only grids whose edges fail the coverage check can overlap."""
    empty = _Gaps("overlap", pd.DataFrame(columns=_ROW_COLUMNS), np.array([], dtype=object))
    if len(candidates) < 2:
        return empty
    geoms = grid_geoms[candidates]
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.intersection(geoms[a], geoms[b])
    shared = shapely.get_parts(shared, return_index=True)
    parts, pair = shared
    polygonal = shapely.get_type_id(parts) == 3
    parts, pair = parts[polygonal], pair[polygonal]
    if not len(parts):
        return empty
    # one overlap per pair of grids: the polygonal parts of their intersection together
    pairs, inverse = np.unique(pair, return_inverse=True)
    merged = np.array([shapely.union_all(parts[inverse == k]) for k in range(len(pairs))], dtype=object)
    significant = _significant(merged, params)
    pairs, merged = pairs[significant], merged[significant]
    first, second = candidates[a[pairs]], candidates[b[pairs]]
    ids = grids["grid_id"].to_numpy()
    rows = _grid_rows(grids, first, [f"{ids[i]} ∩ {ids[j]}: {g.area:,.0f} m² in two grids 网格重叠"
                                     for i, j, g in zip(first, second, merged)])
    rows["id_suffix"] = [f"{ids[i]}.{ids[j]}" for i, j in zip(first, second)]
    return _Gaps("overlap", rows, merged)


def _staffing_gaps(grids, grid_geoms) -> _Gaps:
    def blank(column):
        values = grids[column].astype(object)
        return values.isna().to_numpy() | values.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(bool)

    workers = pd.to_numeric(grids["grid_workers"]).astype("Float64")
    missing = {
        "instructor": (blank("instructor"), "no party-building instructor 无党建指导员"),
        "party_branch": (blank("party_branch"), "no party branch 无党支部"),
        "grid_workers": ((workers.isna() | (workers == 0)).to_numpy(bool), "no grid worker 无网格员"),
    }
    any_missing = np.logical_or.reduce([mask for mask, _ in missing.values()])
    positions = np.flatnonzero(any_missing)
    names = grids["name"].to_numpy()
    details = ["{}: {}".format(names[i], "; ".join(text for mask, text in missing.values() if mask[i]))
               for i in positions]
    return _Gaps("staffing_gap", _grid_rows(grids, positions, details), grid_geoms[positions])


def _gaps_frame(parts: list[_Gaps], crs) -> gpd.GeoDataFrame:
    frames, geoms = [], []
    for gaps in parts:
        if gaps.rows.empty:
            continue
        rows = gaps.rows.copy()
        rows.insert(0, "kind", gaps.kind)
        rows.insert(0, "gap_id", gaps.kind + "." + rows["id_suffix"].astype(str))
        frames.append(rows.drop(columns="id_suffix"))
        geoms.append(gaps.geoms)
    if not frames:
        return _empty_gaps()
    table = pd.concat(frames, ignore_index=True)
    metric = gpd.GeoSeries(np.concatenate(geoms), crs=crs)
    table["area_m2"] = np.round(metric.area.to_numpy(), 1)
    table = table[GAP_COLUMNS]
    return gpd.GeoDataFrame(table.astype(object).where(table.notna(), None).astype({"area_m2": float}),
                            geometry=metric.to_crs(STORAGE_CRS).values, crs=STORAGE_CRS)


GAP_COLUMNS = ["gap_id", "kind", "level", "district", "street", "community", "grid_id", "area_m2", "detail"]


def _empty_gaps() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in GAP_COLUMNS}, geometry=[], crs=STORAGE_CRS)


def _empty_analysis(grids: gpd.GeoDataFrame, params: Params) -> Analysis:
    coverage = grids.assign(coverage_ratio=pd.Series(dtype=float), covered_population=pd.Series(dtype="Int64"),
                            coverage_status=pd.Series(dtype=object))
    gaps = _empty_gaps()
    return Analysis(params, STORAGE_CRS, coverage, gaps, summarise(coverage, gaps))


# --- the comparison --------------------------------------------------------------------------

def differences(old: Analysis, new: Analysis, ratio_tol: float = 1e-9, area_rel: float = 1e-6) -> list[str]:
    """What differs between two analyses of the same data, beyond floating-point noise (empty: equal).

    Ratios to ``ratio_tol``; the same gaps (kind, id, level, names, grid, detail but for its
    measured area) with areas to ``area_rel`` relative; identical summaries.
    """
    import re

    out = []
    a, b = old.coverage, new.coverage
    if len(a) != len(b) or list(a["grid_id"]) != list(b["grid_id"]):
        return ["the coverage frames list different grids"]
    worst = float(np.max(np.abs(a["coverage_ratio"].to_numpy(float) - b["coverage_ratio"].to_numpy(float)),
                         initial=0.0))
    if worst > ratio_tol:
        out.append(f"coverage_ratio differs by up to {worst:.3g}")
    for column in ("coverage_status", "covered_population"):
        if not a[column].equals(b[column]):
            out.append(f"{column} differs in {int((a[column] != b[column]).sum())} grids")

    keys = ["gap_id", "kind", "level", "district", "street", "community", "grid_id"]
    ga, gb = old.gaps.set_index("gap_id", drop=False), new.gaps.set_index("gap_id", drop=False)
    if set(ga.index) != set(gb.index):
        out.append(f"gap ids differ: {len(set(ga.index) - set(gb.index))} only before, "
                   f"{len(set(gb.index) - set(ga.index))} only after, e.g. "
                   f"{sorted(set(ga.index) ^ set(gb.index))[:3]}")
        return out
    gb = gb.loc[ga.index]
    for column in keys:
        if not ga[column].equals(gb[column]):
            out.append(f"gap column {column} differs")
    area_a, area_b = ga["area_m2"].to_numpy(float), gb["area_m2"].to_numpy(float)
    rel = np.abs(area_a - area_b) / np.maximum(np.abs(area_a), 1.0)
    # areas are rounded to 0.1 m²: a rounding step on a small gap is not a difference
    bad = (rel > area_rel) & (np.abs(area_a - area_b) > 0.1 + 1e-9)
    if bad.any():
        out.append(f"gap areas differ in {int(bad.sum())} gaps, e.g. {list(ga.index[bad][:3])}")
    # the same shapes: no vertex of one farther than 1e-8° (about a millimetre) from the other
    # (a Hausdorff distance needs no overlay, which may fail on the hairline parts of overlaps)
    apart = shapely.hausdorff_distance(ga.geometry.values, gb.geometry.values)
    if (apart > 1e-8).any():
        out.append(f"gap geometries differ, by up to {np.nanmax(apart):.2g}°")
    number = re.compile(r"[\d,]+(\.\d+)?")
    if [number.sub("#", d) for d in ga["detail"]] != [number.sub("#", d) for d in gb["detail"]]:
        out.append("gap details differ (beyond the numbers in them)")

    for level, frame in old.summaries.items():
        other = new.summaries.get(level)
        if other is None or not frame.reset_index(drop=True).equals(other.reset_index(drop=True)):
            out.append(f"summary {level} differs")
    return out
