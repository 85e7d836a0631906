"""OGC API – Features Part 4 (create, replace, update, delete) over the store, framework-neutral.

A write of one or a few features is an upload in merge mode of the features it sends
(``geodata.uploads.upload``): parsed, checked against the merged layer and stored as one new
version exactly as a file would be, with the same report when it is refused.  A delete is a
change set that removes one key.  Each feature has a strong ETag: a hash of its stored text,
so it names the feature's content, not the layer's version, and an edit of another feature
leaves it valid.
"""

from __future__ import annotations

import copy
import json

from .errors import BadRequest, Conflict, NotFound, PreconditionFailed
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
