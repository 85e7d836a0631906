"""HTML pages, and the light map data they fetch."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from geodata.errors import NotFound
from maps import display
from maps.city import Basemap, city_map

from . import services
from .assets import map_assets

blueprint = Blueprint("pages", __name__)

# What each map layer fetches: the fields it shows and how much to simplify (degrees).
MAP_LAYERS = {
    "grids": (["grid_id", "name", "grid_type", "district", "street", "community"], 0.0001),
    "centers": (["center_id", "name", "level", "district", "street", "community"], 0.0),
}


@blueprint.get("/")
def city():
    catalog = services().catalog
    config = current_app.config
    m = city_map(
        catalog.get("districts").features.gdf,
        grids_url="/map/data/grids.geojson",
        centers_url="/map/data/centers.geojson",
        basemap=Basemap.from_setting(config["BASEMAP"], config["TIANDITU_KEY"]),
        assets=map_assets(),
    )
    return Response(m.get_root().render(), mimetype="text/html")


@blueprint.get("/map/data/<layer>.geojson")
def map_data(layer: str):
    if layer not in MAP_LAYERS:
        raise NotFound(f"no map layer '{layer}'")
    found = services().catalog.get(layer)
    fields, tolerance = MAP_LAYERS[layer]
    version = found.version.version if found.version else 0
    body = services().display.get((layer, version),
                                  lambda: display.geojson_bytes(found.features.gdf, fields, tolerance))
    return Response(body, mimetype="application/geo+json")
