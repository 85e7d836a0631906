"""Which host the service answers as: ``GRIDMAP_PUBLIC_URL`` and ``GRIDMAP_TRUSTED_HOSTS``.

- With ``GRIDMAP_PUBLIC_URL`` (``https://grid.example.gov.cn``, maybe with a path
  prefix such as ``/gridmap``) a small WSGI middleware gives every request that
  scheme, host and prefix (as ``SCRIPT_NAME``), so every ``url_for`` — absolute
  links in ``/api`` documents, the OpenAPI server, redirects — names the public
  address, whatever ``Host`` the client sent.  A proxy may pass the prefix on or
  strip it: both are served.
- ``GRIDMAP_TRUSTED_HOSTS`` (Flask's ``TRUSTED_HOSTS``; ``.example.com`` takes its
  subdomains too) refuses any other ``Host`` with a 400, checked before the rewrite.
- Without a public URL, links follow the request's ``Host``: ``/api`` answers then
  carry ``Vary: Host`` so that no shared cache hands one host's links to another.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import SecurityError
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wsgi import get_host

from geodata.i18n import in_language, says

from .i18n import chosen_language


class PublicURL:
    """WSGI middleware: requests from trusted hosts are seen as made to ``public_url``."""

    def __init__(self, app, public_url: str, trusted_hosts: list[str] | None):
        parts = urlsplit(public_url)
        self.app = app
        self.scheme, self.netloc = parts.scheme, parts.netloc
        self.prefix = parts.path.rstrip("/")
        self.trusted = trusted_hosts

    def __call__(self, environ, start_response):
        if self.trusted is None or host_is_trusted(get_host(environ), self.trusted):
            environ["wsgi.url_scheme"] = self.scheme
            environ["HTTP_HOST"] = self.netloc
            environ.pop("HTTP_X_FORWARDED_HOST", None)
            if self.prefix:
                path = environ.get("PATH_INFO", "")
                if path == self.prefix or path.startswith(self.prefix + "/"):
                    environ["PATH_INFO"] = path[len(self.prefix):] or "/"
                environ["SCRIPT_NAME"] = self.prefix
        # an untrusted Host is left as sent: Flask's TRUSTED_HOSTS check refuses it
        return self.app(environ, start_response)


def parse_public_url(value: str) -> str:
    """``scheme://host[:port][/prefix]``; ValueError otherwise (the server does not start)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"GRIDMAP_PUBLIC_URL must be http(s)://host[:port][/path], not {value!r}")
    return value.strip()


def register(app: Flask) -> None:
    """Call first among the request hooks: a refused Host must stop the request before anything reads it."""
    trusted = list(app.config.get("TRUSTED_HOSTS") or ()) or None  # None: any host (Flask's meaning)
    app.config["TRUSTED_HOSTS"] = trusted
    public = app.config.get("PUBLIC_URL") or ""
    if public:
        public = parse_public_url(public)
        if trusted is not None:  # after the rewrite Flask sees the public host: trust it too
            app.config["TRUSTED_HOSTS"] = [*trusted, urlsplit(public).hostname]
        app.wsgi_app = PublicURL(app.wsgi_app, public, trusted)

    @app.before_request
    def refuse_untrusted_host():
        # Flask's Host check failed while it routed: answer now, before anything builds a URL (it cannot)
        if isinstance(request.routing_exception, SecurityError):
            said = says("error.untrusted_host", host=repr(request.environ.get("HTTP_HOST", "")[:100]))
            g.error_message = str(said)  # the audit's line: English
            message = in_language(said, chosen_language())
            return jsonify({"error": {"code": "untrusted_host", "message": message, "details": []}}), 400

    @app.after_request
    def vary_on_host(response):
        if not public and request.path.startswith("/api"):
            response.vary.add("Host")  # absolute links name the Host the client sent
        return response
