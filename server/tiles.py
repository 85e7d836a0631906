"""OGC API – Tiles: vector tiles of every collection (``geodata.tiles``), their tilesets and the
WebMercatorQuad tile matrix set, as QGIS and GDAL's OGC API driver walk them."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import threading
from typing import NamedTuple

import numpy as np

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for

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
    # hidden from this reader, of what tiles carry: readers who differ only in fields no tile holds share tiles
    hidden = privacy.hidden_fields() & frozenset(tiles.TILE_FIELDS.get(collection_id, ()))
    found = services().catalog.get(collection_id, hidden=hidden)
    sources = services().tile_sources
    fields = tiles.shown_fields(collection_id, found.features.columns)

    def source() -> tiles.TileSource:  # once a collection version, as its readers may see it
        return sources.get(found.tag, lambda: tiles.TileSource.of(collection_id, found.features.gdf,
                                                                  list(found.features.columns)))

    def cut() -> Cut:
        return Cut.of(cut_bytes(), collection_id, found.hidden, z, x, y)

    def cut_bytes() -> bytes:
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
    made = services().tile_versions.tile((collection_id, found.hidden), found.tag, state, z, x, y, cut, since,
                                         tiles.local_from(collection_id))
    return made.response()


class Cut(NamedTuple):
    """A tile as it is sent, made once when it is cut (a warm request only picks its bytes, never gzips them):
    plain, gzipped (None: too small to gain), and its strong ETag, named by the bytes (a tile an edit did not
    change keeps its ETag across versions).  A tuple: the page cache counts its bytes."""

    plain: bytes
    gzipped: bytes | None
    etag: str

    @classmethod
    def of(cls, data: bytes, collection_id: str, hidden, z: int, x: int, y: int) -> "Cut":
        etag = negotiation.etag_of("tile", collection_id, sorted(hidden), z, x, y, hashlib.sha256(data).hexdigest())
        # level 6, once: smaller than the level 1 text responses get on the fly; mtime 0: the same bytes each time
        gzipped = gzip.compress(data, compresslevel=6, mtime=0) if len(data) >= GZIP_FROM else None
        return cls(data, gzipped, etag)

    def response(self) -> Response:
        if unchanged := negotiation.not_modified(self.etag):
            return unchanged
        zipped = self.gzipped is not None and "gzip" in request.accept_encodings
        response = Response(self.gzipped if zipped else self.plain, status=200 if self.plain else 204,
                            mimetype=tiles.MVT)
        if zipped:  # Flask-Compress leaves an encoded response alone; its ETag as Flask-Compress would mark it
            response.headers["Content-Encoding"] = "gzip"
        response.set_etag(f"{self.etag}:gzip" if zipped else self.etag)
        response.vary.add("Accept-Encoding")
        response.cache_control.no_cache = True  # revalidated: a 304 while the tile stands
        return response


GZIP_FROM = 500  # bytes: Flask-Compress's COMPRESS_MIN_SIZE


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


# --- seeding: the low zooms cut before anyone asks ------------------------------------------------------

class Seeder:
    """Cuts the tiles of zooms up to ``max_zoom`` (the few over a whole city or province) of the map's layers
    before any visitor asks, as tile servers seed (MapProxy, TileCache): at the warm-up and again whenever a
    layer's version changes (an edit in this process wakes it; one made elsewhere is seen within POLL_S).
    The tiles are asked for through the app as an anonymous reader asks, so they land in the same cache and
    are carried across versions (or cut anew) exactly as any tile is (``geodata.tiles.TileVersions``)."""

    POLL_S = 5.0

    def __init__(self, app: Flask, collections, max_zoom: int):
        self.app, self.collections, self.max_zoom = app, tuple(collections), max_zoom
        self._wake = threading.Event()
        self._seeded = None  # the versions (tags) of the collections last seeded

    def seed(self) -> int:
        """Cut what a change left to cut (nothing when no version changed); how many tiles were asked for."""
        if self.max_zoom < 0:
            return 0
        catalog, client = self.app.extensions["gridmap"].catalog, self.app.test_client()
        with self.app.app_context():
            found = [catalog.get(c) for c in self.collections]  # a derived one: its analysis, computed here
        tags = tuple(f.tag for f in found)
        if tags == self._seeded:
            return 0
        asked = 0
        for collection, f in zip(self.collections, found):
            bounds = f.features.bounds
            if not bounds:
                continue
            for z in range(tiles.first_zoom(collection), self.max_zoom + 1):
                (x0, y0), (x1, y1) = tiles.tile_of(bounds[0], bounds[3], z), tiles.tile_of(bounds[2], bounds[1], z)
                for x in range(x0, x1 + 1):
                    for y in range(y0, y1 + 1):
                        client.get(f"/api/collections/{collection}/tiles/{tiles.TMS}/{z}/{y}/{x}")
                        asked += 1
        self._seeded = tags
        return asked

    def wake(self) -> None:
        self._wake.set()

    def follow(self) -> None:
        """Seed again after each change, for as long as the process runs (a thread of its own)."""
        def run():
            while True:
                self._wake.wait(self.POLL_S)
                self._wake.clear()
                try:
                    self.seed()
                except Exception:  # a database away a moment: the next round tries again
                    self.app.logger.exception("seeding tiles")

        threading.Thread(target=run, name="gridmap-tile-seeder", daemon=True).start()


@blueprint.after_app_request
def _wake_seeder(response: Response) -> Response:
    """A write that went through may have made new versions: the seeder looks at once."""
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and response.status_code < 400:
        seeder = current_app.extensions.get("gridmap_seeder")
        if seeder is not None:
            seeder.wake()
    return response
