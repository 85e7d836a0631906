"""The analysis as it was before it was made to scale (issue 12): the reference the fast one must equal.

Only for ``bench_coverage.py`` and the equality tests; never imported by the product.
Here are the old versions of what was rewritten — ``analyse``'s order of work, the discs,
the per-grid coverage and the tiling check — copied verbatim (the gaps' details said as the
product says them); everything else (the gap rows, missing centres, staffing, summaries) is the
product's own, so the comparison stays about the rewrite while those change.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata import gapdetail
from geodata.coverage import (LEVELS, QUAD_SEGS, _ROW_COLUMNS, Analysis, Params, _coverage_frame, _empty_analysis,
                              _Gaps, _gaps_frame, _holes, _missing_centers, _overlaps, _service_gaps, _significant,
                              _staffing_gaps, summarise)
from geodata.crs import metric_crs


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
                         "detail": gapdetail.template("tiling_gap").format(name=name, area=f"{part.area:,.0f}")})
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
                                 "detail": gapdetail.template("outside").format(
                                     name=row["name"], area=f"{part.area:,.0f}", district=name)})
                    geoms.append(part)
    tiling = _Gaps("tiling_gap", pd.DataFrame(rows, columns=_ROW_COLUMNS), np.array(geoms, dtype=object))
    return [tiling, overlaps]


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
