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
from .i18n import says
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
    raise PreconditionFailed(says("tx.etag_changed", key=key, current=current))


def sent_features(body, layer: str, *, one: bool) -> list[dict]:
    """The Feature(s) a request sends, each with its key among its properties (taken from ``id`` when
    the properties lack it).  ``one``: a single Feature (PUT); else a Feature or a FeatureCollection."""
    if not isinstance(body, dict):
        raise BadRequest(says("tx.send_feature" if one else "tx.send_features"))
    if body.get("type") == "FeatureCollection" and not one:
        features = body.get("features")
        if not isinstance(features, list) or not features:
            raise BadRequest(says("tx.no_features"))
    elif body.get("type") == "Feature":
        features = [body]
    else:
        raise BadRequest(says("tx.type_feature" if one else "tx.type_features", value=repr(body.get("type"))))
    key = LAYERS[layer].key
    out = []
    for i, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise BadRequest(says("tx.not_feature", n=i + 1))
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            raise BadRequest(says("tx.properties_object", n=i + 1))
        properties = dict(properties)
        if properties.get(key) in (None, "") and feature.get("id") not in (None, ""):
            properties[key] = feature["id"]
        if properties.get(key) in (None, ""):
            raise BadRequest(says("tx.no_key", n=i + 1, key=key))
        if feature.get("id") not in (None, "") and str(feature["id"]) != str(properties[key]):
            raise BadRequest(says("tx.id_differs", n=i + 1, id=repr(feature["id"]), key=key,
                                  value=repr(properties[key])))
        out.append({"type": "Feature", "geometry": feature.get("geometry"), "properties": properties})
    keys = [str(f["properties"][key]) for f in out]
    if len(set(keys)) != len(keys):
        raise BadRequest(says("tx.repeats", key=key))
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
        raise Conflict(says("tx.exists", layer=layer, value=value))


def replacement(feature: dict, layer: str, path_key: str) -> dict:
    """PUT's feature: its key is the URL's (400 when the body names another)."""
    key = LAYERS[layer].key
    sent = feature["properties"].get(key)
    if str(sent) != path_key:
        raise BadRequest(says("tx.url_key", key=key, sent=repr(sent), path_key=path_key))
    return feature


def merge_patch(stored: dict, patch, layer: str, path_key: str) -> dict:
    """PATCH's feature: ``stored`` with ``patch`` applied as a JSON merge patch (RFC 7396) to its
    properties (``null`` removes a property), and its geometry replaced when ``patch`` has one."""
    if not isinstance(patch, dict):
        raise BadRequest(says("tx.send_patch"))
    unknown = set(patch) - {"type", "id", "properties", "geometry"}
    if unknown:
        raise BadRequest(says("tx.patch_members", names=", ".join(sorted(unknown))))
    key = LAYERS[layer].key
    properties = copy.deepcopy(stored.get("properties") or {})
    changes = patch.get("properties") or {}
    if not isinstance(changes, dict):
        raise BadRequest(says("tx.patch_properties"))
    if key in changes and str(changes[key]) != path_key:
        raise BadRequest(says("tx.patch_key", key=key, path_key=repr(path_key)))
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
        raise BadRequest(says("tx.send_change_set"))
    removed, if_match = body.get("removed") or [], body.get("if_match") or {}
    if not isinstance(removed, list) or not all(isinstance(k, (str, int)) and str(k) for k in removed):
        raise BadRequest(says("tx.removed_list"))
    if not isinstance(if_match, dict) or not all(isinstance(v, str) for v in if_match.values()):
        raise BadRequest(says("tx.if_match_map"))
    if not body.get("features"):
        raise BadRequest(says("tx.writes_nothing"))
    features = sent_features(body, layer, one=False)
    removed = tuple(dict.fromkeys(str(k) for k in removed))
    key = LAYERS[layer].key
    both = {str(f["properties"][key]) for f in features} & set(removed)
    if both:
        raise BadRequest(says("tx.written_and_removed", keys=", ".join(sorted(both))))
    return ChangeSet(features, removed, {str(k): v for k, v in if_match.items()})


def check_change_set(store, layer: str, changes: ChangeSet) -> None:
    """412 when a feature the client loaded changed since (its ETag), or is gone; 404 for a key to remove
    the layer has not; 409 for a feature written without an ETag whose key the layer has (a new one)."""
    key = LAYERS[layer].key
    for name, tag in changes.if_match.items():
        try:
            text = store.get(layer, name)
        except NotFound:
            raise PreconditionFailed(says("tx.removed_since", name=name)) from None
        check_if_match([tag], text, name)
    for name in changes.removed:
        if name not in changes.if_match:
            store.get(layer, name)  # NotFound: nothing to remove
    new_keys(store, layer, [f for f in changes.features if str(f["properties"][key]) not in changes.if_match])


# --- geometry for the map's split and merge: computed here, so shared edges stay exact ---------------

def split(geometry: dict, line, key: str) -> list[dict]:
    """``geometry`` (GeoJSON polygon) cut along ``line`` (a GeoJSON LineString drawn across it): the parts,
    largest first.  The cut's vertices are the line's, on both sides, so the parts share their edge exactly."""
    shape, cut = _shape(geometry, says("tx.the_feature")), _shape(_line_geometry(line), says("tx.the_line"))
    if cut.geom_type != "LineString":
        raise BadRequest(says("tx.cut_line", type=cut.geom_type))
    parts = [p for p in shapely.get_parts(shapely.ops.split(shape, cut)) if p.area > 0]
    if len(parts) < 2:
        raise Unprocessable(says("tx.no_cut", key=key))
    parts.sort(key=lambda p: -p.area)
    return [json.loads(shapely.to_geojson(p)) for p in parts]


def union(geometries: dict[str, dict]) -> dict:
    """The features' shapes as one (BadRequest unless they are two or more that meet along an edge)."""
    if len(geometries) < 2:
        raise BadRequest(says("tx.merge_two"))
    shapes = {k: _shape(g, f"'{k}'") for k, g in geometries.items()}  # a key: the same in any language
    merged = shapely.union_all(list(shapes.values()))
    if merged.geom_type != "Polygon":
        raise Unprocessable(says("tx.not_neighbours", keys=", ".join(shapes)))
    return json.loads(shapely.to_geojson(shapely.Polygon(merged.exterior, merged.interiors)))


def _line_geometry(line):
    if isinstance(line, dict) and line.get("type") == "Feature":
        return line.get("geometry")
    return line


def _shape(geometry, what: str):
    try:
        shape = shapely.geometry.shape(geometry)
    except Exception:  # shapely raises several kinds for a malformed GeoJSON geometry
        raise BadRequest(says("tx.not_geometry", what=what)) from None
    if shape.is_empty or not shape.is_valid:
        raise Unprocessable(says("tx.empty_geometry", what=what))
    return shape
