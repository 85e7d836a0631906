"""Writes: uploads (SPEC §4), version history and restore.  Every attempt is audited."""

from __future__ import annotations

import json

import geopandas as gpd
from flask import Blueprint, Response, current_app, jsonify, request, url_for

from geodata import geojson, io
from geodata.errors import BadRequest, PreconditionFailed
from geodata.i18n import says
from geodata.diff import diff as versions_diff
from geodata.jobs import upload_to
from geodata.params import version_number, whole_number
from geodata.scopes import whole_layer

from . import audit, privacy, services
from .audit import audited
from .auth import current_user, require
from .bodies import large_body
from .i18n import current_language

blueprint = Blueprint("uploads", __name__)


@blueprint.post("/api/uploads/<layer>")
@large_body
@audited("upload", "layer")
@require("editor")
def upload_layer(layer: str):
    file = request.files.get("file")
    form = request.form
    audit.note(filename=file.filename if file else None)
    if file is None or not file.filename:
        raise BadRequest(says("error.send_file"))
    outcome = in_job(
        layer, file.read(), file.filename,
        author=current_user().name, message=form.get("message", "")[:500],
        mode=form.get("mode", "replace"), dry_run=form.get("dry_run") in ("1", "true", "yes"),
        if_version=_if_match(layer),
        options=io.UploadOptions(source_crs=form.get("source_crs") or None, encoding=form.get("encoding") or None,
                                 coordinates=form.get("coordinates") or "wgs84"),
        limits=limits(), params=services().catalog.params,
        lang=form.get("lang") or current_language(), confirm=form.get("confirm"), scopes=current_user().areas,
    )
    body = outcome.to_dict()
    refusal = outcome.refusal()  # 409 (needs confirm=replace) or 422: the error, with the report
    audit.note(outcome={201: "stored", 200: "dry run", 409: "refused 409", 422: "rejected"}[outcome.status],
               version=body["version"], features=outcome.features, errors=len(outcome.report.errors),
               warnings=len(outcome.report.warnings), **({"error": refusal["message"]} if outcome.status == 409 else {}))
    if form.get("preview") in ("1", "true", "yes"):
        body["preview"] = _preview(outcome)
    if refusal is not None:
        body = {"error": refusal, **body}
    response = jsonify(body)
    response.status_code = outcome.status
    if outcome.status == 201:
        response.headers["Location"] = url_for("api.collection", collection_id=layer)
        response.set_etag(str(outcome.version.version))
    return response


def limits() -> io.Limits:
    """What an upload (or an edit, which is checked as one) may hold."""
    config = current_app.config
    return io.Limits(max_bytes=config["MAX_CONTENT_LENGTH"], max_vertices=config["MAX_VERTICES"],
                     max_feature_vertices=config["MAX_FEATURE_VERTICES"], max_text_chars=config["MAX_TEXT_CHARS"])


def in_job(*args, **kwargs):
    """``geodata.uploads.upload`` parses and checks the file in a job process (time and memory bounded)."""
    return services().jobs.run(upload_to, (services().store.location, *args), kwargs)


def _preview(outcome) -> dict:
    """The parsed features, light, each with its index in the file and its key, for the upload page's map."""
    parsed = outcome.parsed.data
    key = services().catalog.layer(outcome.layer).key
    light = gpd.GeoDataFrame({"index": range(len(parsed)), key: parsed[key] if key in parsed.columns else None},
                             geometry=parsed.geometry.values, crs=parsed.crs)
    return json.loads(geojson.to_bytes(light))  # as parsed: invalid shapes too, so the page can show them


def _if_match(layer: str) -> int | None:
    """``If-Match: "<version>"`` → that version number; ``*`` → the current one, which must exist."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if value == "*":
        current = services().store.current(layer)
        if current is None:
            raise PreconditionFailed(says("error.no_version_yet", layer=layer))
        return current.version
    return whole_number(value, "If-Match", minimum=0, error=PreconditionFailed)


@blueprint.get("/api/collections/<collection_id>/versions")
def versions(collection_id: str):
    services().catalog.layer(collection_id)  # 404 for an unknown collection
    store = services().store
    if collection_id not in store.layer_names:
        raise BadRequest(says("error.computed_no_versions", collection=collection_id))
    return jsonify({"collection": collection_id, "versions": [
        {**privacy.version_record(v), "links": [{"rel": "enclosure", "type": "application/geo+json",
                                                 "href": url_for("api.download", collection_id=collection_id,
                                                                 ext="geojson", version=v.version, _external=True)}]}
        for v in reversed(store.versions(collection_id))]})


@blueprint.post("/api/collections/<collection_id>/versions/<number>/restore")
@audited("restore", "collection_id")
@require("editor")
def restore(collection_id: str, number: str):
    store = services().store
    number = version_number(number, "n")  # [0-9] only: werkzeug's int converter takes any script's digits
    audit.note(restored=number)
    services().catalog.layer(collection_id)
    if collection_id not in store.layer_names:
        raise BadRequest(says("error.computed_no_restore", collection=collection_id))
    old = store.version(collection_id, number)
    whole_layer(current_user().areas, says("scope.restore"))
    new = store.restore(collection_id, number, author=current_user().name,
                        message=f"restored version {number}" + (f": {old.message}" if old.message else ""),
                        if_version=_if_match(collection_id))
    audit.note(version=new.version)
    response = jsonify({"version": new.version, "features": new.features, "restored": number})
    response.status_code = 201
    response.set_etag(str(new.version))
    return response


@blueprint.get("/api/collections/<collection_id>/diff")
def diff(collection_id: str):
    """``?from=N&to=M`` (to: the current version; from: the one before it); ``f=geojson`` for a map."""
    fmt = request.args.get("f", "json")
    if fmt not in ("json", "geojson"):
        raise BadRequest(says("error.f_json", value=repr(fmt)))
    result, _, _ = version_diff(collection_id)
    if fmt == "geojson":
        return Response(geojson.to_bytes(result.features), mimetype="application/geo+json")
    return jsonify(result.to_dict())


def version_diff(collection_id: str):
    """The diff the request asks for, and the two version numbers."""
    store = services().store
    services().catalog.layer(collection_id)
    if collection_id not in store.layer_names:
        raise BadRequest(says("error.computed_no_versions", collection=collection_id))
    to = _version_arg("to") or store.version(collection_id).version
    before = _version_arg("from") or to - 1
    if before < 1:
        raise BadRequest(says("error.no_earlier_version"))
    store.version(collection_id, before), store.version(collection_id, to)  # 404 for a missing one
    catalog = services().catalog

    def seen(number: int):  # as this reader sees it: a change to a field hidden from them does not show
        return catalog.get(collection_id, number, hidden=privacy.hidden_fields()).features.gdf

    return versions_diff(seen(before), seen(to), catalog.layer(collection_id).key), before, to


def _version_arg(name: str) -> int | None:
    raw = request.args.get(name)
    return None if raw is None else version_number(raw, name)
