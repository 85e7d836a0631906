"""OGC API – Tiles: vector tiles of every collection (``geodata.tiles``), their tilesets and the
WebMercatorQuad tile matrix set, as QGIS and GDAL's OGC API driver walk them."""

from __future__ import annotations

import contextlib

from flask import Blueprint, Response, jsonify, request, url_for

from geodata import tiles
from geodata.errors import BadRequest, NotFound
from geodata.i18n import says

from . import negotiation, privacy, services

blueprint = Blueprint("tiles", __name__)

REL_TILESETS = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
CONFORMANCE = [f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}"
               for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt")]
TEMPLATE = "{tileMatrix}/{tileRow}/{tileCol}"


def _json(doc: dict) -> Response:
    _no_parameters()
    return jsonify(doc)


def _no_parameters(*allowed: str) -> None:
    unknown = sorted(set(request.args) - {"f", *allowed})
    if unknown:
        raise BadRequest(says("error.unknown_parameter", name=unknown[0], allowed=", ".join(["f", *allowed])))
    if request.args.get("f", "json") not in ("json", "mvt"):
        raise BadRequest(f"'f' must be json here, not {request.args['f']!r}")


def _link(href: str, rel: str, type_: str, title: str | None = None, templated: bool = False) -> dict:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    if templated:
        link["templated"] = True
    return link


def tiles_link(collection_id: str) -> dict:
    """The collection document's link to its vector tilesets."""
    return _link(url_for("tiles.tilesets", collection_id=collection_id, _external=True), REL_TILESETS,
                 "application/json", "vector tiles")


def _scheme_link() -> dict:
    return _link(url_for("tiles.matrix_set", tms=tiles.TMS, _external=True), REL_SCHEME, "application/json",
                 "the tile matrix set")


def _tile_url(collection_id: str) -> str:
    base = url_for("tiles.tileset", collection_id=collection_id, tms=tiles.TMS, _external=True)
    return f"{base}/{TEMPLATE}"


def _check_tms(tms: str) -> None:
    if tms != tiles.TMS:
        raise NotFound(f"no tile matrix set '{tms}'; there is {tiles.TMS}")


@blueprint.get("/api/tileMatrixSets")
def matrix_sets():
    return _json({"tileMatrixSets": [{
        "id": tiles.TMS, "title": "Google Maps Compatible for the World", "uri": tiles.TMS_URI,
        "links": [_link(url_for("tiles.matrix_set", tms=tiles.TMS, _external=True), "self", "application/json")],
    }]})


@blueprint.get("/api/tileMatrixSets/<tms>")
def matrix_set(tms: str):
    _check_tms(tms)
    return _json({**tiles.tile_matrix_set(), "links": [
        _link(url_for("tiles.matrix_set", tms=tms, _external=True), "self", "application/json")]})


def _summary(collection_id: str) -> dict:
    return {
        "title": f"{collection_id} as vector tiles", "dataType": "vector", "crs": tiles.CRS,
        "tileMatrixSetURI": tiles.TMS_URI,
        "links": [_link(url_for("tiles.tileset", collection_id=collection_id, tms=tiles.TMS, _external=True),
                        "self", "application/json", "the tileset"),
                  _scheme_link(),
                  _link(_tile_url(collection_id), "item", tiles.MVT, "a tile", templated=True)],
    }


@blueprint.get("/api/collections/<collection_id>/tiles")
def tilesets(collection_id: str):
    services().catalog.layer(collection_id)  # 404 for an unknown collection
    return _json({"links": [_link(url_for("tiles.tilesets", collection_id=collection_id, _external=True), "self",
                                  "application/json")],
                  "tilesets": [_summary(collection_id)]})


@blueprint.get("/api/collections/<collection_id>/tiles/<tms>")
def tileset(collection_id: str, tms: str):
    _check_tms(tms)
    found = services().catalog.get(collection_id, hidden=privacy.hidden_fields())
    shown = tiles.shown_fields(collection_id, found.features.columns)
    layer = {"id": collection_id, "dataType": "vector", "geometryType": _geometry_type(found.layer.geometry_types),
             "minTileMatrix": str(tiles.first_zoom(collection_id)), "maxTileMatrix": str(tiles.MAX_ZOOM),
             "propertiesSchema": {"type": "object", "properties": {f: {} for f in shown}}}
    summary = _summary(collection_id)
    return _json({**summary, "tileMatrixSetLimits": tiles.matrix_limits(collection_id, found.features.bounds),
                  "layers": [layer],
                  "links": [*summary["links"],
                            _link(url_for("api.collection", collection_id=collection_id, _external=True),
                                  "collection", "application/json", "the collection")]})


def _geometry_type(types: tuple[str, ...]) -> str:
    """OGC API – Tiles' name for a layer's geometry: points, lines or polygons."""
    kinds = {"Point": "points", "MultiPoint": "points", "LineString": "lines", "MultiLineString": "lines",
             "Polygon": "polygons", "MultiPolygon": "polygons"}
    found = {kinds.get(t, "geometry") for t in types}
    return found.pop() if len(found) == 1 else "geometry"


@blueprint.get("/api/collections/<collection_id>/tiles/<tms>/<int:z>/<int:y>/<int:x>")
def tile(collection_id: str, tms: str, z: int, y: int, x: int):
    _check_tms(tms)
    _no_parameters()
    tiles.check_tile(z, x, y)
    found = services().catalog.get(collection_id, hidden=privacy.hidden_fields())
    etag = negotiation.etag_of("tile", found.tag, z, x, y)
    if unchanged := negotiation.not_modified(etag):
        return unchanged

    def source() -> tiles.TileSource:  # once a collection version, as its readers may see it
        return tiles.TileSource.of(collection_id, found.features.gdf, list(found.features.columns))

    def cut() -> bytes:
        if z < tiles.first_zoom(collection_id):
            return b""
        # a stored layer: the database may cut it where the features are (an overview is dissolved here)
        if found.version is not None and z >= tiles.MIN_ZOOM.get(collection_id, 0):
            with contextlib.suppress(NotImplementedError):
                fields = tiles.shown_fields(collection_id, found.features.columns)
                return services().store.tile(collection_id, found.version.version, z, x, y, fields) or b""
        return services().tile_sources.get(found.tag, source).tile(z, x, y) or b""

    data = services().pages.get(("tile", etag), cut)
    response = Response(data, status=200 if data else 204, mimetype=tiles.MVT)
    response.set_etag(etag)
    response.cache_control.no_cache = True  # revalidated: a 304 while the version stands
    return response
