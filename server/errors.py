"""The one place that turns errors into responses: JSON for the API, HTML for browsers."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from geodata.errors import GridmapError

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 412: "precondition_failed",
          413: "too_large", 415: "unsupported_media_type", 422: "unprocessable", 500: "internal_error",
          503: "service_unavailable"}


def wants_json() -> bool:
    if request.path.startswith("/api") or request.path == "/healthz":
        return request.args.get("f") != "html"
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, code: str, message: str, details: list | None = None):
    if wants_json():
        body = {"error": {"code": code, "message": message, "details": details or []}}
        return make_response(jsonify(body), status)
    return make_response(render_template("error.html", status=status, message=message, details=details or []), status)


def register(app: Flask) -> None:
    @app.errorhandler(GridmapError)
    def domain_error(e: GridmapError):
        response = error_response(e.status, e.code, e.message, e.details)
        if e.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="gridmap"'
        if getattr(e, "retry_after", None) is not None:
            response.headers["Retry-After"] = str(e.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        response = error_response(e.code, _CODES.get(e.code, "http_error"), e.description)
        if e.code == 405 and e.valid_methods:
            response.headers["Allow"] = ", ".join(e.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the server failed to answer; the error is logged")
