"""How the API answers: JSON or HTML, strong ETags and 304s, cache lifetimes, CORS for reads.

- ``f=json|html`` picks the format; without it, ``Accept`` does (``text/html`` → HTML;
  JSON, GeoJSON, ``*/*`` or nothing → JSON).  ``f`` always wins; an unknown ``f`` is a 400.
- Every successful GET under ``/api`` gets a strong ETag (the view's, derived from the
  data's tag, or else a hash of the body) and is answered 304 when ``If-None-Match`` names
  it — also in the ``"<etag>:gzip"`` form Flask-Compress gives a gzipped representation.
- Data is ``Cache-Control: no-cache`` (revalidate: uploads change it); views may set more.
- Reads (GET, HEAD and their preflights) carry ``Access-Control-Allow-Origin`` from
  ``GRIDMAP_CORS_ORIGINS``; writes never do: they carry bearer tokens, and cross-site
  browser writes are not a use case.
"""

from __future__ import annotations

import hashlib

from flask import Flask, Response, current_app, request

from geodata.errors import BadRequest
from geodata.i18n import says

FORMATS = ("json", "html")
READS = ("GET", "HEAD")
CORS_ALLOWED_HEADERS = "Accept, Accept-Language, Authorization, If-None-Match"
CORS_EXPOSED_HEADERS = "ETag, Content-Crs, Content-Disposition, Location"


def wanted(formats: tuple[str, ...] = FORMATS) -> str:
    """The format the request asks for: ``f`` if given (400 if unknown), else by ``Accept``."""
    fmt = request.args.get("f")
    if fmt is not None:
        if fmt not in formats:
            raise BadRequest(says("error.bad_f", formats=", ".join(formats), value=repr(fmt)))
        return fmt
    if "html" in formats:
        best = request.accept_mimetypes.best_match(["application/json", "application/geo+json", "text/html"])
        if best == "text/html":
            return "html"
    return formats[0]


def etag_of(*parts) -> str:
    """A strong ETag naming ``parts`` (the data's tag, the URL, the format...)."""
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:32]


def not_modified(etag: str) -> Response | None:
    """A bodiless 304 when ``If-None-Match`` names ``etag`` (plain or as Flask-Compress marks it)."""
    if request.method not in READS or not request.if_none_match:
        return None
    for candidate in (etag, *(f"{etag}:{algo}" for algo in _compress_algorithms())):
        if request.if_none_match.contains_weak(candidate):  # If-None-Match compares weakly (RFC 9110 §13.1.2)
            response = Response(status=304)
            response.set_etag(candidate)
            response.vary.add("Accept")
            return response
    return None


def _compress_algorithms() -> list[str]:
    """The encodings Flask-Compress could have used for this client."""
    configured = current_app.config.get("COMPRESS_ALGORITHM", "gzip")
    algorithms = [a.strip() for a in configured.split(",")] if isinstance(configured, str) else list(configured)
    return [a for a in algorithms if a in request.accept_encodings]


def register(app: Flask) -> None:
    # Runs before Flask-Compress's own hook (registered earlier; Flask runs them in reverse).
    @app.after_request
    def api_manners(response: Response) -> Response:
        if not request.path.startswith("/api"):
            return response
        response = _cors(response)
        if request.method in READS and response.status_code == 200:
            if response.get_etag()[0] is None and response.is_sequence:
                response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:32])
            if "Cache-Control" not in response.headers:
                response.cache_control.no_cache = True
            response.make_conditional(request)
        elif response.status_code == 304 and "Cache-Control" not in response.headers:
            response.cache_control.no_cache = True
        return response


def _cors(response: Response) -> Response:
    origins = [o.strip() for o in (current_app.config.get("CORS_ORIGINS") or "").split(",") if o.strip()]
    preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    if not origins or not (request.method in READS or preflight):
        return response
    if preflight:
        if request.headers["Access-Control-Request-Method"] not in READS or response.status_code not in (200, 401):
            return response  # a write (never allowed cross-site), or no such route
        response = Response(status=204)  # preflights carry no credentials: a closed server's 401 is no answer
        del response.headers["Content-Type"]
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    origin = request.headers.get("Origin")
    if "*" in origins:
        response.headers["Access-Control-Allow-Origin"] = "*"
    else:
        response.vary.add("Origin")
        if origin not in origins:
            return response
        response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
    return response
