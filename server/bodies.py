"""Request bodies within bounds: the size each route accepts and how deep JSON may nest.

- Only upload routes (marked with :func:`large_body`) accept ``GRIDMAP_MAX_UPLOAD_MB``;
  every other route takes at most ``GRIDMAP_MAX_JSON_MB``.  A declared length over the
  limit is a 413 before a byte of the body is read; a chunked body is read up to the
  limit and no further (413 if it goes on).
- Form fields other than files are bounded by Flask's ``MAX_FORM_MEMORY_SIZE``.
- JSON is parsed by the app's provider, which refuses nesting deeper than
  :data:`MAX_JSON_DEPTH` with a 400 (the C parser would otherwise recurse until a
  RecursionError, a 500).
"""

from __future__ import annotations

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge

from geodata.errors import TooLarge
from geodata.i18n import says
from geodata.params import MAX_JSON_DEPTH, loads_json

MIB = 2**20


def large_body(view):
    """Mark a view that takes files: it accepts up to ``GRIDMAP_MAX_UPLOAD_MB``."""
    view.large_body = True
    return view


class JSONProvider(DefaultJSONProvider):
    ensure_ascii = False  # Chinese names stay readable in JSON
    sort_keys = False

    def loads(self, s, **kwargs):
        return loads_json(s, MAX_JSON_DEPTH, **kwargs)


def register(app: Flask) -> None:
    """Call before any other ``before_request`` hook that might read the body (CSRF checks do)."""
    app.json = JSONProvider(app)
    app.config.setdefault("MAX_FORM_MEMORY_SIZE", 500_000)  # Flask's default, stated: a form field's text

    @app.before_request
    def bound_body():
        view = app.view_functions.get(request.endpoint)
        if getattr(view, "large_body", False):
            return  # MAX_CONTENT_LENGTH (GRIDMAP_MAX_UPLOAD_MB) applies
        limit = current_app.config["MAX_JSON_MB"] * MIB
        request.max_content_length = limit  # also cuts off a chunked body that runs over
        too_large = TooLarge(says("error.body_too_large", most=current_app.config["MAX_JSON_MB"]))
        if request.content_length is not None:
            if request.content_length > limit:
                raise too_large
        elif request.environ.get("wsgi.input_terminated"):  # chunked: read it now, up to the limit and no further
            try:
                request.get_data(cache=True)
                request.stream.read(1)  # one byte past the limit: werkzeug raises 413
            except RequestEntityTooLarge:
                raise too_large from None
