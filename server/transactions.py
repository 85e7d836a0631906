"""OGC API – Features Part 4: create, replace, update and delete features of the stored layers.

Thin routes over ``geodata.transactions``: each write is an editor's, audited, one new version
with its author and message (``X-Gridmap-Message`` header, or ``message`` in the query), and is
checked like an upload in merge mode (422 with the same report).  ``If-Match`` with a feature's
ETag makes a write conditional (412 when stale); without it (QGIS sends none) the write applies
to the current feature, and the history keeps what it replaced.  ``OPTIONS`` answers ``Allow``
with what the caller may do, which is how QGIS decides whether to offer editing.
"""

from __future__ import annotations

import json
import urllib.parse

from flask import Blueprint, Response, current_app, request, url_for
from werkzeug.exceptions import MethodNotAllowed

from geodata import geojson, scopes, transactions
from geodata.errors import BadRequest, PreconditionFailed
from geodata.i18n import says
from geodata.schema import LAYERS

from . import audit, services
from .audit import audited
from .auth import current_user, require
from .i18n import current_language
from .uploads import in_job, limits

blueprint = Blueprint("transactions", __name__)

GEOJSON = "application/geo+json"
READ_ONLY = ("GET", "HEAD", "OPTIONS")
ATTEMPTS = 3  # another write landing between the check and the store: checked and tried again


@blueprint.post("/api/collections/<collection_id>/items")
@audited("edit", "collection_id")
@require("editor")
def create(collection_id: str):
    layer = _editable(collection_id, "POST")
    features = transactions.sent_features(_body(), layer, one=False)
    keys = [_key(layer, f) for f in features]
    audit.note(method="POST", features=keys)
    return _store(layer, features, lambda: transactions.new_keys(services().store, layer, features), keys,
                  status=201, message=f"added {_listed(keys)}")


@blueprint.put("/api/collections/<collection_id>/items/<feature_id>")
@audited("edit", "collection_id")
@require("editor")
def replace(collection_id: str, feature_id: str):
    layer = _editable(collection_id, "PUT")
    feature = transactions.replacement(transactions.sent_features(_body(), layer, one=True)[0], layer, feature_id)
    audit.note(method="PUT", features=[feature_id])
    return _store(layer, [feature], lambda: _checked_current(layer, feature_id), [feature_id],
                  message=f"replaced {feature_id}")


@blueprint.patch("/api/collections/<collection_id>/items/<feature_id>")
@audited("edit", "collection_id")
@require("editor")
def update(collection_id: str, feature_id: str):
    layer = _editable(collection_id, "PATCH")
    patch = _body()
    audit.note(method="PATCH", features=[feature_id])
    patched: list[dict] = []

    def attempt():
        stored = _checked_current(layer, feature_id)
        patched[:] = [transactions.merge_patch(json.loads(stored), patch, layer, feature_id)]
        return stored

    return _store(layer, patched, attempt, [feature_id], message=f"updated {feature_id}")


@blueprint.delete("/api/collections/<collection_id>/items/<feature_id>")
@audited("edit", "collection_id")
@require("editor")
def delete(collection_id: str, feature_id: str):
    layer = _editable(collection_id, "DELETE")
    audit.note(method="DELETE", features=[feature_id])
    store = services().store
    for tried in range(1, ATTEMPTS + 1):
        _checked_current(layer, feature_id)
        scopes.check(store, layer, current_user().areas, None, [feature_id])
        now = store.current(layer)
        try:
            version = store.write_changes(layer, removed=[feature_id], author=current_user().name,
                                          message=_message(f"removed {feature_id}"), if_version=now.version)
            break
        except PreconditionFailed:
            if tried == ATTEMPTS:
                raise
    audit.note(version=version.version)
    return Response(status=204)


@blueprint.post("/api/collections/<collection_id>/changes")
@audited("edit", "collection_id")
@require("editor")
def changes(collection_id: str):
    """Editors: a change set (features written and keys removed) as one version; ``dry_run=1`` checks only."""
    layer = _editable(collection_id, "POST")
    changed = transactions.change_set(_body(), layer)
    keys = [_key(layer, f) for f in changed.features]
    dry_run = request.args.get("dry_run") in ("1", "true", "yes")
    audit.note(method="POST", features=keys + list(changed.removed), **({"dry_run": True} if dry_run else {}))
    parts = [f"changed {_listed(keys)}"] + ([f"removed {_listed(list(changed.removed))}"] if changed.removed else [])
    return _store(layer, changed.features, lambda: transactions.check_change_set(services().store, layer, changed),
                  keys, message="; ".join(parts), removed=changed.removed, dry_run=dry_run, collection=True)


@blueprint.post("/api/collections/<collection_id>/split")
@require("editor")
def split(collection_id: str):
    """Editors: a polygon cut along a line (``{"geometry", "line"}``): the parts, nothing stored."""
    _polygonal(_editable(collection_id, "POST"))
    body = _body()
    if not isinstance(body, dict):
        raise BadRequest(says("tx.send_split"))
    parts = transactions.split(body.get("geometry"), body.get("line"),
                               str(body["id"]) if body.get("id") else says("tx.the_feature"))
    return _geojson({"type": "FeatureCollection",
                     "features": [{"type": "Feature", "geometry": g, "properties": {}} for g in parts]})


@blueprint.post("/api/collections/<collection_id>/union")
@require("editor")
def union(collection_id: str):
    """Editors: neighbouring polygons as one (``{"geometries": {key: polygon, ...}}``), nothing stored."""
    _polygonal(_editable(collection_id, "POST"))
    body = _body()
    if not isinstance(body, dict) or not isinstance(body.get("geometries"), dict):
        raise BadRequest(says("tx.send_union"))
    return _geojson({"type": "Feature", "geometry": transactions.union(body["geometries"]), "properties": {}})


@blueprint.after_app_request
def allowed_methods(response: Response) -> Response:
    """``OPTIONS`` on items or on a feature: ``Allow`` names what this caller may do there."""
    if request.method != "OPTIONS" or request.endpoint not in ("api.items", "api.item") or response.status_code >= 400:
        return response
    collection_id = (request.view_args or {}).get("collection_id", "")
    user = current_user()
    methods = list(READ_ONLY)
    if user is not None and user.can("editor") and collection_id in _stored():
        methods += ["POST"] if request.endpoint == "api.items" else ["PUT", "PATCH", "DELETE"]
    response.headers["Allow"] = ", ".join(methods)
    return response


# --- what every write shares ---------------------------------------------------------------------

def _store(layer: str, features: list[dict], check, keys: list[str], *, status: int = 200, message: str,
           removed: tuple[str, ...] = (), dry_run: bool = False, collection: bool = False):
    """Check (``check()``: 404, 409 or 412), then store ``features`` (and remove the ``removed`` keys) as an
    upload in merge mode would, against the version the check saw; another write meanwhile: checked and
    tried again.  ``dry_run``: the check's report (200), nothing stored."""
    store = services().store
    for tried in range(1, ATTEMPTS + 1):
        check()
        now = store.current(layer)
        try:
            outcome = in_job(layer, transactions.collection_bytes(features), "features.geojson",
                             author=current_user().name, message=_message(message), mode="merge",
                             if_version=now.version if now else 0, limits=limits(),
                             params=services().catalog.params, lang=current_language(),
                             scopes=current_user().areas, tiling_refused=True, removed=removed,
                             dry_run=dry_run)
            break
        except PreconditionFailed:
            if tried == ATTEMPTS:
                raise
    body = outcome.to_dict()
    refusal = outcome.refusal()
    audit.note(outcome={201: "stored", 200: "dry run"}.get(outcome.status, "rejected"), version=body["version"],
               errors=len(outcome.report.errors))
    if refusal is not None:
        response = current_app.json.response({"error": refusal, **body})
        response.status_code = outcome.status
        return response
    if outcome.status == 200:  # a dry run: the report, as an upload's
        return current_app.json.response(body)
    version = outcome.version.version
    texts = [store.get(layer, key, version) for key in keys]
    served = geojson.served(texts, LAYERS[layer])  # as GET answers them (a grid as a MultiPolygon)
    if len(keys) > 1 or collection:
        response = Response('{"type":"FeatureCollection","features":[' + ",".join(served) + "]}", status=status,
                            mimetype=GEOJSON)
    else:
        response = Response(served[0], status=status, mimetype=GEOJSON)
        response.set_etag(transactions.feature_etag(texts[0]))  # the stored text's, as GET's
        response.headers["Location"] = url_for("api.item", collection_id=layer, feature_id=keys[0], _external=True)
    response.headers["X-Gridmap-Version"] = str(version)
    return response


def _polygonal(layer: str) -> None:
    if "Polygon" not in LAYERS[layer].geometry_types:
        raise BadRequest(says("tx.not_polygons", layer=layer))


def _geojson(data: dict) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), mimetype=GEOJSON)


def _checked_current(layer: str, key: str) -> str:
    """The feature as stored now (404 when there is none), after ``If-Match`` is checked against it."""
    text = services().store.get(layer, key)
    transactions.check_if_match(_if_match(), text, key)
    return text


def _if_match() -> list[str] | None:
    raw = request.headers.get("If-Match")
    return None if raw is None else [part for part in raw.split(",") if part.strip()]


def _editable(collection_id: str, method: str) -> str:
    services().catalog.layer(collection_id)  # 404 for an unknown collection
    if collection_id not in _stored():
        raise MethodNotAllowed(valid_methods=list(READ_ONLY),
                               description=says("tx.computed", collection=collection_id, method=method))
    return collection_id


def _stored() -> tuple[str, ...]:
    return tuple(layer for layer in transactions.EDITABLE if layer in services().store.layer_names)


def _body():
    data = request.get_data(cache=True)
    if not data.strip():
        raise BadRequest(says("tx.send_body"))
    try:
        return current_app.json.loads(data)
    except ValueError as e:
        raise BadRequest(says("tx.not_json", reason=str(e))) from None


def _message(default: str) -> str:
    """The version's message: ``X-Gridmap-Message`` (UTF-8, or percent-encoded), ``message``, or ``default``."""
    raw = request.headers.get("X-Gridmap-Message")
    if raw is not None:
        try:  # HTTP hands header bytes over as Latin-1: UTF-8 text comes back whole
            raw = raw.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
        raw = urllib.parse.unquote(raw)
    else:
        raw = request.args.get("message")
    return (raw.strip() if raw and raw.strip() else default)[:500]


def _key(layer: str, feature: dict) -> str:
    return str(feature["properties"][LAYERS[layer].key])


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

