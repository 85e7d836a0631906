"""Every coordinate-reference-system decision in one place.

Layers are stored in WGS84 lon/lat (RFC 7946).  Distances and areas are
never measured in degrees: analysis projects to a metric CRS chosen for the
data — the UTM zone of the data's extent, as OSMnx's ``projection`` does.
"""

from __future__ import annotations

import geopandas as gpd
from pyproj import CRS

STORAGE_CRS = "EPSG:4326"


def metric_crs(gdf: gpd.GeoDataFrame) -> CRS:
    """The UTM zone (WGS84 datum) that holds the centre of ``gdf``'s extent.

    Examples
    --------
    >>> from shapely import Point
    >>> metric_crs(gpd.GeoDataFrame(geometry=[Point(121.55, 29.87)], crs=4326)).to_epsg()  # Ningbo
    32651
    """
    if gdf.empty:
        raise ValueError("cannot choose a metric CRS for an empty layer")
    minx, miny, maxx, maxy = gdf.to_crs(STORAGE_CRS).total_bounds
    # the zone arithmetic directly: pyproj's database query for the same answer takes ~70 ms
    zone = int((((minx + maxx) / 2 + 180) // 6) % 60) + 1
    return CRS.from_epsg((32600 if (miny + maxy) / 2 >= 0 else 32700) + zone)
