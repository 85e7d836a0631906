"""JSON and GeoJSON routes: OGC API – Features, downloads, health.

Each route parses the request, asks ``geodata`` for the answer and wraps it;
no analysis or storage logic lives here.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from geodata import geojson, summaries
from geodata.coverage import LEVELS, PARAM_NAMES
from geodata.errors import BadRequest, NotFound
from geodata.query import Query
from geodata.schema import DERIVED

from . import services

blueprint = Blueprint("api", __name__)

GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]


def _params() -> dict[str, str]:
    return request.args.to_dict(flat=True)


def _filters() -> dict[str, str]:
    """The request's parameters less those that tune the analysis (radii, thresholds)."""
    return {k: v for k, v in _params().items() if k not in PARAM_NAMES}


def _collection(collection_id: str):
    """The collection the request asks for: its version, and for derived ones the analysis parameters."""
    catalog = services().catalog
    return catalog.get(collection_id, _version_param(), catalog.params.with_request(_params()))


def _version_param() -> int | None:
    raw = request.args.get("version")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest(f"'version' must be a version number (1, 2, ...), not {raw!r}")
    return int(raw)


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


@blueprint.get("/healthz")
def healthz():
    store = services().store
    layers = {}
    for name in store.layer_names:
        v = store.current(name)
        layers[name] = {"version": v.version, "features": v.features} if v else None
    return jsonify({"status": "ok", "layers": layers})


@blueprint.get("/api")
@blueprint.get("/api/")
def landing():
    return jsonify({
        "title": "gridmap",
        "description": "Governance grids and party-and-public service centres, with service coverage.",
        "links": [
            _link(url_for("api.landing", _external=True), "self", "application/json"),
            _link(url_for("api.conformance", _external=True), "conformance", "application/json"),
            _link(url_for("api.collections", _external=True), "data", "application/json"),
        ],
    })


@blueprint.get("/api/conformance")
def conformance():
    return jsonify({"conformsTo": CONFORMANCE})


@blueprint.get("/api/collections")
def collections():
    catalog = services().catalog
    return jsonify({
        "collections": [_collection_document(cid) for cid in catalog.ids],
        "links": [_link(url_for("api.collections", _external=True), "self", "application/json")],
    })


@blueprint.get("/api/collections/<collection_id>")
def collection(collection_id: str):
    return jsonify(_collection_document(collection_id))


def _collection_document(collection_id: str) -> dict:
    found = services().catalog.get(collection_id)
    layer = found.layer
    doc = {
        "id": layer.name,
        "title": layer.title,
        "description": layer.description,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "links": [
            _link(url_for("api.collection", collection_id=layer.name, _external=True), "self", "application/json"),
            _link(url_for("api.items", collection_id=layer.name, _external=True), "items", GEOJSON, "features"),
            _link(url_for("api.download", collection_id=layer.name, ext="geojson", _external=True),
                  "enclosure", GEOJSON, "the whole layer"),
        ],
    }
    bounds = found.features.bounds
    if bounds is not None:
        doc["extent"] = {"spatial": {"bbox": [bounds], "crs": CRS84}}
    if found.version is not None:
        doc["version"] = found.version.version
        doc["updated"] = found.version.time
        doc["numberOfFeatures"] = found.version.features
    return doc


@blueprint.get("/api/collections/<collection_id>/items")
def items(collection_id: str):
    found = _collection(collection_id)
    params = _params()
    query = Query.from_params(_filters(), found.features.columns, current_app.config["MAX_ITEMS"])
    page = found.features.page(query)

    def url(offset: int) -> str:
        return url_for("api.items", collection_id=collection_id, _external=True,
                       **{**params, "offset": offset, "limit": query.limit})

    links = [_link(url(query.offset), "self", GEOJSON),
             _link(url_for("api.collection", collection_id=collection_id, _external=True),
                   "collection", "application/json")]
    if page.has_next:
        links.append(_link(url(query.offset + query.limit), "next", GEOJSON))
    if query.offset > 0:
        links.append(_link(url(max(0, query.offset - query.limit)), "prev", GEOJSON))
    body = geojson.feature_collection(
        page.features,
        numberMatched=page.number_matched,
        numberReturned=page.number_returned,
        timeStamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        links=links,
    )
    return Response(body, mimetype=GEOJSON)


@blueprint.get("/api/collections/<collection_id>/items/<feature_id>")
def item(collection_id: str, feature_id: str):
    found = _collection(collection_id)
    return Response(found.features.feature(feature_id).encode("utf-8"), mimetype=GEOJSON)


@blueprint.get("/api/download/<collection_id>.<ext>")
def download(collection_id: str, ext: str):
    if ext != "geojson":
        raise NotFound(f"no download format '{ext}'; available: geojson")
    found = _collection(collection_id)
    derived = collection_id in DERIVED
    if found.version is None and not derived:
        raise NotFound(f"collection '{collection_id}' has no data yet")
    query = Query.from_params(_filters(), found.features.columns)
    if query.selects_all and not derived:
        body = services().store.read_geojson(collection_id, found.version.version)
    else:
        body = geojson.feature_collection(found.features.all(query))
    filename = f"{collection_id}.{ext}" if derived else f"{collection_id}-v{found.version.version}.{ext}"
    return Response(body, mimetype=GEOJSON, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


SUMMARY_LEVELS = ("city", *LEVELS)


@blueprint.get("/api/summary")
def summary():
    level = request.args.get("level", "district")
    if level not in SUMMARY_LEVELS:
        raise BadRequest(f"'level' must be one of {', '.join(SUMMARY_LEVELS)}, not {level!r}")
    fmt = request.args.get("f", "json")
    if fmt not in ("json", "csv"):
        raise BadRequest(f"'f' must be json or csv, not {fmt!r}")
    catalog = services().catalog
    unknown = set(_filters()) - {"level", "f", "district", "street", "community"}
    if unknown:
        raise BadRequest(f"unknown parameter '{sorted(unknown)[0]}'")
    tag, analysis = catalog.analysis_entry(catalog.params.with_request(_params()))
    unit = tuple((k, request.args[k]) for k in ("district", "street", "community") if k in request.args)
    body = services().responses.get(("summary", tag, level, fmt, unit),
                                    lambda: summaries.render(analysis, level, dict(unit), fmt))
    if fmt == "csv":
        return Response(body, mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="summary-{level}.csv"'})
    return Response(body, mimetype="application/json")
