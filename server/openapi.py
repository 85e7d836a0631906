"""The OpenAPI 3.0 description of ``/api``, built from the app's URL map and ``geodata.schema``.

Every rule under ``/api`` becomes one path per collection it serves (as pygeoapi
does), so each collection's items carry its own property filters and a
FeatureCollection schema typed from its fields — GDAL reads those filters from
``paths["/collections/{name}/items"]``.  Paths are relative to the landing page
(``servers[0].url`` ends in ``/api``), as OGC API clients expect.  What each
endpoint takes and answers is said once, in :data:`OPERATIONS`; a route without
an entry there still appears (from its docstring), and a test names it.
"""

from __future__ import annotations

import re
from dataclasses import fields

from flask import Flask
from werkzeug.routing import Rule

from geodata import cql
from geodata.coverage import CATCHMENTS, LEVELS, MAX_LIFE_CIRCLES, MAX_RADIUS_M, SUMMARY_LEVELS, Params
from geodata.crs import CRS84_URI, OUTPUT_CRS
from geodata.downloads import FORMATS
from geodata.history import LIMIT as HISTORY_LIMIT
from geodata.i18n import text
from geodata.schema import DERIVED, KEY_PATTERN, LAYERS, Field, Layer
from geodata.unitkeys import UNIT_KEYS

MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"
JSON, GEOJSON, HTML, SCHEMA_JSON = "application/json", "application/geo+json", "text/html", "application/schema+json"
OGC = "OGC API - Features"


def download_formats() -> dict[str, tuple[str, str]]:
    """ext → (media type, description) of the download route."""
    return dict(FORMATS)


def collection_ids() -> list[str]:
    return [*LAYERS, *DERIVED]


def layer_of(collection_id: str) -> Layer:
    return LAYERS.get(collection_id) or DERIVED[collection_id]


# --- schemas of the data ----------------------------------------------------------------------

def field_schema(field: Field, *, openapi: bool = True) -> dict:
    """One field as OpenAPI 3.0 (``nullable``) or JSON Schema (``"type": [..., "null"]``)."""
    kind = {"key": "string", "string": "string", "integer": "integer", "number": "number", "enum": "string",
            "boolean": "boolean"}
    schema: dict = {"type": kind.get(field.kind, "string")}
    if field.kind == "key":
        schema["pattern"] = KEY_PATTERN.pattern
    if field.kind == "enum":
        schema["enum"] = list(field.choices)
    if field.minimum is not None:
        schema["minimum"] = field.minimum
    if field.description:
        schema["description"] = field.description
    if not field.required:  # stored layers have every field, empty ones as null
        if "enum" in schema:
            schema["enum"].append(None)
        if openapi:
            schema["nullable"] = True
        else:
            schema["type"] = [schema["type"], "null"]
    return schema


GEOMETRY_FORMATS = {("Point",): "geometry-point", ("Polygon", "MultiPolygon"): "geometry-polygon-or-multipolygon",
                    ("LineString", "MultiLineString"): "geometry-linestring-or-multilinestring"}


def queryables(layer: Layer, url: str, lang: str | None = None) -> dict:
    """The filterable properties of a collection as JSON Schema (OGC API - Features Part 3).

    Each property has ONE ``type`` string (QGIS ignores a property typed ``["integer", "null"]`` and
    then filters it itself); the geometry is a queryable with a ``geometry-…`` format and the
    primary-geometry role, as QGIS and GDAL recognise it, for S_INTERSECTS."""
    def one(field: Field) -> dict:
        schema = {k: v for k, v in field_schema(field).items() if k != "nullable"}
        if "enum" in schema:
            schema["enum"] = [c for c in schema["enum"] if c is not None]
        return {"title": field.name, **schema}

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": layer.title_in(lang) if lang else layer.title,
        "description": text("api.queryables_description", lang or "en"),
        "properties": {
            "geometry": {"title": "geometry", "format": GEOMETRY_FORMATS.get(layer.geometry_types, "geometry-any"),
                         "x-ogc-role": "primary-geometry"},
            **{f.name: one(f) for f in layer.fields},
        },
        "additionalProperties": True,  # fields kept from uploads are filterable too
    }


def _properties_schema(layer: Layer) -> dict:
    return _object([f.name for f in layer.fields if f.required], **{f.name: field_schema(f) for f in layer.fields})


def _feature_schema(layer: Layer, properties: str = "properties") -> dict:
    return {
        "type": "object", "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string", "description": f"the feature's {layer.key}"},
            "geometry": {"type": "object", "nullable": True, "required": ["type", "coordinates"],
                         "properties": {"type": {"type": "string", "enum": [layer.geometry_type]},
                                        "coordinates": {"type": "array", "items": {}}}},
            "properties": {"$ref": f"#/components/schemas/{layer.name}.{properties}"},
            "links": _ref_array("Link"),
        },
    }


def _collection_schema(layer: Layer) -> dict:
    return {
        "type": "object", "required": ["type", "features"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            # a page's features: with properties=, only the properties named (none required)
            "features": {"type": "array", "items": {"$ref": f"#/components/schemas/{layer.name}.selected-feature"}},
            "numberMatched": {"type": "integer", "minimum": 0},
            "numberReturned": {"type": "integer", "minimum": 0},
            "timeStamp": {"type": "string", "format": "date-time"},
            "links": _ref_array("Link"),
        },
    }


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _ref_array(name: str) -> dict:
    return {"type": "array", "items": _ref(name)}


def _strings() -> dict:
    return {"type": "array", "items": {"type": "string"}}


def _object(required: list[str], **properties) -> dict:
    schema = {"type": "object", "properties": properties}
    if required:  # OpenAPI 3.0: a required list has at least one name
        schema["required"] = required
    return schema


INTEGER = {"type": "integer"}
STRING = {"type": "string"}
PROBLEM = _object(["index", "key", "field", "message"], index={"type": "integer", "nullable": True},
                  key={"type": "string", "nullable": True}, field={"type": "string", "nullable": True},
                  message=STRING)
UPLOAD = _object(
    ["version", "features", "report"],
    version={"type": "integer", "nullable": True, "description": "the new version; the current one for a dry run"},
    features=INTEGER,
    report=_object(["layer", "errors", "warnings"], layer=STRING, errors={"type": "array", "items": PROBLEM},
                   warnings={"type": "array", "items": PROBLEM}, format=STRING,
                   source_crs={"type": "string", "nullable": True}, encoding={"type": "string", "nullable": True},
                   notes=_strings(), impact={"type": "object", "description": "what storing it does to the "
                                             "current version: removed, added, changed, per district"}),
    preview={"type": "object", "description": "with preview=1: the parsed features (index and key), GeoJSON"},
)

SCHEMAS = {
    "Error": _object(["error"], error=_object(
        ["code", "message", "details"], code=STRING, message=STRING,
        details={"type": "array", "items": {}, "description": "problems, allowed values, ..."})),
    "Link": _object(["href", "rel"], href=STRING, rel=STRING, type=STRING, title=STRING),
    "LandingPage": _object(["links"], title=STRING, description=STRING, links=_ref_array("Link")),
    "Conformance": _object(["conformsTo"], conformsTo=_strings()),
    "Collection": _object(
        ["id", "links"], id=STRING, title=STRING, description=STRING,
        itemType={"type": "string", "enum": ["feature"]}, crs=_strings(), storageCrs=STRING,
        links=_ref_array("Link"), numberOfFeatures={"type": "integer", "minimum": 0},
        version={"type": "integer", "minimum": 1}, updated={"type": "string", "format": "date-time"},
        extent=_object([], spatial=_object(["bbox"], crs=STRING, bbox={
            "type": "array", "minItems": 1,
            "items": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}}))),
    "Collections": _object(["collections", "links"], collections=_ref_array("Collection"), links=_ref_array("Link")),
    "Queryables": {"type": "object", "required": ["type", "properties"],
                   "properties": {"type": {"type": "string", "enum": ["object"]}, "title": STRING,
                                  "properties": {"type": "object", "additionalProperties": {"type": "object"}}}},
    "Version": _object(["layer", "version", "time", "message", "features", "sha256"],
                       layer=STRING, version={"type": "integer", "minimum": 1},
                       time={"type": "string", "format": "date-time"},
                       author={"type": "string", "nullable": True, "description": "signed-in readers only"},
                       message=STRING, features={"type": "integer", "minimum": 0}, sha256=STRING,
                       links=_ref_array("Link")),
    "Versions": _object(["collection", "versions"], collection=STRING, versions=_ref_array("Version")),
    "Restored": _object(["version", "features", "restored"], version=INTEGER, features=INTEGER, restored=INTEGER),
    "Diff": _object(
        ["added", "removed", "changed", "counts"], added=_strings(), removed=_strings(),
        changed={"type": "array", "items": _object(
            ["key", "fields", "geometry", "geometry_change", "area_delta_m2"], key=STRING, fields=_strings(),
            geometry={"type": "boolean", "description": "the shape differs by 1 cm or more"},
            geometry_change={"type": "string", "enum": ["moved", "reshaped"], "nullable": True,
                             "description": "moved: the same shape and area, shifted"},
            area_delta_m2={"type": "number"})},
        counts=_object(["added", "removed", "changed", "unchanged"], added=INTEGER, removed=INTEGER,
                       changed=INTEGER, unchanged=INTEGER)),
    "DiffFeatures": _object(["type", "features"], type={"type": "string", "enum": ["FeatureCollection"]},
                            features={"type": "array", "items": _object(["type", "properties"], properties=_object(
                                ["key", "status"], key=STRING,
                                status={"type": "string", "enum": ["added", "removed", "changed"]}))}),
    "Summary": _object(["level", "rows"], level={"type": "string", "enum": list(SUMMARY_LEVELS)},
                       metric_crs=STRING, parameters={"type": "object"},
                       rows={"type": "array", "items": {"type": "object"}}),
    "Upload": UPLOAD,
    "UploadRejected": {"allOf": [_ref("Error"), _ref("Upload")]},
}


# --- parameters -------------------------------------------------------------------------------

def _query(name: str, schema: dict, description: str, **extra) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description, **extra}


def _path(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _f(*formats: str) -> dict:
    return _query("f", {"type": "string", "enum": list(formats)},
                  f"the format: {', '.join(formats)} (default {formats[0]}; also chosen by the Accept header)")


PARAMETERS = {
    "f": _f("json", "html"),
    "bbox": _query("bbox", {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                   "only features that intersect minLon,minLat,maxLon,maxLat (CRS84; in bbox-crs's axis order when "
                   "that is given, e.g. minLat,minLon,maxLat,maxLon for EPSG:4490; 6 numbers: 3D, heights ignored)",
                   style="form", explode=False),
    "crs": _query("crs", {"type": "string", "format": "uri", "enum": list(OUTPUT_CRS), "default": CRS84_URI},
                  "the CRS of the coordinates answered (OGC API - Features Part 2), in its own axis order: "
                  "EPSG:4326 and EPSG:4490 (CGCS2000) latitude first, EPSG:4549/4550 (CGCS2000 Gauss-Kruger "
                  "CM 120°E/123°E) northing first, CRS84 and EPSG:3857 x first; the Content-Crs header names it"),
    "bbox-crs": _query("bbox-crs", {"type": "string", "format": "uri", "enum": list(OUTPUT_CRS),
                                    "default": CRS84_URI}, "the CRS bbox is written in, in its own axis order"),
    "offset": _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "skip this many features first"),
    "version": _query("version", {"type": "integer", "minimum": 1},
                      "read this version of the layer instead of the current one"),
    # OGC API - Features Part 3; cql-text: the name GDAL's OAPIF driver looks for (and sends) to push -where down
    "filter": _query("filter", {"type": "string", "maxLength": 4096},
                     "a CQL2 filter: AND, OR, NOT, = <> < > <= >=, LIKE, BETWEEN, IN, IS NULL, CASEI and "
                     "S_INTERSECTS(geometry, POINT/LINESTRING/POLYGON/BBOX(...)) on the queryables, e.g. "
                     "district = '海曙区' AND population > 1000"),
    "filter-lang": _query("filter-lang", {"type": "string", "enum": list(cql.LANGS), "default": "cql2-text"},
                          "the language of filter (cql-text: CQL2 text too)"),
    "filter-crs": _query("filter-crs", {"type": "string", "format": "uri", "enum": list(OUTPUT_CRS),
                                        "default": CRS84_URI},
                         "the CRS of the filter's geometries, in its own axis order (EPSG:4490 latitude first, "
                         "the Gauss–Krüger zones northing first); CRS84 lon/lat by default"),
    "sortby": _query("sortby", {"type": "array", "minItems": 1,
                                "items": {"type": "string", "pattern": r"^[+-]?[^,+-][^,]*$"}},
                     "sort by these properties: +name (ascending, the default), -population (descending); "
                     "comma-separated, the first deciding first, ties in key order", style="form", explode=False),
    "properties": _query("properties", {"type": "array", "items": {"type": "string"}},
                         "only these properties in each feature (comma-separated)", style="form", explode=False),
    "skipGeometry": _query("skipGeometry", {"type": "boolean", "default": False},
                           "true: the features without their geometry (null)"),
}
CQL_PARAMETERS = ("filter", "filter-lang", "filter-crs", "sortby", "properties", "skipGeometry")

_ANALYSIS_HELP = {
    "radius_community_m": "catchment radius of a community centre, metres",
    "radius_street_m": "catchment radius of a street centre, metres",
    "radius_district_m": "catchment radius of a district centre, metres",
    "covered_ratio": "a grid is covered from this share of its area in a catchment",
    "partial_ratio": "a grid is partly covered from this share (at most covered_ratio)",
    "sliver_m2": "tiling gaps and overlaps smaller than this are ignored, m²",
    "sliver_width_m": "tiling gaps and overlaps thinner than this are ignored, metres",
    "walk_access_m": "network catchments: the land within this many metres of a road reached",
    "catchment": "disc (as the crow flies) or network (along the walkable roads; discs while there are none)",
    "life_circles_m": "network catchments: the walking distances (metres, comma-separated) the summaries count "
                      "people within (ring_{d}_population)",
}


def _analysis_parameter(name: str) -> dict:
    schema = {"type": "number", "minimum": 0}
    if name == "catchment":
        schema = {"type": "string", "enum": list(CATCHMENTS)}
    elif name == "life_circles_m":
        schema = {"type": "array", "items": {"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                                     "maximum": MAX_RADIUS_M},
                  "maxItems": MAX_LIFE_CIRCLES}
        return _query(name, schema, f"what if: {_ANALYSIS_HELP[name]} (default: the server's setting; a signed-in "
                                    "user only, unless GRIDMAP_PUBLIC_WHATIF=1)", style="form", explode=False)
    elif name.endswith("_ratio"):
        schema["maximum"] = 1
    elif name.startswith("radius_"):
        schema["maximum"] = MAX_RADIUS_M
    return _query(name, schema, f"what if: {_ANALYSIS_HELP.get(name, name)} (default: the server's setting; "
                                "a signed-in user only, unless GRIDMAP_PUBLIC_WHATIF=1)")


def _analysis_parameters() -> list[dict]:
    """What-if parameters of the coverage analysis (derived collections and the summary)."""
    return [_param_ref(f"analysis.{f.name}") for f in fields(Params)]


def _filter_parameter(field: Field) -> dict:
    """Any value may be asked for (it then matches nothing): no pattern or minimum, only the type and choices."""
    schema = {k: v for k, v in field_schema(field).items()
              if k not in ("nullable", "description", "pattern", "minimum")}
    if "enum" in schema:
        schema["enum"] = [c for c in schema["enum"] if c is not None]
    return _query(field.name, schema, f"only features whose {field.name} is this value"
                                      + (f" ({field.description})" if field.description else ""))


def _filters(layer: Layer) -> list[dict]:
    """One query parameter per property: ``?district=海曙区`` keeps the features whose value is that."""
    return [_param_ref(f"{layer.name}.{f.name}") for f in layer.fields if f.kind != "boolean"]  # (geodata.query)


def _parameters(hidden: frozenset[str]) -> dict:
    """Shared parameters, each collection's property filters and the analysis what-ifs, by name."""
    params = dict(PARAMETERS)
    for cid in collection_ids():
        layer = layer_of(cid).without(hidden)
        params.update({f"{cid}.{f.name}": _filter_parameter(f) for f in layer.fields if f.kind != "boolean"})
    params.update({f"analysis.{f.name}": _analysis_parameter(f.name) for f in fields(Params)})
    return params


# --- responses --------------------------------------------------------------------------------

def _content(schema: dict, media_type: str = JSON, html: bool = False) -> dict:
    content = {media_type: {"schema": schema}}
    if html:
        content[HTML] = {"schema": {"type": "string"}}
    return content


def _error(description: str) -> dict:
    """JSON; asked with f=html, the error page."""
    return {"description": description, "content": _content(_ref("Error"), html=True)}


ERRORS = {
    "400": _error("a bad parameter"),
    "401": _error("reading needs a signed-in user or a valid API token (GRIDMAP_PUBLIC_READ=0), so do what-ifs "
                  "(unless GRIDMAP_PUBLIC_WHATIF=1); or a bad token"),
    "403": _error("the user's role does not allow this"),
    "404": _error("no such collection, feature, version or format"),
    "412": _error("If-Match names a version that is no longer the current one"),
    "413": _error("the file is larger than GRIDMAP_MAX_UPLOAD_MB (any other body: GRIDMAP_MAX_JSON_MB)"),
    "415": _error("not a format gridmap reads, or the content is not what its name says"),
    "422": _error("the work needs more memory than a job may use (GRIDMAP_JOB_MEMORY_MB)"),
    "429": {**_error("too many failed sign-ins or bad API tokens from this address or for this account"),
            "headers": {"Retry-After": {"description": "seconds until a try is allowed again",
                                        "schema": {"type": "integer"}}}},
    "503": {**_error("busy with heavy work, or the job went over its time limit (GRIDMAP_JOB_TIMEOUT_S)"),
            "headers": {"Retry-After": {"description": "seconds to wait before trying again",
                                        "schema": {"type": "integer"}}}},
    "507": _error("the server's disk is full: nothing was stored"),
}
JOB_ERRORS = ("422", "503")  # routes whose work may run as a job (geodata.jobs)
RESPONSES = {**ERRORS, "304": {"description": "not modified: If-None-Match names the current ETag"},
             "414": _error("the request line is over 4 KB: the HTTP server refuses it before the app sees it")}
HEADERS = {"ETag": {"description": "a strong validator: send it back in If-None-Match", "schema": STRING}}
ETAG = {"ETag": {"$ref": "#/components/headers/ETag"}}
CONTENT_CRS = {"Content-Crs": {"description": "the CRS of the coordinates, as <URI> (OGC API - Features Part 2)",
                               "schema": STRING}}


def _response_ref(code: str) -> dict:
    return {"$ref": f"#/components/responses/{code}"}


def _ok(description: str, content: dict, **headers) -> dict:
    return {"description": description, "content": content, "headers": {**ETAG, **headers}}


def _read(summary: str, ok: dict, *errors: str, tag: str = OGC, parameters: list | None = None,
          description: str = "") -> dict:
    op = {"tags": [tag], "summary": summary, "parameters": parameters or [],
          "responses": {"200": ok, **{code: _response_ref(code) for code in ("304", "400", "401", *errors, "414")}}}
    if description:
        op["description"] = description
    return op


def _write(summary: str, responses: dict, *errors: str, tag: str, parameters: list, **extra) -> dict:
    return {"tags": [tag], "summary": summary, "parameters": parameters, **extra,
            "security": [{"bearerAuth": []}],
            "responses": {**responses, **{code: _response_ref(code)
                                          for code in ("400", "401", "403", *errors, "413", "429", "507")}}}


IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": STRING,
            "description": 'store only if the current version is this one: "3" (or * for any)'}


# --- operations, by endpoint ------------------------------------------------------------------

def _landing(ctx: dict, values: dict) -> dict:
    return _read("the landing page: links to the API description, conformance and collections",
                 _ok("the landing page", _content(_ref("LandingPage"), html=True)), parameters=[_param_ref("f")])


def _conformance(ctx: dict, values: dict) -> dict:
    return _read("the conformance classes this server implements",
                 _ok("conformance classes", _content(_ref("Conformance"), html=True)), parameters=[_param_ref("f")])


def _openapi(ctx: dict, values: dict) -> dict:
    content = {MEDIA_TYPE: {"schema": {"type": "object"}}, HTML: {"schema": {"type": "string"}}}
    return _read("this API description (OpenAPI 3.0); f=html lists the routes", _ok("the API description", content),
                 parameters=[_param_ref("f")])


def _collections(ctx: dict, values: dict) -> dict:
    return _read("the collections: stored layers and those derived by the coverage analysis",
                 _ok("the collections", _content(_ref("Collections"), html=True)), parameters=[_param_ref("f")])


def _collection(ctx: dict, values: dict) -> dict:
    cid = values["collection_id"]
    return _read(f"the collection '{cid}': {layer_of(cid).title}",
                 _ok("the collection", _content(_ref("Collection"), html=True)), "404", parameters=[_param_ref("f")])


def _queryables(ctx: dict, values: dict) -> dict:
    cid = values["collection_id"]
    return _read(f"the properties '{cid}' items can be filtered by, as JSON Schema",
                 _ok("queryables", _content(_ref("Queryables"), SCHEMA_JSON, html=True)), "404",
                 parameters=[_param_ref("f")])


def _stored_or_analysis(cid: str) -> list[dict]:
    return [_param_ref("version")] if cid in LAYERS else _analysis_parameters()


def _items(ctx: dict, values: dict) -> dict:
    cid = values["collection_id"]
    layer = layer_of(cid).without(ctx["hidden"])
    limit = _query("limit", {"type": "integer", "minimum": 1, "maximum": ctx["max_items"], "default": 10},
                   f"at most this many features (default 10, at most {ctx['max_items']}: larger values are clamped)")
    params = [_param_ref("f"), _param_ref("bbox"), _param_ref("bbox-crs"), _param_ref("crs"), limit,
              _param_ref("offset"), *_stored_or_analysis(cid), *map(_param_ref, CQL_PARAMETERS), *_filters(layer)]
    content = _content(_ref(f"{cid}.collection"), GEOJSON, html=True)
    return _read(f"features of '{cid}', a page at a time (follow the next links)",
                 _ok("a page of features", content, **CONTENT_CRS), "404", *JOB_ERRORS, parameters=params,
                 description="Property parameters match exactly; filter takes CQL2 (Part 3: the queryables); "
                             "all combine with each other and with bbox.")


def _item(ctx: dict, values: dict) -> dict:
    cid = values["collection_id"]
    layer = layer_of(cid)
    params = [_path("featureId", STRING, f"the feature's {layer.key}"), _param_ref("f"), _param_ref("crs"),
              *_stored_or_analysis(cid)]
    content = _content(_ref(f"{cid}.feature"), GEOJSON, html=True)
    return _read(f"one feature of '{cid}' by its {layer.key}", _ok("the feature", content, **CONTENT_CRS), "404",
                 *JOB_ERRORS,
                 parameters=params)


def _download(ctx: dict, values: dict) -> dict:
    cid = values["collection_id"]
    formats = download_formats()
    ext = _path("ext", {"type": "string", "enum": list(formats)},
                "the file format: " + "; ".join(f"{e}: {label}" for e, (_, label) in formats.items()))
    content = {media_type: {"schema": _ref(f"{cid}.collection") if e == "geojson" else {"type": "string",
                                                                                       "format": "binary"}}
               for e, (media_type, _) in formats.items()}
    disposition = {"Content-Disposition": {"description": "attachment; the file name names the version",
                                           "schema": STRING}}
    return _read(f"the whole of '{cid}' as a file", _ok("the file", content, **disposition), "404", *JOB_ERRORS,
                 tag="downloads",
                 parameters=[ext, _param_ref("bbox"), _param_ref("bbox-crs"), _query(
                     "crs", {"type": "string", "format": "uri", "enum": list(OUTPUT_CRS), "default": CRS84_URI},
                     "the file's CRS (not for kml: WGS84 only); coordinates easting (longitude) first, as files "
                     "are read; GeoJSON in a CRS other than WGS84 names it in a crs member"),
                             *_stored_or_analysis(cid), *map(_param_ref, CQL_PARAMETERS[:-1]),
                             *_filters(layer_of(cid).without(ctx["hidden"]))],
                 description="The same property filters and bbox as items; no paging. "
                             "Stored layers' files are named after their version.")


def _summary(ctx: dict, values: dict) -> dict:
    params = [_query("level", {"type": "string", "enum": list(SUMMARY_LEVELS), "default": "district"},
                     "one row per unit of this level; total: one row for the whole dataset; city: one row a "
                     "city (the whole dataset's one row when the grids name no city)"),
              _f("json", "csv"),
              *(_query(level, STRING, f"only the rows inside this {level}") for level in UNIT_KEYS),
              *_analysis_parameters()]
    content = {JSON: {"schema": _ref("Summary")}, "text/csv": {"schema": STRING}}
    return _read("coverage and gaps summed per unit: grids, population, covered share, gaps by kind",
                 _ok("the summary", content), *JOB_ERRORS, tag="summary", parameters=params)


def _summary_history(ctx: dict, values: dict) -> dict:
    coverage = _object(["population", "covered_population", "covered_share"], population=INTEGER,
                       covered_population=INTEGER, covered_share={"type": "number", "nullable": True})
    point = _object(["time", "versions", "whole"], time=STRING,
                    versions={"type": "object", "additionalProperties": {"type": "integer", "nullable": True}},
                    whole=coverage, unit=coverage)
    body = _object(["limit", "states", "shown", "points"], limit=INTEGER, states=INTEGER, shown=INTEGER,
                   points={"type": "array", "items": point, "description": "newest first"})
    params = [_query("limit", {"type": "integer", "minimum": 1, "maximum": HISTORY_LIMIT, "default": HISTORY_LIMIT},
                     "how many of the last versions of the data"),
              *(_query(level, STRING, f"also the share of this {level}") for level in UNIT_KEYS)]
    return _read("covered share at each of the last versions of the grids and centres (old ones computed when "
                 "first asked for, then kept)", _ok("the shares, newest first", _content(body)), *JOB_ERRORS,
                 tag="summary", parameters=params)


def _versions(ctx: dict, values: dict) -> dict:
    return _read(f"the versions of '{values['collection_id']}', newest first",
                 _ok("versions", _content(_ref("Versions"))), "404", tag="versions")


def _diff(ctx: dict, values: dict) -> dict:
    params = [_query("from", {"type": "integer", "minimum": 1}, "the older version (default: the one before 'to')"),
              _query("to", {"type": "integer", "minimum": 1}, "the newer version (default: the current one)"),
              _f("json", "geojson")]
    content = {JSON: {"schema": _ref("Diff")}, GEOJSON: {"schema": _ref("DiffFeatures")}}
    return _read(f"what changed in '{values['collection_id']}' between two versions",
                 _ok("the changes", content), "404", tag="versions", parameters=params)


def _restore(ctx: dict, values: dict) -> dict:
    cid = values["collection_id"]
    created = {"description": "stored as a new version",
               "headers": {"ETag": {"description": 'the new version, "N"', "schema": STRING}},
               "content": _content(_ref("Restored"))}
    return _write(f"editors: make version n of '{cid}' current again, as a new version", {"201": created},
                  "404", "412", tag="versions",
                  parameters=[_path("n", {"type": "integer", "minimum": 1}, "the version to restore"), IF_MATCH])


def _upload(ctx: dict, values: dict) -> dict:
    layer = values["layer"]
    flag = {"type": "string", "enum": ["1", "true", "yes", "0", "false", "no"], "default": "0"}
    form = {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": ".geojson/.json, .zip (Shapefile), .gpkg or .kml; the name's extension counts"},
            "message": {"type": "string", "maxLength": 500, "description": "what changed, for the history"},
            "mode": {"type": "string", "enum": ["replace", "merge"], "default": "replace",
                     "description": "merge: the file's features replace those with the same key, others stay"},
            "dry_run": {**flag, "description": "check only, store nothing (200); the report's impact says what "
                                               "storing would do"},
            "confirm": {"type": "string", "enum": ["replace"],
                        "description": "store a replace that removes ≥ 10 % of the features or all of a district's"},
            "preview": {**flag, "description": "add the parsed features to the answer, for a map"},
            "source_crs": {"type": "string", "description": "the file's CRS when it does not say, e.g. EPSG:4549"},
            "encoding": {"type": "string", "description": "a Shapefile's encoding when it has no .cpg, e.g. GBK"},
            "coordinates": {"type": "string", "enum": ["wgs84", "gcj02", "bd09"], "default": "wgs84",
                            "description": "gcj02/bd09: converted from Chinese web maps' datums"},
            "lang": {"type": "string", "enum": ["zh", "en"], "description": "the report's language"},
        },
    }
    upload = _content(_ref("Upload"))
    responses = {
        "201": {"description": "stored as a new version", "content": upload,
                "headers": {"Location": {"description": "the collection", "schema": STRING},
                            "ETag": {"description": 'the new version, "N"', "schema": STRING}}},
        "200": {"description": "dry run: the file would be stored", "content": upload},
        "409": {"description": "not stored: the replace removes ≥ 10 % of the features or all of a district's; "
                               "the report's impact says what, confirm=replace stores it",
                "content": _content(_ref("UploadRejected"))},
        # a file that cannot be read at all (no .shp in the zip, not the format named) has no report
        "422": {"description": "rejected: the report lists every error (an unreadable file: the error alone)",
                "content": _content({"anyOf": [_ref("UploadRejected"), _ref("Error")]})},
    }
    return _write(f"editors: replace (or merge into) '{layer}' from a file, as one new version", responses,
                  "404", "412", "413", "415", "503", tag="uploads", parameters=[IF_MATCH],
                  requestBody={"required": True, "content": {"multipart/form-data": {"schema": form}}})


def _feature_write(method: str):
    """OGC API – Features Part 4 on a stored layer: each write one new version, checked as an upload."""
    def build(ctx: dict, values: dict) -> dict:
        cid = values["collection_id"]
        key = layer_of(cid).key
        feature = {"description": "the feature as stored", "content": _content(_ref(f"{cid}.feature"), GEOJSON),
                   "headers": {"ETag": {"description": "the feature's own strong ETag: send it in If-Match",
                                        "schema": STRING},
                               "X-Gridmap-Version": {"description": "the new version", "schema": STRING}}}
        rejected = {"description": "not stored: the report lists every error, as for an upload",
                    "content": _content(_ref("UploadRejected"))}
        message = {"name": "X-Gridmap-Message", "in": "header", "required": False, "schema": STRING,
                   "description": "what changed, for the history (UTF-8 or percent-encoded; or the message parameter)"}
        params = [message, _query("message", STRING, "what changed, for the history")]
        if method != "post":
            params = [_path("featureId", STRING, f"the feature's {key}"), *params,
                      {**IF_MATCH, "description": "store only if the feature is still the one of this ETag "
                                                  "(as GET answered it; * for any); without it the write applies "
                                                  "to the current feature"}]
        conflict = {"409": _error(f"a feature with that {key} exists already")} if method == "post" else {}
        if method == "post":
            body = {"oneOf": [_ref(f"{cid}.feature"), _ref(f"{cid}.collection")]}
            summary, responses = (f"editors: add a feature (or a FeatureCollection) to '{cid}', as one new version",
                                  {"201": {**feature, "headers": {**feature["headers"], "Location": {
                                      "description": "the new feature", "schema": STRING}}}})
        elif method == "put":
            body = _ref(f"{cid}.feature")
            summary, responses = f"editors: replace one feature of '{cid}', as one new version", {"200": feature}
        elif method == "patch":
            body = {"type": "object", "properties": {"properties": {"type": "object"}, "geometry": {"type": "object"}}}
            summary, responses = (f"editors: change some properties (a JSON merge patch: null removes) and/or the "
                                  f"geometry of one feature of '{cid}', as one new version", {"200": feature})
        else:
            summary, responses = (f"editors: remove one feature of '{cid}', as one new version",
                                  {"204": {"description": "removed"}})
        responses.update({"422": rejected, **conflict})
        extra = {} if method == "delete" else {"requestBody": {"required": True, "content": {
            GEOJSON: {"schema": body}, JSON: {"schema": body},
            **({"application/merge-patch+json": {"schema": body}} if method == "patch" else {})}}}
        return _write(summary, responses, "404", "412", "503", tag=OGC, parameters=params, **extra)
    return build


def _recommendations(ctx: dict, values: dict) -> dict:
    site = {"type": "object", "properties": {
        "rank": INTEGER, "new_population": INTEGER, "cumulative_population": INTEGER,
        "covered_share": {"type": "number"}, "level": STRING, "district": STRING, "street": STRING,
        "community": STRING}}
    body = {"type": "object", "required": ["type", "features", "solver"], "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": {"type": "object", "properties": {"properties": site}}},
        "solver": {"type": "string", "enum": ["greedy", "mclp"], "description": "which solver's answer this is"},
        "population": INTEGER,
        "covered_before": {**INTEGER, "description": "people covered now: /api/summary's covered_population of the "
                                                     "same grids; each site's cumulative_population adds its gain"},
        "reason": {**STRING, "nullable": True, "description": "why fewer than k sites came back"}}}
    params = [_query("level", {"type": "string", "enum": list(LEVELS), "default": "community"},
                     "the level of the centres to add (its catchment radius applies)"),
              _query("k", {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}, "how many sites"),
              _query("solver", {"type": "string", "enum": ["auto", "greedy", "mclp"], "default": "auto"},
                     "auto: the exact MCLP beside greedy for k ≤ 10, the better kept"),
              _f("json", "csv"),
              *(_query(level, STRING, f"only sites and people inside this {level}") for level in UNIT_KEYS),
              *_analysis_parameters()]
    return _read("k new centre sites that newly cover the most people",
                 _ok("the sites, best first", {GEOJSON: {"schema": body}, "text/csv": {"schema": STRING}}),
                 *JOB_ERRORS, tag="planning", parameters=params)


def _whatif(ctx: dict, values: dict) -> dict:
    proposal = {"type": "object", "required": ["type", "features"], "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "maxItems": 200, "items": {"type": "object"},
                     "description": "Points, each with properties.level: district, street or community"}}}
    coverage = _object(["covered_population", "covered_share"], covered_population=INTEGER,
                       covered_share={"type": "number", "nullable": True})
    name = {"type": "string", "nullable": True}
    site = _object(["level"], level=STRING, city=name, district=name, street=name, community=name)
    effect = _object(["level", "population", "before", "after"], level={"type": "string", "enum": ["city", "district",
                                                                                                 "street"]},
                     city=name, district=name, street=name, population=INTEGER, before=coverage, after=coverage)
    answer = _object(["proposed", "sites", "effects", "before", "after", "level", "rows"], proposed=INTEGER,
                     sites={"type": "array", "items": site, "description": "the unit each proposed centre stands in"},
                     effects={"type": "array", "items": effect,
                              "description": "the city, district and street of each proposed centre, each once"},
                     before=coverage, after=coverage, level=STRING, rows={"type": "array", "items": {"type": "object"}})
    return {"tags": ["planning"], "summary": "coverage as if the proposed centres existed; nothing is stored",
            "description": "A signed-in user only, unless GRIDMAP_PUBLIC_WHATIF=1.",
            "parameters": [_query("level", {"type": "string", "enum": list(SUMMARY_LEVELS), "default": "district"},
                                  "the level of the summary rows"),
                           *(_query(level, STRING, f"only the grids inside this {level}: before and after are "
                                                   "that unit's") for level in UNIT_KEYS),
                           *_analysis_parameters()],
            "requestBody": {"required": True, "content": {JSON: {"schema": proposal}}},
            "responses": {"200": {"description": "before and after", "content": _content(answer)},
                          **{code: _response_ref(code) for code in ("400", "401", "413", *JOB_ERRORS, "414")}}}


def _search(ctx: dict, values: dict) -> dict:
    params = [_query("q", {"type": "string", "minLength": 1, "maxLength": 100},
                     "a grid's or centre's code (whole or its beginning), or (part of) a name: 海曙 finds 海曙区",
                     required=True),
              _query("limit", {"type": "integer", "minimum": 1, "maximum": 50, "default": 10}, "hits at most")]
    hit = {"type": "object", "required": ["kind", "id", "name", "parents", "label", "bbox", "href"], "properties": {
        "kind": {"type": "string", "enum": ["city", "district", "street", "community", "grid", "center"]},
        "id": STRING, "name": STRING, "parents": {"type": "array", "items": STRING}, "label": STRING,
        "bbox": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "unit": {"type": "object", "additionalProperties": STRING}, "href": STRING}}
    schema = {"type": "object", "properties": {"query": STRING, "numberReturned": {"type": "integer"},
                                               "hits": {"type": "array", "items": hit}}}
    return _read("grids, units and centres by code or (partial) name, best first, each with its parents",
                 _ok("the hits", _content(schema)), tag="search", parameters=params)


TILES = "tiles"  # the tag of OGC API – Tiles' operations
_TMS = _path("tileMatrixSetId", {"type": "string", "enum": ["WebMercatorQuad"]}, "the tile matrix set")


def _matrix_sets(ctx: dict, values: dict) -> dict:
    return _read("the tile matrix sets tiles are cut on", _ok("tile matrix sets", _content({"type": "object"})),
                 tag=TILES)


def _matrix_set(ctx: dict, values: dict) -> dict:
    return _read("a tile matrix set's definition (OGC 2D Tile Matrix Set, JSON)",
                 _ok("the tile matrix set", _content({"type": "object"})), "404", tag=TILES, parameters=[_TMS])


def _tilesets(ctx: dict, values: dict) -> dict:
    return _read(f"the vector tilesets of '{values['collection_id']}'",
                 _ok("tilesets", _content({"type": "object"})), "404", tag=TILES)


def _tileset(ctx: dict, values: dict) -> dict:
    return _read(f"the vector tileset of '{values['collection_id']}': its zoom levels, limits, layer and tile link",
                 _ok("the tileset", _content({"type": "object"})), "404", tag=TILES, parameters=[_TMS])


def _tile(ctx: dict, values: dict) -> dict:
    number = {"type": "integer", "minimum": 0}
    params = [_TMS, _path("tileMatrix", {**number, "maximum": 22}, "the zoom level"),
              _path("tileRow", number, "the row, 0 at the top"), _path("tileCol", number, "the column, 0 at the west")]
    ok = _ok("the tile (Mapbox Vector Tile)", {"application/vnd.mapbox-vector-tile": {
        "schema": {"type": "string", "format": "binary"}}})
    op = _read(f"a vector tile of '{values['collection_id']}'", ok, "404", tag=TILES, parameters=params)
    op["responses"]["204"] = {"description": "nothing of the layer in this tile (or not drawn at this zoom)"}
    return op


OPERATIONS = {
    "api.landing": _landing, "api.conformance": _conformance, "api.openapi": _openapi,
    "api.collections": _collections, "api.collection": _collection, "api.queryables": _queryables,
    "api.items": _items, "api.item": _item, "api.download": _download, "api.summary": _summary, "api.summary_history": _summary_history,
    "uploads.versions": _versions, "uploads.diff": _diff, "uploads.restore": _restore,
    "uploads.upload_layer": _upload, "planning.recommendations": _recommendations, "planning.whatif": _whatif,
    "tiles.matrix_sets": _matrix_sets, "tiles.matrix_set": _matrix_set, "tiles.tilesets": _tilesets,
    "tiles.tileset": _tileset, "tiles.tile": _tile, "api.search": _search,
    **{f"transactions.{name}": _feature_write(method)
       for name, method in (("create", "post"), ("replace", "put"), ("update", "patch"), ("delete", "delete"))},
}



def _changes(ctx: dict, values: dict) -> dict:
    """An edit on the map: features written and keys removed in one layer, as one version."""
    cid = values["collection_id"]
    body = {"type": "object", "required": ["type", "features"], "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "minItems": 1, "items": _ref(f"{cid}.feature"),
                     "description": "the new and changed features, whole"},
        "removed": {**_strings(), "description": "keys of the features to remove"},
        "if_match": {"type": "object", "additionalProperties": STRING,
                     "description": "key → the ETag the feature had when loaded (412 when it changed since); a "
                                    "feature written without one is new (409 when its key exists)"}}}
    rejected = {"description": "not stored: the report lists every error, as for an upload",
                "content": _content(_ref("UploadRejected"))}
    message = {"name": "X-Gridmap-Message", "in": "header", "required": False, "schema": STRING,
               "description": "what changed, for the history (UTF-8 or percent-encoded; or the message parameter)"}
    return _write(f"editors: a change set of '{cid}' (several features written and removed) as one new version",
                  {"200": {"description": "stored: the written features (or, for a dry run, the report)",
                           "content": _content(_ref(f"{cid}.collection"), GEOJSON)}, "422": rejected, "409":
                   _error("a new feature's key exists already")},
                  "404", "412", "503", tag=OGC,
                  parameters=[message, _query("message", STRING, "what changed, for the history"),
                              _query("dry_run", {"type": "boolean"}, "check only: the report, nothing stored")],
                  requestBody={"required": True, "content": {GEOJSON: {"schema": body}, JSON: {"schema": body}}})


def _geometry_helper(what: str, body: dict):
    def build(ctx: dict, values: dict) -> dict:
        return _write(f"editors: {what} (nothing stored)", {"200": {"description": "GeoJSON",
                                                                    "content": _content({"type": "object"}, GEOJSON)},
                                                            "422": _error("not possible with these shapes")},
                      tag=OGC, parameters=[], requestBody={"required": True, "content": {JSON: {"schema": body}}})
    return build


OPERATIONS.update({
    "transactions.changes": _changes,
    "transactions.split": _geometry_helper("a polygon cut along a line drawn across it: the parts", {
        "type": "object", "required": ["geometry", "line"],
        "properties": {"geometry": {"type": "object"}, "line": {"type": "object"}}}),
    "transactions.union": _geometry_helper("neighbouring polygons joined into one", {
        "type": "object", "required": ["geometries"],
        "properties": {"geometries": {"type": "object", "additionalProperties": {"type": "object"}}}}),
})
# Path variables: the values each endpoint is documented for (one path per value), or a name for a {parameter}.
EXPANDED = {"collection_id": collection_ids, "layer": lambda: list(LAYERS)}
# derived collections have no versions, and are not written
STORED_ONLY = {"uploads.versions", "uploads.diff", "uploads.restore", "transactions.create", "transactions.replace",
               "transactions.update", "transactions.delete", "transactions.changes", "transactions.split",
               "transactions.union"}
RENAMED = {"feature_id": "featureId", "number": "n", "tms": "tileMatrixSetId", "z": "tileMatrix", "y": "tileRow",
           "x": "tileCol"}


def _param_ref(name: str) -> dict:
    return {"$ref": f"#/components/parameters/{name}"}


def api_rules(app: Flask) -> list[Rule]:
    return sorted((r for r in app.url_map.iter_rules()
                   if r.rule == "/api" or r.rule.startswith("/api/")),
                  key=lambda r: r.rule)


def _expand(rule: Rule) -> list[tuple[str, dict]]:
    """(path relative to /api, values of the expanded variables) for each path the rule stands for."""
    combos: list[dict] = [{}]
    for name in rule.arguments:
        if name in EXPANDED:
            options = EXPANDED[name]()
            if name == "collection_id" and rule.endpoint in STORED_ONLY:
                options = list(LAYERS)
            combos = [{**c, name: v} for c in combos for v in options]
    out = []
    for values in combos:
        def sub(match: re.Match) -> str:
            name = match.group(1)
            return str(values[name]) if name in values else "{" + RENAMED.get(name, name) + "}"

        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", sub, rule.rule).removeprefix("/api") or "/"
        out.append((path, values))
    return out


def _fallback(rule: Rule, values: dict, view) -> dict:
    """An endpoint :data:`OPERATIONS` does not know: its docstring and its path parameters."""
    doc = (view.__doc__ or rule.endpoint).strip().splitlines()[0] if view else rule.endpoint
    params = [_path(RENAMED.get(a, a), STRING, a) for a in sorted(rule.arguments) if a not in values]
    return {"summary": doc, "parameters": params, "x-undocumented": True,
            "responses": {"200": {"description": "OK"}, "400": _response_ref("400"), "404": _response_ref("404")}}


def undocumented(app: Flask) -> list[str]:
    return sorted({r.endpoint for r in api_rules(app) if r.endpoint not in OPERATIONS})


def document(app: Flask, server_url: str, hidden: frozenset[str] = frozenset()) -> dict:
    """The whole description; ``server_url`` is the landing page's URL (``http://host/api``).

    ``hidden``: fields this reader may not see (``server.privacy``), left out of the property
    schemas and filters as they are left out of the answers.
    """
    ctx = {"max_items": app.config["MAX_ITEMS"], "hidden": hidden}
    paths: dict[str, dict] = {}
    for rule in api_rules(app):
        for path, values in _expand(rule):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                build = OPERATIONS.get(rule.endpoint)
                op = build(ctx, values) if build else _fallback(rule, values, app.view_functions.get(rule.endpoint))
                op["operationId"] = "_".join([method.lower(), rule.endpoint.replace(".", "_"),
                                              *(str(v) for v in values.values())])
                paths.setdefault(path, {})[method.lower()] = op
    schemas = dict(SCHEMAS)
    for cid in collection_ids():
        layer = layer_of(cid).without(hidden)
        schemas[f"{cid}.properties"] = _properties_schema(layer)
        schemas[f"{cid}.feature"] = _feature_schema(layer)
        schemas[f"{cid}.selected"] = {k: v for k, v in _properties_schema(layer).items() if k != "required"}
        schemas[f"{cid}.selected-feature"] = _feature_schema(layer, "selected")
        schemas[f"{cid}.collection"] = _collection_schema(layer)
    return {
        "openapi": "3.0.3",
        "info": {"title": "gridmap", "version": "1.0.0",
                 "description": "Governance grids (网格) and party-and-public service centres (党群服务中心) "
                                "of Ningbo, with service coverage and gaps, as OGC API - Features. "
                                "Reading is open unless GRIDMAP_PUBLIC_READ=0 (then send a bearer token); "
                                "writes need an editor's token. Errors are {\"error\": {code, message, details}}."},
        "servers": [{"url": server_url}],
        "tags": [{"name": OGC}, {"name": TILES}, {"name": "search"}, {"name": "downloads"}, {"name": "summary"},
                 {"name": "planning"}, {"name": "versions"}, {"name": "uploads"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": _parameters(hidden),
            "responses": RESPONSES,
            "headers": HEADERS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "an API token from `python -m server user add`"}},
        },
    }
