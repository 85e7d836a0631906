"""HTML pages, and the light map data they fetch."""

from __future__ import annotations

import gzip

from flask import Blueprint, Response, request, url_for

from geodata.errors import NotFound
from maps import display
from maps.city import city_map

from . import services
from .assets import map_assets

blueprint = Blueprint("pages", __name__)

# What each map layer fetches: the fields it shows and how much to simplify (degrees).
MAP_LAYERS = {
    "districts": (["adcode", "name", "name_en"], 0.0005),
    "grids": (["grid_id", "name", "grid_type", "district", "street", "community"], 0.0001),
    "centers": (["center_id", "name", "level", "district", "street", "community"], 0.0),
}


@blueprint.get("/")
def city():
    catalog = services().catalog
    bounds = catalog.get("districts").features.bounds or catalog.get("grids").features.bounds
    m = city_map(
        bounds=bounds,
        urls={layer: url_for("pages.map_data", layer=layer) for layer in MAP_LAYERS},
        basemap=services().basemap,
        assets=map_assets(),
    )
    return Response(m.get_root().render(), mimetype="text/html")


@blueprint.get("/favicon.ico")
def favicon():
    return Response(status=204)  # no icon yet; answering keeps browsers' consoles free of 404s


@blueprint.get("/map/data/<layer>.geojson")
def map_data(layer: str):
    if layer not in MAP_LAYERS:
        raise NotFound(f"no map layer '{layer}'")
    found = services().catalog.get(layer)
    fields, tolerance = MAP_LAYERS[layer]
    version = found.version.sha256[:16] if found.version else "empty"
    body = services().display.get((layer, version), lambda: _compressible(
        display.geojson_bytes(found.features.gdf, fields, tolerance)))
    return _send(body, "application/geo+json", etag=f"{layer}-{version}")


def _compressible(data: bytes) -> tuple[bytes, bytes]:
    return data, gzip.compress(data, compresslevel=6)


def _send(body: tuple[bytes, bytes], mimetype: str, etag: str) -> Response:
    """Send pre-gzipped bytes to clients that take gzip; revalidate by ETag (the data's version)."""
    plain, gzipped = body
    use_gzip = "gzip" in request.accept_encodings
    response = Response(gzipped if use_gzip else plain, mimetype=mimetype)
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.set_etag(etag + ("-gz" if use_gzip else ""))
    response.cache_control.no_cache = True  # cheap to revalidate: a 304 while the version stands
    return response.make_conditional(request)
