"""The one place that turns errors into responses: JSON for the API, HTML for browsers, in the reader's
language (server/i18n.py): a domain error's message made with ``geodata.i18n.says`` is said in it, as are
the HTTP errors' own."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from geodata.errors import GridmapError
from geodata.i18n import in_language, known, says
from geodata.store import NO_SPACE

from .i18n import current_language

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 412: "precondition_failed",
          413: "too_large", 415: "unsupported_media_type", 422: "unprocessable", 429: "too_many_requests",
          500: "internal_error", 503: "service_unavailable", 507: "insufficient_storage"}


def wants_json() -> bool:
    if request.path.startswith("/api") or request.path == "/healthz":
        return request.args.get("f") != "html"
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, code: str, message: str, details: list | None = None):
    g.error_message = str(message)  # for the audit line of a refused write (English)
    message = in_language(message, current_language())
    if wants_json():
        body = {"error": {"code": code, "message": message, "details": details or []}}
        return make_response(jsonify(body), status)
    return make_response(render_template("error.html", status=status, message=message, details=details or []), status)


def register(app: Flask) -> None:
    @app.errorhandler(GridmapError)
    def domain_error(e: GridmapError):
        if e.status == 500:  # the server's own fault (a damaged record): the log has it, the client a summary
            log.error("%s on %s %s: %s", e.code, request.method, request.path, e.message)
            return error_response(500, e.code, says("error.server_data"))
        response = error_response(e.status, e.code, e.message, e.details)
        if e.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="gridmap"'
        if getattr(e, "retry_after", None) is not None:
            response.headers["Retry-After"] = str(e.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        response = error_response(e.code, _CODES.get(e.code, "http_error"), _http_message(e))
        if e.code == 405 and e.valid_methods:
            response.headers["Allow"] = ", ".join(e.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        if _no_space(e):  # spooling the upload, unpacking it, or storing it: nothing was stored
            log.error("disk full on %s %s: %s", request.method, request.path, e)
            return error_response(507, "insufficient_storage", says("error.disk_full"))
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", says("error.internal"))


def _http_message(e: HTTPException):
    """Werkzeug's own description of a status, in the reader's language (``http.<status>``); a description
    the service wrote itself as it is."""
    key = f"http.{e.code}"
    if e.description == type(e).description and known(key):
        return says(key)
    return e.description


def _no_space(e: BaseException | None) -> bool:
    """ENOSPC or EDQUOT, raised here or as the cause of what was raised."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, OSError) and e.errno in NO_SPACE:
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False
