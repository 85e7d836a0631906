"""A grid's page and a centre's page: its fields in the reader's language, the centres that serve it
(or the grids a centre reaches) with straight-line distances, and its own history across versions.

Presentation only: ``geodata.serving`` measures, the store's ``history`` lists the versions.  Every
value goes through Jinja autoescape.  Restricted fields (staffing) only for signed-in readers.
"""

from __future__ import annotations

import json

from flask import Blueprint, render_template, url_for

from geodata import serving
from geodata.errors import NotFound
from geodata.i18n import says, text
from geodata.schema import LAYERS
from geodata.unitkeys import UNIT_KEYS

from . import privacy, services
from .editing import shown_time
from .i18n import current_language

blueprint = Blueprint("feature_pages", __name__)


@blueprint.get("/grids/<grid_id>")
def grid(grid_id: str):
    found, feature = _current("grids", grid_id)
    catalog = services().catalog
    coverage = None
    if feature is not None:
        coverage = json.loads(catalog.get("coverage", hidden=privacy.hidden_fields()).features.feature(grid_id))
        centres = catalog.get("centers").features.gdf
        grid_geom = found.features.gdf.set_index("grid_id").geometry.get(grid_id)
        nearby = serving.centres_for(grid_geom, centres, catalog.params).to_dict("records")
    else:
        nearby = []
    return _page("grids", grid_id, feature, coverage=coverage and coverage["properties"], nearby=nearby)


@blueprint.get("/centers/<center_id>")
def center(center_id: str):
    found, feature = _current("centers", center_id)
    reached = []
    if feature is not None:
        catalog = services().catalog
        point = found.features.gdf.set_index("center_id").geometry.get(center_id)
        reached = serving.grids_for(point, feature["properties"].get("level"), catalog.get("grids").features.gdf,
                                    catalog.params).to_dict("records")
    return _page("centers", center_id, feature, reached=reached,
                 reached_population=sum(g["population"] or 0 for g in reached))


def _current(layer: str, key: str):
    """The collection and the feature as this reader may see it (None when the current version lacks it);
    NotFound when the key never existed."""
    found = services().catalog.get(layer, hidden=privacy.hidden_fields())
    try:
        return found, json.loads(found.features.feature(key))
    except NotFound:
        if not services().store.history(layer, key):
            raise NotFound(says("error.no_grid" if layer == "grids" else "error.no_center", key=key)) from None
        return found, None


def _page(layer: str, key: str, feature: dict | None, **extra):
    lang = current_language()
    hidden = privacy.hidden_fields()
    fields = [f.name for f in LAYERS[layer].fields if f.name not in hidden]
    properties = feature["properties"] if feature else {}
    history = [(v, change) for v, change in reversed(services().store.history(layer, key))]
    unit = {k: properties[k] for k in UNIT_KEYS if properties.get(k)}
    return render_template(
        "feature.html", layer=layer, key=key, feature=feature, properties=properties, fields=fields,
        shown=lambda name, value: _shown(name, value, lang), history=history, shown_time=shown_time,
        show_authors=privacy.shows_authors(), staffing_hidden=bool(hidden & {f.name for f in LAYERS[layer].fields}),
        map_url=url_for("pages.unit_map", **unit) if unit else url_for("pages.city"),
        data_url=url_for("api.item", collection_id=layer, feature_id=key), **extra)


def _shown(name: str, value, lang: str) -> str:
    """A value as people read it: enums named, numbers grouped, nothing as a dash."""
    if value is None or value == "":
        return "—"
    if name in ("grid_type", "level", "coverage_status"):
        prefix = {"grid_type": "grid_type.", "level": "level.", "coverage_status": "status."}[name]
        return text(prefix + str(value), lang)
    if isinstance(value, float) and name in ("coverage_ratio", "covered_share"):
        return f"{value:.0%}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"
    return str(value)
