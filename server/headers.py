"""Browser security headers on every response, error pages included.

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin`` everywhere;
- pages (HTML) may not be framed by any site (clickjacking of /upload, /history):
  CSP ``frame-ancestors 'none'`` and, for older browsers, ``X-Frame-Options: DENY``.

The CSP is deliberately no fuller: folium's maps run inline scripts and load
tiles from the configured base map, so ``script-src``/``default-src`` would break
them; ``object-src`` and ``base-uri`` cost nothing.  A few constant headers do
not call for Flask-Talisman (it would also redirect to HTTPS and set cookie
flags, which settings and the proxy in front decide here).
"""

from __future__ import annotations

from flask import Flask

EVERY_RESPONSE = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
PAGES = {"Content-Security-Policy": "frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
         "X-Frame-Options": "DENY"}


def register(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        for name, value in EVERY_RESPONSE.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html":
            for name, value in PAGES.items():
                response.headers.setdefault(name, value)
        return response
