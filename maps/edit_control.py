"""Editing on the map, for editors: the control that draws, cuts, joins and moves grids and centres.

One call into ``maps/static/gridmap-edit.js`` (Leaflet-Geoman does the drawing and vertex editing)
with its options as JSON.  The form is built from the layers' schemas (``geodata.schema``): each
field's kind, whether it is required, its choices.  Nothing is stored until the editor checks the
change (a dry run of the change set) and saves it with a message: one new version.
"""

from __future__ import annotations

from branca.element import MacroElement, Template

from geodata.i18n import known, text
from geodata.schema import LAYERS

EDITED = ("grids", "centers")  # what the map edits: the tiles it picks them from are coverage's and centres'
PICKED_FROM = {"coverage": "grids", "centers": "centers"}
TEXT_KEYS = (
    "edit", "done", "pick", "pick_hint", "draw_grid", "draw_hint", "split", "split_hint", "merge", "merge_hint",
    "add_center", "center_hint", "undo", "discard", "check", "save", "message", "message_needed", "checking",
    "saving", "ok", "saved", "refused", "problems", "warnings", "failed", "one_layer", "nothing", "select_first",
    "new_key", "history", "required", "changes", "loading", "removed", "attributes",
)


def schema(layer: str, lang: str) -> dict:
    """What the form shows for ``layer``: its key and each field with its kind, choices and whether required,
    labelled in the reader's language (a field or choice the catalogue does not name shows as stored)."""
    def label(key: str, fallback: str) -> str:
        return text(key, lang) if known(key) else fallback

    spec = LAYERS[layer]
    return {"key": spec.key, "fields": [
        {"name": f.name, "label": label(f"field.{f.name}", f.name), "kind": f.kind,
         "required": f.required or f.kind == "key", "choices": list(f.choices),
         "choice_labels": {c: label(f"{f.name}.{c}", c) for c in f.choices},
         **({"minimum": f.minimum} if f.minimum is not None else {})} for f in spec.fields]}


def texts(lang: str) -> dict[str, str]:
    return {key: text(f"edit.{key}", lang) for key in TEXT_KEYS}


class EditControl(MacroElement):
    """The "编辑" button and its panel.  ``urls``: ``item`` ("{collection}" and "{id}" in it), ``items``,
    ``changes``, ``split`` and ``union`` ("{collection}" in them), ``history`` ("{layer}" in it)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmap.editControl({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, *, urls: dict[str, str], lang: str, csrf_meta: str = "csrf-token"):
        super().__init__()
        self._name = "EditControl"
        self.config = {"urls": urls, "csrfMeta": csrf_meta, "lang": lang, "texts": texts(lang),
                       "pickedFrom": PICKED_FROM, "schemas": {layer: schema(layer, lang) for layer in EDITED}}
