"""JSON and GeoJSON routes: OGC API – Features (each also as HTML), downloads, health.

Each route parses the request, asks ``geodata`` for the answer and wraps it;
no analysis or storage logic lives here.  ``negotiation`` picks JSON or HTML
and adds ETags, 304s, cache lifetimes and CORS; ``openapi`` describes it all.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone

import folium
import shapely
from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from geodata import cql, geojson, history, summaries
from geodata import downloads, transactions
from geodata.coverage import PARAM_NAMES, SUMMARY_LEVELS
from geodata.crs import CRS84_URI, OUTPUT_CRS, output_crs
from geodata.errors import BadRequest, NotFound, ServiceUnavailable
from geodata.i18n import known, says, text
from geodata.params import version_number, whole_number
from geodata.query import Query
from geodata.schema import DERIVED
from geodata.unitkeys import UNIT_KEYS
from maps.coverage_map import NINGBO_CENTRE
from maps.layers import Field, GeoJsonLayer, ReadySignal

from . import negotiation, openapi, privacy, services, tiles, whatif
from .assets import map_assets
from .editing import shown_time
from .i18n import current_language
from .pages import render_map

blueprint = Blueprint("api", __name__)
blueprint.record_once(lambda state: negotiation.register(state.app))

GEOJSON = "application/geo+json"
HTML = "text/html"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    *tiles.CONFORMANCE,
    *cql.CONFORMANCE,  # Part 3 filters (CQL2) and queryables
    *transactions.CONFORMANCE,
]
NOT_FILTERS = PARAM_NAMES | {"lang"}  # analysis what-ifs, and the pages' language
ANY_ROUTE = ("f", "lang")  # parameters every OGC route takes


def _params() -> dict[str, str]:
    return request.args.to_dict(flat=True)


def _filters() -> dict[str, str]:
    """The request's parameters less those that tune the analysis (radii, thresholds) or the language."""
    return {k: v for k, v in _params().items() if k not in NOT_FILTERS}


def _only(*allowed: str) -> None:
    """OGC API: a parameter the route does not define is a 400, not silently ignored."""
    unknown = sorted(set(request.args) - {*ANY_ROUTE, *allowed})
    if unknown:
        raise BadRequest(says("error.unknown_parameter", name=unknown[0], allowed=", ".join((*ANY_ROUTE, *allowed))))


def _collection(collection_id: str):
    """The collection the request asks for: its version, for derived ones the analysis parameters,
    and without the fields this reader may not see."""
    return services().catalog.get(collection_id, _version_param(), _analysis_params(), privacy.hidden_fields(),
                                  current_language())  # the gaps' detail in it


def _analysis_params():
    """The analysis settings with the request's what-ifs (signed-in users only, radii bounded)."""
    return whatif.params()


def _version_param() -> int | None:
    raw = request.args.get("version")
    return None if raw is None else version_number(raw)


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


@blueprint.get("/healthz")
def healthz():
    """200 ``ok`` with each layer's current version; 503 ``unavailable`` (with Retry-After) while the store
    cannot answer, e.g. its database is down: a load balancer then sends no traffic here."""
    store = services().store
    layers = {}
    try:
        for name in store.layer_names:
            v = store.current(name)
            layers[name] = {"version": v.version, "features": v.features} if v else None
    except ServiceUnavailable as e:
        response = jsonify({"status": "unavailable", "message": e.message})
        response.status_code = 503
        response.headers["Retry-After"] = str(e.retry_after)
        return response
    # warm: this worker has built what the map's first view and the search ask for (server/__main__.py warm_up)
    warm = current_app.extensions.get("gridmap_warm")
    return jsonify({"status": "ok", "layers": layers, "warm": bool(warm and warm.is_set())})


@blueprint.get("/api")
@blueprint.get("/api/")
def landing():
    _only()
    fmt = negotiation.wanted()
    doc = {
        "title": "gridmap",
        "description": _said("api.landing_description"),
        "links": [
            *_self_links("api.landing", fmt),
            _link(url_for("api.openapi", _external=True), "service-desc", openapi.MEDIA_TYPE,
                  _said("api.link.service_desc")),
            _link(url_for("api.openapi", f="html", _external=True), "service-doc", HTML, _said("api.link.service_doc")),
            _link(url_for("api.conformance", _external=True), "conformance", "application/json",
                  _said("api.link.conformance")),
            _link(url_for("api.collections", _external=True), "data", "application/json", _said("api.link.data")),
        ],
    }
    return _answer(fmt, doc, "api_landing.html")


@blueprint.get("/api/conformance")
def conformance():
    _only()
    fmt = negotiation.wanted()
    response = _answer(fmt, {"conformsTo": CONFORMANCE, "links": _self_links("api.conformance", fmt)},
                       "api_conformance.html")
    response.cache_control.max_age = 60
    return response


@blueprint.get("/api/openapi", endpoint="openapi")
def openapi_document():
    """This API described as OpenAPI 3.0; ``f=html`` is the service-doc: the routes as a page."""
    _only()
    fmt = negotiation.wanted()
    doc = openapi.document(current_app, url_for("api.landing", _external=True).rstrip("/"), privacy.hidden_fields())
    if fmt == "html":
        response = _answer(fmt, doc, "api_docs.html", undocumented=openapi.undocumented(current_app))
    else:
        response = current_app.json.response(doc)
        response.headers["Content-Type"] = openapi.MEDIA_TYPE
        response.vary.add("Accept")
    response.cache_control.max_age = 60
    return response


@blueprint.get("/api/collections")
def collections():
    _only()
    fmt = negotiation.wanted()
    catalog = services().catalog
    found = [catalog.get(cid) for cid in catalog.ids]
    etag = negotiation.etag_of([c.tag for c in found], request.url, current_language())  # titles in it
    if fmt == "json" and (unchanged := negotiation.not_modified(etag)):
        return unchanged
    doc = {"collections": [_collection_document(c) for c in found], "links": _self_links("api.collections", fmt)}
    return _answer(fmt, doc, "api_collections.html", etag=etag)


@blueprint.get("/api/collections/<collection_id>")
def collection(collection_id: str):
    _only()
    fmt = negotiation.wanted()
    found = services().catalog.get(collection_id, hidden=privacy.hidden_fields())  # its page lists the fields
    etag = negotiation.etag_of(found.tag, request.url, current_language())  # its title and description in it
    if fmt == "json" and (unchanged := negotiation.not_modified(etag)):
        return unchanged
    doc = _collection_document(found, fmt)
    return _answer(fmt, doc, "api_collection.html", etag=etag, layer=found.layer, shown_time=shown_time)


def _collection_document(found, fmt: str = "json") -> dict:
    layer = found.layer
    cid = layer.name
    doc = {
        "id": cid,
        "title": layer.title_in(current_language()),
        "description": layer.description_in(current_language()),
        "itemType": "feature",
        "crs": list(OUTPUT_CRS),
        "storageCrs": CRS84_URI,
        "links": [
            *_self_links("api.collection", fmt, collection_id=cid),
            _link(url_for("api.items", collection_id=cid, _external=True), "items", GEOJSON, _said("api.link.items")),
            _link(url_for("api.items", collection_id=cid, f="html", _external=True), "items", HTML,
                  _said("api.link.items_html")),
            _link(url_for("api.queryables", collection_id=cid, _external=True), "queryables",
                  "application/schema+json", _said("api.link.queryables")),
            *(_link(url_for("api.download", collection_id=cid, ext=ext, _external=True), "enclosure", media_type,
                    text("api.link.download", current_language()).format(
                        format=_said(f"download.format.{ext}") if known(f"download.format.{ext}") else label))
              for ext, (media_type, label) in openapi.download_formats().items()),
            tiles.tiles_link(cid),
        ],
        "numberOfFeatures": found.features.count,
    }
    bounds = found.features.bounds
    if bounds is not None:
        doc["extent"] = {"spatial": {"bbox": [bounds], "crs": CRS84_URI}}
    if found.version is not None:
        doc["version"] = found.version.version
        doc["updated"] = found.version.time
    return doc


@blueprint.get("/api/collections/<collection_id>/queryables")
def queryables(collection_id: str):
    """The properties items can be filtered by (``?name=value``), as JSON Schema."""
    _only()
    fmt = negotiation.wanted()
    layer = services().catalog.layer(collection_id).without(privacy.hidden_fields())
    doc = openapi.queryables(layer, url_for("api.queryables", collection_id=collection_id, _external=True),
                             current_language())
    return _answer(fmt, doc, "api_queryables.html", mimetype="application/schema+json", layer=layer)


@blueprint.get("/api/collections/<collection_id>/items")
def items(collection_id: str):
    fmt = negotiation.wanted()
    crs = output_crs(request.args.get("crs"))  # pages (f=html) draw their map in CRS84 all the same
    found = _collection(collection_id)
    query = Query.from_params(_filters(), found.features.columns, current_app.config["MAX_ITEMS"], found.layer)
    etag = negotiation.etag_of(found.tag, request.url, query)
    if fmt == "json" and (unchanged := negotiation.not_modified(etag)):
        return unchanged
    if fmt == "html":
        page = found.features.page(query)
        return _items_page(found, page, _items_links(collection_id, query, page.has_next, fmt), query.properties)

    def build() -> bytes:  # kept per ETag: the same data and URL answer the same bytes, timeStamp included
        page = found.features.page(query)
        return geojson.feature_collection(
            geojson.served(page.features, found.layer, crs),
            numberMatched=page.number_matched,
            numberReturned=page.number_returned,
            timeStamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            links=_items_links(collection_id, query, page.has_next, fmt),
        )

    return _geojson(services().pages.get(etag, build), etag, crs)


def _items_links(collection_id: str, query: Query, has_next: bool, fmt: str) -> list[dict]:
    """self, alternate, collection, next and prev; paging links keep every other parameter."""
    params = {k: v for k, v in _params().items() if k != "f"}
    types = {"json": GEOJSON, "html": HTML}
    other = "html" if fmt == "json" else "json"

    def url(offset: int, f: str) -> str:
        return url_for("api.items", collection_id=collection_id, _external=True,
                       **{**params, "offset": offset, "limit": query.limit, "f": f})

    links = [_link(url(query.offset, fmt), "self", types[fmt]),
             _link(url(query.offset, other), "alternate", types[other]),
             _link(url_for("api.collection", collection_id=collection_id, _external=True),
                   "collection", "application/json")]
    if has_next:
        links.append(_link(url(query.offset + query.limit, fmt), "next", types[fmt]))
    if query.offset > 0:
        links.append(_link(url(max(0, query.offset - query.limit), fmt), "prev", types[fmt]))
    return links


@blueprint.get("/api/collections/<collection_id>/items/<feature_id>")
def item(collection_id: str, feature_id: str):
    _only("version", "crs", *PARAM_NAMES)
    fmt = negotiation.wanted()
    crs = output_crs(request.args.get("crs"))
    found = _collection(collection_id)
    feature = found.features.feature(feature_id)
    # a stored feature's JSON: its own ETag (its content's), which Part 4's If-Match takes back
    own = (fmt == "json" and collection_id in transactions.EDITABLE
           and request.args.get("version") is None and request.args.get("crs") is None)
    etag = transactions.feature_etag(feature) if own else negotiation.etag_of(found.tag, request.url)
    if fmt == "json" and (unchanged := negotiation.not_modified(etag)):
        return unchanged
    params = {k: v for k, v in _params().items() if k != "f"}
    types = {"json": GEOJSON, "html": HTML}
    links = [_link(url_for("api.item", collection_id=collection_id, feature_id=feature_id, _external=True,
                           **params, f=f), rel, types[f])
             for f, rel in ((fmt, "self"), ("html" if fmt == "json" else "json", "alternate"))]
    links.append(_link(url_for("api.collection", collection_id=collection_id, _external=True),
                       "collection", "application/json"))
    if fmt == "html":
        return _item_page(found, json.loads(feature), links)
    feature = geojson.served([feature], found.layer, crs)[0]
    return _geojson(feature[:-1] + ',"links":' + geojson.dumps(links) + "}", etag, crs)  # the stored text, plus links


def _geojson(body: str | bytes, etag: str, crs: str) -> Response:
    response = Response(body, mimetype=GEOJSON)
    response.set_etag(etag)
    response.headers["Content-Crs"] = f"<{crs}>"  # Part 2: always, the default CRS84 too
    response.vary.add("Accept")
    return response


@blueprint.get("/api/download/<collection_id>.<ext>")
def download(collection_id: str, ext: str):
    if ext not in downloads.FORMATS:
        raise NotFound(says("error.no_download_format", ext=ext, formats=", ".join(downloads.FORMATS)),
                       details=list(downloads.FORMATS))
    found = _collection(collection_id)
    derived = collection_id in DERIVED
    if found.version is None and not derived:
        raise NotFound(says("error.no_data_yet", collection=collection_id))
    crs = downloads.file_crs(request.args.get("crs"), ext)
    query = Query.from_params(_filters(), found.features.columns, layer=found.layer)

    def make() -> bytes:
        if ext == "geojson":  # from the stored texts, no frame
            return downloads.geojson_file(found.features.all(query), found.layer, crs)
        return downloads.to_format(found.features.frame(query), ext, collection_id, crs)

    # whole layers are what people download again and again: made once per content
    whole = query.selects_all and query.properties is None and not query.skip_geometry
    body = services().responses.get(("download", found.tag, ext, crs), make) if whole else make()
    filename = f"{collection_id}.{ext}" if derived else f"{collection_id}-v{found.version.version}.{ext}"
    return Response(body, content_type=downloads.FORMATS[ext][0],
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


SEARCH_LIMIT = 50  # hits an answer holds at most
SEARCH_DEFAULT = 10


@blueprint.get("/api/search")
def search():
    """Grids, units and centres by code or (partial, short) name, each hit with its parents."""
    _only("q", "limit")
    query = request.args.get("q", "").strip()
    if not query or len(query) > 100:
        raise BadRequest(says("search.q"))
    raw = request.args.get("limit", str(SEARCH_DEFAULT))
    if not raw.isdigit() or not 1 <= int(raw) <= SEARCH_LIMIT:
        raise BadRequest(says("search.limit", most=SEARCH_LIMIT, value=repr(raw)))
    hits = services().catalog.search_index().search(query, int(raw))
    return jsonify({"query": query, "numberReturned": len(hits), "hits": [_search_hit(hit) for hit in hits]})


def _search_hit(hit) -> dict:
    """A hit, and where it is shown: a unit's map, or a grid's or centre's page."""
    doc = hit.to_dict()
    if hit.unit:
        doc["href"] = url_for("pages.unit_map", **dict(hit.unit), _external=True)
    else:
        collection = "grids" if hit.kind == "grid" else "centers"
        doc["href"] = url_for("api.item", collection_id=collection, feature_id=hit.id, f="html", _external=True)
    return doc




@blueprint.get("/api/summary")
def summary():
    level = request.args.get("level", "district")
    if level not in SUMMARY_LEVELS:
        raise BadRequest(says("params.one_of", name="level", choices=", ".join(SUMMARY_LEVELS), value=repr(level)))
    fmt = request.args.get("f", "json")
    if fmt not in ("json", "csv"):
        raise BadRequest(says("params.one_of", name="f", choices="json, csv", value=repr(fmt)))
    catalog = services().catalog
    unknown = set(_filters()) - {"level", "f", *UNIT_KEYS}
    if unknown:
        raise BadRequest(says("params.unknown", name=sorted(unknown)[0]))
    tag, analysis = catalog.analysis_entry(_analysis_params())
    unit = tuple((k, request.args[k]) for k in UNIT_KEYS if k in request.args)
    body = services().responses.get(("summary", tag, level, fmt, unit),
                                    lambda: summaries.render(analysis, level, dict(unit), fmt))
    if fmt == "csv":
        return Response(body, mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="summary-{level}.csv"'})
    return Response(body, mimetype="application/json")


@blueprint.get("/api/summary/history")
def summary_history():
    """Covered share at each of the last versions of the data (at most ``history.LIMIT``), of the whole
    dataset and of the unit named (``city``, ``district``, …): old versions computed when first asked for."""
    _only("limit", *UNIT_KEYS)
    limit = whole_number(request.args.get("limit", str(history.LIMIT)), "limit", minimum=1, maximum=history.LIMIT)
    unit = {k: request.args[k] for k in UNIT_KEYS if request.args.get(k)}
    catalog = services().catalog
    if unit:
        summaries.rows(catalog.analysis(), "total", unit)  # 400 for a unit with no grids: before any job
    body = history.coverage_history(catalog, unit, limit, cache=lambda key, build: services().responses.get(
        ("history", key), build))
    # each version's time as pages show it (GRIDMAP_TIMEZONE), next to the UTC one scripts read
    body = {**body, "points": [{**point, "time_shown": shown_time(point["time"])} for point in body["points"]]}
    response = jsonify(body)
    response.cache_control.no_cache = True
    return response


# --- answers in either format ------------------------------------------------------------------

def _self_links(endpoint: str, fmt: str, **values) -> list[dict]:
    """``self`` in the format answered and ``alternate`` in the other one."""
    types = {"json": "application/json", "html": HTML}
    other = "html" if fmt == "json" else "json"
    return [_link(url_for(endpoint, f=fmt, _external=True, **values), "self", types[fmt], _said("api.link.self")),
            _link(url_for(endpoint, f=other, _external=True, **values), "alternate", types[other],
                  _said("api.link.as_html" if other == "html" else "api.link.as_json"))]


def _said(key: str) -> str:
    return text(key, current_language())


def _answer(fmt: str, doc: dict, template: str, *, etag: str | None = None, mimetype: str = "application/json",
            **context) -> Response:
    """``doc`` as JSON, or as ``template`` (extending base.html; every value autoescaped)."""
    if fmt == "html":
        return _html(render_template(template, doc=doc, **context))
    response = current_app.json.response(doc)
    response.mimetype = mimetype
    if etag:
        response.set_etag(etag)
    response.vary.add("Accept")
    response.vary.add("Accept-Language")  # titles and link titles are in the reader's language
    return response


def _html(page: str) -> Response:
    """A page; its ETag is a hash of it (negotiation), so it follows the data, the language and the user."""
    response = Response(page, mimetype=HTML)
    response.vary.add("Accept")
    return response


def _items_page(found, page, links: list[dict], selected: tuple[str, ...] | None = None) -> Response:
    features = [json.loads(f) for f in page.features]
    layer = found.layer
    columns = list(dict.fromkeys([*layer.field_names, *(k for f in features for k in f["properties"])]))
    if selected is not None:  # properties=: the key (the feature's id) and those asked for
        columns = [c for c in columns if c == layer.key or c in selected]
    item_url = url_for("api.item", collection_id=layer.name, feature_id="FEATURE").replace(
        "FEATURE", "{" + layer.key + "}") + "?f=html"
    m = _features_map(features, layer, links=[(text("api.open_feature", current_language()), item_url)])
    return _html(render_map("api_items.html", m, layer=layer, features=features, columns=columns, page=page,
                            links={link["rel"]: link["href"] for link in links}))


def _item_page(found, feature: dict, links: list[dict]) -> Response:
    layer = found.layer
    return _html(render_map("api_item.html", _features_map([feature], layer), layer=layer, feature=feature,
                            columns=list(dict.fromkeys([*layer.field_names, *feature["properties"]])),
                            links={link["rel"]: link["href"] for link in links}))


def _features_map(features: list[dict], layer, links: list[tuple[str, str]] = ()) -> folium.Map:
    """A small map of these features, embedded in the page (escaped as JSON), assets served locally."""
    m = folium.Map(location=NINGBO_CENTRE, zoom_start=9, tiles=None, control_scale=True)
    m.options["maxZoom"] = 18
    assets = map_assets()
    m.default_js, m.default_css = list(assets.js), list(assets.css)
    basemap = services().basemap
    if basemap.url:
        folium.TileLayer(basemap.url, attr=basemap.attribution, subdomains=basemap.subdomains, max_zoom=18,
                         name=text("layer.basemap", current_language())).add_to(m)
    label = [Field(layer.key, layer.key), *([Field("name", "name")] if "name" in layer.field_names else [])]
    GeoJsonLayer(layer.title, data={"type": "FeatureCollection", "features": features}, tooltip=label,
                 popup=label if links else (), links=links,
                 styles={"*": {"color": "#2166ac", "weight": 1.5, "fillColor": "#4393c3", "fillOpacity": 0.3,
                               "radius": 6}}).add_to(m)
    geometries = [json.dumps(f["geometry"]) for f in features if f.get("geometry")]
    if geometries:
        minx, miny, maxx, maxy = shapely.total_bounds(shapely.from_geojson(geometries))
        m.fit_bounds([[float(miny), float(minx)], [float(maxy), float(maxx)]], max_zoom=16)
    ReadySignal().add_to(m)
    _stable_names(m)
    return m


def _stable_names(element, counter=None) -> None:
    """Number the map's elements in order instead of folium's random ids: the same data, the same page
    (so the page's ETag, a hash of it, holds)."""
    counter = counter if counter is not None else itertools.count()
    element._id = f"{next(counter):x}"
    for child in element._children.values():
        _stable_names(child, counter)
