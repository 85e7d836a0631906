"""Scripts and stylesheets the pages use, served from installed packages (XStatic), never a CDN."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import xstatic.pkg.leaflet as leaflet
import xstatic.pkg.leaflet_markercluster as markercluster
from flask import Blueprint, abort, send_from_directory, url_for

import maps
from maps.coverage_map import Assets

blueprint = Blueprint("assets", __name__)


def _own(directory: Path) -> SimpleNamespace:
    """Our own map scripts, versioned by their content so browsers never keep a stale copy."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()))
    return SimpleNamespace(BASE_DIR=str(directory), VERSION=digest.hexdigest()[:12])


# name -> where the files are; the version is part of every URL, so the files can be
# cached for a year and an upgrade still reaches browsers.
PACKAGES = {
    "leaflet": leaflet,
    "markercluster": markercluster,
    "gridmap": _own(Path(maps.__file__).parent / "static"),
}


@blueprint.get("/assets/<name>/<version>/<path:filename>")
def asset(name: str, version: str, filename: str):
    package = PACKAGES.get(name)
    if package is None or version != package.VERSION:
        abort(404)
    return send_from_directory(package.BASE_DIR, filename, max_age=365 * 24 * 3600)


def asset_url(name: str, filename: str) -> str:
    return url_for("assets.asset", name=name, version=PACKAGES[name].VERSION, filename=filename)


def map_assets() -> Assets:
    """What our folium maps load: Leaflet, MarkerCluster and our own map code — no jQuery or Bootstrap."""
    return Assets(
        js=(("leaflet", asset_url("leaflet", "leaflet.js")),
            ("markercluster", asset_url("markercluster", "leaflet.markercluster.js")),
            ("gridmap", asset_url("gridmap", "gridmap-map.js"))),
        css=(("leaflet_css", asset_url("leaflet", "leaflet.css")),
             ("markercluster_css", asset_url("markercluster", "MarkerCluster.css")),
             ("markercluster_default_css", asset_url("markercluster", "MarkerCluster.Default.css")),
             ("gridmap_css", asset_url("gridmap", "gridmap-map.css"))),
    )
