"""HTML pages: the coverage map of the city or of one unit, and the light map data they fetch."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import shapely

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from geodata.coverage import merge_tiles
from geodata import kept
from geodata.errors import NotFound
from geodata.i18n import says
from geodata import tiles
from geodata.query import parse_bbox
from geodata.unitkeys import CITY, LEVELS, UNIT_KEYS, has_cities
from geodata.units import unit_names
from maps import display
from maps.coverage_map import MAP_DATA, View, coverage_map

from . import negotiation, privacy, services
from .assets import asset_url, map_assets
from .auth import current_user
from .i18n import current_language

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
def city():
    catalog = services().catalog
    bounds = catalog.get("districts").features.bounds or catalog.get("grids").features.bounds
    return _map_page(View(bounds=bounds), title=None)


@blueprint.get("/map")
def unit_map():
    """``/map?city=…&district=…&street=…&community=…``: the same map, zoomed to the unit and outlined.

    A unit is named by its name and every level above it; a name given alone takes every unit of that
    name (e.g. both cities' 市辖区), as a filter does."""
    unit = {k: request.args[k] for k in UNIT_KEYS if request.args.get(k)}
    if not unit:
        return city()
    grids = services().catalog.get("grids").features.gdf
    chosen = grids[(grids[list(unit)] == pd.Series(unit)).all(axis=1)]
    if chosen.empty:
        raise NotFound(says("error.no_such_unit", unit=" / ".join(unit.values())))
    name = list(unit.values())[-1]
    title = " · ".join(unit_names(chosen, unit))  # e.g. 海曙区 · 宁波市
    outline = display.simplify([merge_tiles(chosen.geometry.values)], 0.0001)[0]
    feature = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": name}, "geometry": json.loads(shapely.to_geojson(outline))}]}
    return _map_page(View(bounds=[round(float(b), 6) for b in chosen.total_bounds], outline=feature, unit=unit,
                          title=title), title=title)


def _map_page(view: View, title: str | None) -> Response:
    params = services().catalog.params
    m = coverage_map(
        view=view,
        urls={**{name: url_for("pages.map_data", layer=name) for name in MAP_DATA},
              "data": url_for("api.item", collection_id="coverage", feature_id="GRID").replace("GRID", "{grid_id}"),
              # a grid's or a centre's own page, linked from its popup ("{…}" URL-encoded by the map)
              "grid_page": url_for("feature_pages.grid", grid_id="GRID").replace("GRID", "{grid_id}"),
              "center_page": url_for("feature_pages.center", center_id="CENTER").replace("CENTER", "{center_id}"),
              # city last: the map page leaves a null one out (with its "&")
              "map": url_for("pages.unit_map") + "?district={district}&street={street}&community={community}"
                                                  "&city={city}",
              "recommendations": url_for("planning.recommendations"), "whatif": url_for("planning.whatif"),
              "export_script": asset_url("domtoimage", "dom-to-image-more.min.js"),
              "search": url_for("api.search"),
              # "{collection}" filled in by the map, for each layer drawn from tiles; "{z}/{y}/{x}" by Leaflet
              "tiles": url_for("tiles.tileset", collection_id="COLLECTION", tms=tiles.TMS).replace(
                  "COLLECTION", "{collection}") + "/{z}/{y}/{x}",
              "labels": url_for("pages.map_labels", level="LEVEL").replace("LEVEL", "{level}"),
              "item": url_for("api.item", collection_id="COLLECTION", feature_id="ID").replace(
                  "COLLECTION", "{collection}").replace("ID", "{id}"),
              "items": url_for("api.items", collection_id="COLLECTION").replace("COLLECTION", "{collection}")},
        radii={level: params.radius(level) for level in LEVELS},
        life_circles=params.life_circles_m if walking_map() else None,
        basemap=services().basemap,
        assets=map_assets(editing=_editor()),
        lang=current_language(),
        editing=_edit_urls() if _editor() else None,
        sign_in=None if current_user() or current_app.config["PUBLIC_WHATIF"]
        else url_for("auth.login", next=request.full_path.rstrip("?")),
    )
    return Response(render_map("map.html", m, title=title), mimetype="text/html")


def _editor() -> bool:
    user = current_user()
    return user is not None and user.can("editor")


def _edit_urls() -> dict[str, str]:
    """Where the map's edit control reads features and writes change sets ("{collection}", "{id}", "{layer}")."""
    def template(endpoint: str, **values) -> str:
        return url_for(endpoint, collection_id="COLLECTION", **values).replace("COLLECTION", "{collection}")

    return {"item": template("api.item", feature_id="ID").replace("ID", "{id}"), "items": template("api.items"),
            "changes": template("transactions.changes"), "split": template("transactions.split"),
            "union": template("transactions.union"),
            "history": url_for("editing.history", layer="LAYER").replace("LAYER", "{layer}")}


def walking_map() -> bool:
    """Whether the map draws walking catchments: the settings walk, and there are roads to walk along."""
    return services().catalog.params.catchment == "network" and services().store.current("roads") is not None


def render_map(template: str, m, **context) -> str:
    """A page template with a folium map's head, body and script parts placed in its blocks."""
    figure = m.get_root()
    figure.render()  # lays out the parts
    return render_template(template, map_head=figure.header.render(), map_body=figure.html.render(),
                           map_script=figure.script.render(), **context)


@blueprint.get("/favicon.ico")
def favicon():
    return Response(status=204)  # no icon yet; answering keeps browsers' consoles free of 404s


@blueprint.get("/map/data/<layer>.geojson")
def map_data(layer: str):
    spec = MAP_DATA.get(layer)
    if spec is None:
        raise NotFound(says("error.no_map_layer", layer=layer))
    # only what the layer draws decides its audience: shared when none of its fields are restricted
    found = services().catalog.get(spec.collection, hidden=privacy.hidden_fields() & set(spec.fields))

    def build() -> bytes:
        gdf = found.features.gdf
        if spec.kinds:
            gdf = gdf[gdf["kind"].isin(spec.kinds)]
        fields = [f for f in spec.fields if f != CITY or has_cities(gdf)]  # no null city on every feature
        return gzip.compress(display.geojson_bytes(gdf, fields, spec.tolerance), compresslevel=6)

    def shared() -> tuple[bytes, bytes]:  # drawn by one worker of all that share the store
        gzipped = services().store.shared(f"map/{kept.code_digest()}/{layer}/{found.tag}", build)
        return gzip.decompress(gzipped), gzipped

    return _send(services().display.get((layer, found.tag), shared), "application/geo+json",
                 etag=f"{layer}-{found.tag}")


LABEL_LIMIT = 400  # names a view asks for at most: more would not fit on a screen anyway


@blueprint.get("/map/labels/<level>.json")
def map_labels(level: str):
    """``?bbox=minLon,minLat,maxLon,maxLat``: the names of the units (``level``: district, street or
    community) to label in a view, each at a point inside its unit, largest first: ``[[lon, lat, name]]``."""
    if level not in tiles.LABELS:
        raise NotFound(says("error.no_labels", level=level, levels=", ".join(tiles.LABELS)))
    bbox = parse_bbox(request.args["bbox"]) if request.args.get("bbox") else [-180, -90, 180, 90]
    collection, field = tiles.LABELS[level]
    found = services().catalog.get(collection, hidden=privacy.hidden_fields())
    frame = services().display.get(("labels", level, found.tag),
                                   lambda: tiles.label_points(found.features.gdf, field))
    response = jsonify(tiles.labels_within(frame, bbox[:4], LABEL_LIMIT))
    response.set_etag(negotiation.etag_of("labels", level, found.tag, request.args.get("bbox")))
    response.cache_control.no_cache = True
    return response.make_conditional(request)


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
