"""Scripts and stylesheets the pages use, served from installed packages (XStatic), never a CDN."""

from __future__ import annotations

import hashlib
import json
import logging
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


def _npm(name: str, subdirectory: str) -> SimpleNamespace:
    """A package ``npm ci`` installed (package.json, package-lock.json): Leaflet.VectorGrid ships on npm only
    -- no XStatic or Debian package carries it, folium's plugin loads it from a CDN.  Missing (npm ci not
    run), its URLs answer 404 and the map draws no tiles: said once at start."""
    root = Path(__file__).resolve().parent.parent / "node_modules" / name
    try:
        version = json.loads((root / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        logging.getLogger(__name__).warning("%s is not installed: run `npm ci` in %s (see the README)",
                                            name, root.parent.parent)
        version = "missing"
    return SimpleNamespace(BASE_DIR=str(root / subdirectory), VERSION=version)


# name -> where the files are; the version is part of every URL, so the files can be
# cached for a year and an upgrade still reaches browsers.
PACKAGES = {
    "leaflet": leaflet,
    "markercluster": markercluster,
    "vectorgrid": _npm("leaflet.vectorgrid", "dist"),
    "geoman": _npm("@geoman-io/leaflet-geoman-free", "dist"),  # drawing and vertex editing, for editors
    "domtoimage": _npm("dom-to-image-more", "dist"),  # the map's PNG export: loaded on the first click
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


def map_assets(editing: bool = False) -> Assets:
    """What our folium maps load: Leaflet, MarkerCluster, VectorGrid and our own map code — no jQuery or Bootstrap;
    ``editing`` (an editor's map): Leaflet-Geoman and our editing code too."""
    return Assets(
        js=(("leaflet", asset_url("leaflet", "leaflet.js")),
            ("markercluster", asset_url("markercluster", "leaflet.markercluster.js")),
            ("vectorgrid", asset_url("vectorgrid", "Leaflet.VectorGrid.bundled.min.js")),
            ("gridmap", asset_url("gridmap", "gridmap-map.js")),
            *((("geoman", asset_url("geoman", "leaflet-geoman.min.js")),
               ("gridmap_edit", asset_url("gridmap", "gridmap-edit.js"))) if editing else ())),
        css=(("leaflet_css", asset_url("leaflet", "leaflet.css")),
             ("markercluster_css", asset_url("markercluster", "MarkerCluster.css")),
             ("markercluster_default_css", asset_url("markercluster", "MarkerCluster.Default.css")),
             ("gridmap_css", asset_url("gridmap", "gridmap-map.css")),
             *((("geoman_css", asset_url("geoman", "leaflet-geoman.css")),
                ("gridmap_edit_css", asset_url("gridmap", "gridmap-edit.css"))) if editing else ())),
    )
