"""Small hand-made layers whose answers can be worked out by hand."""

from __future__ import annotations

import geopandas as gpd
from shapely import Point, box

# A 3 × 2 block of 0.01° squares near Ningbo: grid g{col}{row} has its lower-left corner at
# (121.50 + 0.01·col, 29.80 + 0.01·row).
X0, Y0, STEP = 121.50, 29.80, 0.01


def square(col: int, row: int):
    x, y = X0 + STEP * col, Y0 + STEP * row
    return box(x, y, x + STEP, y + STEP)


def grid_row(grid_id: str, **overrides) -> dict:
    row = {
        "grid_id": grid_id, "name": f"{grid_id}网格", "grid_type": "residential",
        "district": "海曙区", "street": "月湖街道", "community": "青石社区",
        "population": 1000, "households": 400, "party_members": 40, "grid_workers": 2,
        "instructor": "王建国", "party_branch": "青石社区第一党支部",
    }
    row.update(overrides)
    return row


def grids(rows: list[dict], geometries=None) -> gpd.GeoDataFrame:
    """Rows with a square each (in row order along the 3 × 2 block) unless geometries are given."""
    if geometries is None:
        geometries = [square(i % 3, i // 3) for i in range(len(rows))]
    return gpd.GeoDataFrame(rows, geometry=list(geometries), crs="EPSG:4326")


def six_grids() -> gpd.GeoDataFrame:
    """g00..g21: two communities (青石 left column pair, 白云 the rest) in two streets."""
    rows = []
    for i in range(6):
        col, row = i % 3, i // 3
        community = "青石社区" if col == 0 else "白云社区"
        street = "月湖街道" if col == 0 else "白云街道"
        rows.append(grid_row(f"g{col}{row}", community=community, street=street, population=100 * (i + 1),
                             grid_type="industrial_park" if i == 5 else "residential"))
    return grids(rows)


def center_row(center_id: str, level: str, **overrides) -> dict:
    row = {"center_id": center_id, "name": f"{center_id}中心", "level": level, "district": "海曙区",
           "street": "月湖街道" if level != "district" else None,
           "community": "青石社区" if level == "community" else None, "floor_area_m2": 300.0}
    row.update(overrides)
    return row


def centers(rows: list[dict], points=None) -> gpd.GeoDataFrame:
    if points is None:
        points = [Point(X0 + 0.005 + STEP * i, Y0 + 0.005) for i in range(len(rows))]
    return gpd.GeoDataFrame(rows, geometry=list(points), crs="EPSG:4326")


def city_grids(districts: tuple[str, ...] = ("海曙区", "江北区", "鄞州区", "北仑区"), streets: int = 2,
               per_street: int = 50) -> gpd.GeoDataFrame:
    """A city of ``districts`` × ``streets`` × ``per_street`` small squares, keys ``{d}-{s}-{n}``, a row a district."""
    rows, geometries = [], []
    width = streets * per_street
    for d, district in enumerate(districts):
        for s in range(streets):
            for n in range(per_street):
                rows.append(grid_row(f"d{d}-s{s}-{n:03d}", district=district, street=f"{district}{s}号街道",
                                     community=f"{district}{s}号社区"))
                x, y = X0 + STEP * (s * per_street + n) / 10, Y0 + STEP * d / 10
                geometries.append(box(x, y, x + STEP / 10, y + STEP / 10))
    assert len(rows) == len(districts) * width
    return grids(rows, geometries)
