"""Scripts and stylesheets the pages use, served from installed packages (XStatic), never a CDN."""

from __future__ import annotations

import xstatic.pkg.leaflet as leaflet
from flask import Blueprint, abort, send_from_directory, url_for

blueprint = Blueprint("assets", __name__)

# name -> the package that ships the files; its version is part of every URL,
# so the files can be cached for a year and an upgrade still reaches browsers.
PACKAGES = {"leaflet": leaflet}


@blueprint.get("/assets/<name>/<version>/<path:filename>")
def asset(name: str, version: str, filename: str):
    package = PACKAGES.get(name)
    if package is None or version != package.VERSION:
        abort(404)
    return send_from_directory(package.BASE_DIR, filename, max_age=365 * 24 * 3600)


def asset_url(name: str, filename: str) -> str:
    return url_for("assets.asset", name=name, version=PACKAGES[name].VERSION, filename=filename)


def map_assets():
    """The Assets a folium map of ours needs (Leaflet only: no jQuery, Bootstrap or icon fonts)."""
    from maps.city import Assets

    return Assets(js=(("leaflet", asset_url("leaflet", "leaflet.js")),),
                  css=(("leaflet_css", asset_url("leaflet", "leaflet.css")),))
