"""OGC API – Features Part 4 (create, replace, update, delete) over the store, framework-neutral.

A write of one or a few features is an upload in merge mode of the features it sends
(``geodata.uploads.upload``): parsed, checked against the merged layer and stored as one new
version exactly as a file would be, with the same report when it is refused.  A delete is a
change set that removes one key.  Each feature has a strong ETag: a hash of its stored text,
so it names the feature's content, not the layer's version, and an edit of another feature
leaves it valid.

An edit on the map saves a change set: the features it wrote and the keys it removed in one layer,
one version (a split grid, a merge, a shared edge moved in both neighbours), checked as a merge.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import shapely
import shapely.geometry
import shapely.ops

from .errors import BadRequest, Conflict, NotFound, PreconditionFailed, Unprocessable
from .schema import LAYERS
from .store.base import text_hash

EDITABLE = ("grids", "centers", "districts", "roads")  # stored layers; the others are computed from them
CONFORMANCE = ["http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
               "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update"]


def feature_etag(text: str) -> str:
    """The strong ETag (without quotes) of a feature's stored text."""
    return text_hash(text)[:32]


def check_if_match(values: list[str] | None, text: str, key: str) -> None:
    """PreconditionFailed unless ``If-Match`` (``values``; None: not sent) names the feature as stored.

    The tag counts as the client received it: plain, or as a compressed answer marks it
    (``"<etag>:gzip"``), weak or strong; ``*`` means any current version of it."""
    if values is None:
        return
    current = feature_etag(text)
    for value in values:
        tag = value.strip().removeprefix("W/").strip('"').split(":", 1)[0]
        if tag in ("*", current):
            return
    raise PreconditionFailed(f"'{key}' changed since that ETag: it is now \"{current}\"; fetch it again")


def sent_features(body, layer: str, *, one: bool) -> list[dict]:
    """The Feature(s) a request sends, each with its key among its properties (taken from ``id`` when
    the properties lack it).  ``one``: a single Feature (PUT); else a Feature or a FeatureCollection."""
    if not isinstance(body, dict):
        raise BadRequest("send a GeoJSON Feature" + ("" if one else " or FeatureCollection") + " as the body")
    if body.get("type") == "FeatureCollection" and not one:
        features = body.get("features")
        if not isinstance(features, list) or not features:
            raise BadRequest("the FeatureCollection has no features")
    elif body.get("type") == "Feature":
        features = [body]
    else:
        raise BadRequest(f"'type' must be Feature{'' if one else ' or FeatureCollection'}, not {body.get('type')!r}")
    key = LAYERS[layer].key
    out = []
    for i, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise BadRequest(f"feature {i} is not a GeoJSON Feature")
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            raise BadRequest(f"feature {i}'s 'properties' must be an object")
        properties = dict(properties)
        if properties.get(key) in (None, "") and feature.get("id") not in (None, ""):
            properties[key] = feature["id"]
        if properties.get(key) in (None, ""):
            raise BadRequest(f"feature {i} has no '{key}': give it in its properties or as its 'id'")
        if feature.get("id") not in (None, "") and str(feature["id"]) != str(properties[key]):
            raise BadRequest(f"feature {i}'s id {feature['id']!r} and its '{key}' {properties[key]!r} differ")
        out.append({"type": "Feature", "geometry": feature.get("geometry"), "properties": properties})
    keys = [str(f["properties"][key]) for f in out]
    if len(set(keys)) != len(keys):
        raise BadRequest(f"'{key}' repeats a value among the features sent: every feature needs its own")
    return out


def new_keys(store, layer: str, features: list[dict]) -> None:
    """Conflict (409) when a feature to create has a key the layer already has."""
    key = LAYERS[layer].key
    for feature in features:
        value = str(feature["properties"][key])
        try:
            store.get(layer, value)
        except NotFound:
            continue
        raise Conflict(f"{layer} already has a feature '{value}': replace it with PUT on its URL instead")


def replacement(feature: dict, layer: str, path_key: str) -> dict:
    """PUT's feature: its key is the URL's (400 when the body names another)."""
    key = LAYERS[layer].key
    sent = feature["properties"].get(key)
    if str(sent) != path_key:
        raise BadRequest(f"the feature's '{key}' is {sent!r}, but the URL names '{path_key}'")
    return feature


def merge_patch(stored: dict, patch, layer: str, path_key: str) -> dict:
    """PATCH's feature: ``stored`` with ``patch`` applied as a JSON merge patch (RFC 7396) to its
    properties (``null`` removes a property), and its geometry replaced when ``patch`` has one."""
    if not isinstance(patch, dict):
        raise BadRequest("send a JSON merge patch: an object with 'properties' and/or 'geometry'")
    unknown = set(patch) - {"type", "id", "properties", "geometry"}
    if unknown:
        raise BadRequest(f"a patch changes 'properties' and 'geometry', not {', '.join(sorted(unknown))}")
    key = LAYERS[layer].key
    properties = copy.deepcopy(stored.get("properties") or {})
    changes = patch.get("properties") or {}
    if not isinstance(changes, dict):
        raise BadRequest("the patch's 'properties' must be an object")
    if key in changes and str(changes[key]) != path_key:
        raise BadRequest(f"'{key}' is the feature's key: it cannot be patched (here {path_key!r})")
    for name, value in changes.items():
        if value is None:
            properties.pop(name, None)
        else:
            properties[name] = value
    geometry = patch["geometry"] if "geometry" in patch else stored.get("geometry")
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def collection_bytes(features: list[dict]) -> bytes:
    """The features as the GeoJSON file an upload in merge mode reads."""
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False).encode("utf-8")


# --- change sets: what an edit on the map saves as one version ------------------------------------

@dataclass(frozen=True)
class ChangeSet:
    """Features to write (new or changed) and keys to remove, in one layer, as one version; ``if_match``:
    the ETag each changed or removed feature had when the client loaded it."""

    features: list[dict]
    removed: tuple[str, ...]
    if_match: dict[str, str]


def change_set(body, layer: str) -> ChangeSet:
    """A change set sent as ``{"type": "FeatureCollection", "features": [...], "removed": [key, ...],
    "if_match": {key: etag, ...}}`` (BadRequest for anything else)."""
    if not isinstance(body, dict) or body.get("type") != "FeatureCollection":
        raise BadRequest("send the change set as a GeoJSON FeatureCollection with 'removed' and 'if_match' members")
    removed, if_match = body.get("removed") or [], body.get("if_match") or {}
    if not isinstance(removed, list) or not all(isinstance(k, (str, int)) and str(k) for k in removed):
        raise BadRequest("'removed' must be a list of the keys to remove")
    if not isinstance(if_match, dict) or not all(isinstance(v, str) for v in if_match.values()):
        raise BadRequest("'if_match' must map keys to the ETags the features had when loaded")
    if not body.get("features"):
        raise BadRequest("the change set writes no feature: remove a single one with DELETE on its URL")
    features = sent_features(body, layer, one=False)
    removed = tuple(dict.fromkeys(str(k) for k in removed))
    key = LAYERS[layer].key
    both = {str(f["properties"][key]) for f in features} & set(removed)
    if both:
        raise BadRequest(f"{', '.join(sorted(both))} both written and removed: send each key once")
    return ChangeSet(features, removed, {str(k): v for k, v in if_match.items()})


def check_change_set(store, layer: str, changes: ChangeSet) -> None:
    """412 when a feature the client loaded changed since (its ETag), or is gone; 404 for a key to remove
    the layer has not; 409 for a feature written without an ETag whose key the layer has (a new one)."""
    key = LAYERS[layer].key
    for name, tag in changes.if_match.items():
        try:
            text = store.get(layer, name)
        except NotFound:
            raise PreconditionFailed(f"'{name}' was removed since it was loaded; load it again") from None
        check_if_match([tag], text, name)
    for name in changes.removed:
        if name not in changes.if_match:
            store.get(layer, name)  # NotFound: nothing to remove
    new_keys(store, layer, [f for f in changes.features if str(f["properties"][key]) not in changes.if_match])


# --- geometry for the map's split and merge: computed here, so shared edges stay exact ---------------

def split(geometry: dict, line, key: str) -> list[dict]:
    """``geometry`` (GeoJSON polygon) cut along ``line`` (a GeoJSON LineString drawn across it): the parts,
    largest first.  The cut's vertices are the line's, on both sides, so the parts share their edge exactly."""
    shape, cut = _shape(geometry, "the feature"), _shape(_line_geometry(line), "the line")
    if cut.geom_type != "LineString":
        raise BadRequest(f"cut with a LineString, not a {cut.geom_type}")
    parts = [p for p in shapely.get_parts(shapely.ops.split(shape, cut)) if p.area > 0]
    if len(parts) < 2:
        raise Unprocessable(f"the line does not cut '{key}' in two: draw it across the feature, edge to edge")
    parts.sort(key=lambda p: -p.area)
    return [json.loads(shapely.to_geojson(p)) for p in parts]


def union(geometries: dict[str, dict]) -> dict:
    """The features' shapes as one (BadRequest unless they are two or more that meet along an edge)."""
    if len(geometries) < 2:
        raise BadRequest("merge two or more features")
    shapes = {k: _shape(g, f"'{k}'") for k, g in geometries.items()}
    merged = shapely.union_all(list(shapes.values()))
    if merged.geom_type != "Polygon":
        raise Unprocessable(f"{', '.join(shapes)} do not meet along an edge: merge features that are neighbours")
    return json.loads(shapely.to_geojson(shapely.Polygon(merged.exterior, merged.interiors)))


def _line_geometry(line):
    if isinstance(line, dict) and line.get("type") == "Feature":
        return line.get("geometry")
    return line


def _shape(geometry, what: str):
    try:
        shape = shapely.geometry.shape(geometry)
    except Exception:  # shapely raises several kinds for a malformed GeoJSON geometry
        raise BadRequest(f"{what} is not a GeoJSON geometry") from None
    if shape.is_empty or not shape.is_valid:
        raise Unprocessable(f"{what}'s geometry is empty or invalid")
    return shape
