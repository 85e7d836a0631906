"""OGC API – Tiles: vector tiles of every collection (``geodata.tiles``), their tilesets and the
WebMercatorQuad tile matrix set, as QGIS and GDAL's OGC API driver walk them."""

from __future__ import annotations

import contextlib
import hashlib

import numpy as np

from flask import Blueprint, Response, jsonify, request, url_for

from geodata import incremental, tiles
from geodata.errors import BadRequest, NotFound
from geodata.i18n import says, text

from . import negotiation, privacy, services
from .i18n import current_language

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
        raise BadRequest(says("tiles.f_json", value=repr(request.args["f"])))


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
                 "application/json", text("api.link.tiles", current_language()))


def _scheme_link() -> dict:
    return _link(url_for("tiles.matrix_set", tms=tiles.TMS, _external=True), REL_SCHEME, "application/json",
                 "the tile matrix set")


def _tile_url(collection_id: str) -> str:
    base = url_for("tiles.tileset", collection_id=collection_id, tms=tiles.TMS, _external=True)
    return f"{base}/{TEMPLATE}"


def _check_tms(tms: str) -> None:
    if tms != tiles.TMS:
        raise NotFound(says("tiles.no_tms", tms=tms, there=tiles.TMS))


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
    sources = services().tile_sources
    fields = tiles.shown_fields(collection_id, found.features.columns)

    def source() -> tiles.TileSource:  # once a collection version, as its readers may see it
        return sources.get(found.tag, lambda: tiles.TileSource.of(collection_id, found.features.gdf,
                                                                  list(found.features.columns)))

    def cut() -> bytes:
        if z < tiles.first_zoom(collection_id):
            return b""
        # a stored layer: the database may cut it where the features are (an overview is dissolved here)
        if found.version is not None and z >= tiles.MIN_ZOOM.get(collection_id, 0):
            with contextlib.suppress(NotImplementedError):
                return services().store.tile(collection_id, found.version.version, z, x, y, fields) or b""
        return source().tile(z, x, y) or b""

    def since(previous_tag: str, previous_version: int | None):
        """Where this version's tiles may differ from the previous version's (None: anywhere); the tile
        source made from the previous one's when that is at hand (only what changed is projected again)."""
        previous = sources.peek(previous_tag) if found.tag not in sources else None
        if found.version is not None:  # a stored layer: the store's change sets name what changed
            changed = _stored_changes(collection_id, previous_version, found.version.version)
            if changed is None:
                return None
            boxes, rows, gone = changed
            made = previous.replaced(rows, gone) if previous is not None else None
        else:  # a derived one: told from the previous version's features
            made = previous.updated(found.features.gdf) if previous is not None else None
            if made is None:
                return None
            boxes = made.touched
        if made is not None:
            sources.put(found.tag, made)
        return boxes

    state = found.version.version if found.version is not None else None
    data = services().tile_versions.tile((collection_id, found.hidden), found.tag, state, z, x, y, cut, since)
    # strong, and named by the bytes: a tile an edit did not change keeps its ETag across versions
    etag = negotiation.etag_of("tile", collection_id, sorted(found.hidden), z, x, y,
                               hashlib.sha256(data).hexdigest())
    if unchanged := negotiation.not_modified(etag):
        return unchanged
    response = Response(data, status=200 if data else 204, mimetype=tiles.MVT)
    response.set_etag(etag)
    response.cache_control.no_cache = True  # revalidated: a 304 while the tile stands
    return response


def _stored_changes(collection_id: str, old: int | None, new: int):
    """What changed in a stored layer from version ``old`` to ``new``, from the store's change sets: the old
    and new boxes (Web Mercator) of the features added, changed or removed, the rows of those added or
    changed, and the keys of those changed or removed.  None when it keeps none, the versions run back, or
    so much changed that every tile may have (a whole new upload: read again whole, as quick)."""
    store = services().store
    if old is None or new <= old or not hasattr(store, "changes"):
        return None
    try:
        changes = store.changes(collection_id, old, new)
    except (BadRequest, NotFound):  # a version gone meanwhile
        return None
    count = len(changes.added) + len(changes.changed) + len(changes.removed)
    if count > incremental.MAX_SHARE * store.version(collection_id, new).features + 1:
        return None
    before = store.read_keys(collection_id, old, changes.changed | changes.removed)
    after = store.read_keys(collection_id, new, changes.added | changes.changed)
    bounds = np.concatenate([before.geometry.bounds.to_numpy(), after.geometry.bounds.to_numpy()]).reshape(-1, 4)
    return (tiles.mercator_boxes(bounds[~np.isnan(bounds).any(axis=1)]), after,
            changes.changed | changes.removed)
