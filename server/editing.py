"""Pages for editors: upload a layer (check first, then store) and a layer's version history.

Presentation only.  The work is done by the upload API (``server/uploads.py``):
``upload.html`` posts to it with ``fetch`` (``static/upload.js``), a dry run
first, and shows its report; the history page lists what
``store.versions`` knows and restores through the API.  Every data text goes
through Jinja autoescape or ``textContent``, never markup.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template, request, url_for

from geodata.errors import NotFound
from geodata.i18n import says, text
from geodata.schema import LAYERS

from maps.diff_map import diff_map

from . import privacy, services
from .assets import asset_url, map_assets
from .auth import current_user, page_for
from .i18n import current_language
from .pages import render_map
from .uploads import version_diff

blueprint = Blueprint("editing", __name__)

COORDINATES = ("wgs84", "gcj02", "bd09")
MODES = ("replace", "merge")
ACCEPT = ".geojson,.json,.zip,.gpkg,.kml"

# Texts upload.js shows; handed to it in the page as JSON, in the reader's language.
SCRIPT_TEXTS = (
    "editing.checking", "editing.storing", "editing.no_file", "editing.ok_to_store", "editing.has_errors",
    "editing.stored", "editing.conflict", "editing.changed", "editing.network_error", "editing.failed",
    "editing.error", "editing.warning", "editing.whole_layer", "editing.geometry", "editing.no_version",
    "editing.no_problems", "editing.restore_confirm", "editing.restore_conflict", "editing.view_history",
    "editing.preview_empty", "editing.confirm_needed", "editing.impact_emptied",
)


def _layers() -> tuple[str, ...]:
    return tuple(services().store.layer_names)


@blueprint.get("/upload")
def upload_page():
    if (sign_in := page_for("editor", "uploading")) is not None:
        return sign_in
    layers = _layers()
    chosen = request.args.get("layer")
    lang = current_language()
    return render_template(
        "upload.html",
        layers=layers, chosen=chosen if chosen in layers else layers[0],
        keys={layer: LAYERS[layer].key for layer in layers},
        coordinates=COORDINATES, modes=MODES, accept=ACCEPT,
        api_template=url_for("uploads.upload_layer", layer="__layer__"),
        history_template=url_for("editing.history", layer="__layer__"),
        leaflet_js=asset_url("leaflet", "leaflet.js"), leaflet_css=asset_url("leaflet", "leaflet.css"),
        texts={key: text(key, lang) for key in SCRIPT_TEXTS},
    )


@blueprint.get("/history/<layer>")
def history(layer: str):
    if layer not in _layers():
        raise NotFound(says("error.no_history_layer", layer=layer, layers=", ".join(_layers())))
    versions = list(reversed(services().store.versions(layer)))  # newest first
    user = current_user()
    lang = current_language()
    return render_template(
        "history.html", layer=layer, layers=_layers(), versions=versions,
        current=versions[0].version if versions else None,
        can_restore=user is not None and user.can("editor"),
        show_authors=privacy.shows_authors(),
        shown_time=shown_time,
        texts={key: text(key, lang) for key in SCRIPT_TEXTS},
    )


def shown_time(iso: str) -> str:
    """An ISO 8601 time as people read it, in ``GRIDMAP_TIMEZONE``: ``2026-12-01T13:58:00+00:00`` →
    ``2026-12-01 21:58 (UTC+8)`` in Asia/Shanghai.  A time without an offset is UTC (as stored)."""
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)  # not a time: shown as it is rather than failing the page
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone(ZoneInfo(current_app.config["TIMEZONE"]))
    minutes = round(local.utcoffset().total_seconds() / 60)
    hours, rest = divmod(abs(minutes), 60)
    offset = f"{'-' if minutes < 0 else '+'}{hours}" + (f":{rest:02d}" if rest else "")
    return f"{local:%Y-%m-%d %H:%M} (UTC{offset})"


@blueprint.get("/history/<layer>/diff")
def diff_page(layer: str):
    """``?from=N&to=M``: what changed, as counts, a table and a map."""
    result, before, to = version_diff(layer)
    bounds = [round(float(b), 6) for b in result.features.total_bounds] if len(result.features) else None
    m = diff_map(url=url_for("uploads.diff", collection_id=layer, f="geojson", **{"from": before, "to": to}),
                 bounds=bounds, assets=map_assets(), lang=current_language())
    return render_map("diff.html", m, layer=layer, before=before, to=to, result=result.to_dict(),
                      rows=result.features.drop(columns="geometry").head(500).to_dict("records"))
