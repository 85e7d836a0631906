"""A gap's ``detail``, its short reason, in one language at a time.

The analysis is computed once for every reader, so it writes each detail in Chinese (the default language) from
the catalogues' ``gap.detail.*`` templates (``template``, ``staffing``); an English reader's answers say it again
in English from the same templates (``in_language``, ``frame_in_language``): the Chinese text is read back
through its template into its fields, which fill the English one.  A detail no template matches (an analysis
kept from before these templates) is left as it is.
"""

from __future__ import annotations

import functools
import re

import pandas as pd

from .i18n import DEFAULT_LANGUAGE, text

# the templates: gap.detail.<key>; their fields are names, codes and areas (the same in any language)
KEYS = ("walk_gap", "service_gap", "missing_center", "tiling_gap", "outside", "overlap")
LEVEL_NAMES = {"district": "区县", "street": "街道", "community": "社区"}  # {level} of missing_center, in Chinese
# what a staffing gap lacks, by the grid's column: gap.detail.<key>, joined by gap.detail.separator
STAFFING = {"instructor": "no_instructor", "party_branch": "no_branch", "grid_workers": "no_worker"}


def template(key: str) -> str:
    """The Chinese template of ``gap.detail.<key>`` (``str.format`` fields), as the analysis writes it."""
    return text(f"gap.detail.{key}", DEFAULT_LANGUAGE)


def staffing(name: str, missing: list[str]) -> str:
    """A staffing gap's detail: the grid ``name`` lacks what the ``missing`` columns name."""
    return _staffing(name, missing, DEFAULT_LANGUAGE)


def _staffing(name: str, missing, lang: str) -> str:
    said = text("gap.detail.separator", lang).join(text(f"gap.detail.{STAFFING[c]}", lang) for c in missing)
    return text("gap.detail.staffing", lang).format(name=name, missing=said)


@functools.cache
def _patterns() -> list[tuple[str, re.Pattern]]:
    """Each template as a pattern that reads its fields back; the staffing one last (it matches the most)."""
    def pattern(key: str) -> re.Pattern:
        parts = re.split(r"\{(\w+)\}", template(key))
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts))
        return re.compile(regex, re.DOTALL)
    return [(key, pattern(key)) for key in (*KEYS, "staffing")]


def read(detail) -> tuple[str, dict] | None:
    """The template key and the fields of ``detail`` (as the analysis wrote it); None if no template matches.
    A staffing gap's ``missing`` is a list of the grid's columns; a missing centre's ``level`` its code."""
    if not isinstance(detail, str):
        return None
    for key, pattern in _patterns():
        found = pattern.fullmatch(detail)
        if not found:
            continue
        fields = found.groupdict()
        if key == "staffing":
            lacks = {text(f"gap.detail.{item}", DEFAULT_LANGUAGE): column for column, item in STAFFING.items()}
            missing = fields["missing"].split(text("gap.detail.separator", DEFAULT_LANGUAGE))
            if not all(item in lacks for item in missing):
                continue
            fields["missing"] = [lacks[item] for item in missing]
        if key == "missing_center":
            levels = {name: level for level, name in LEVEL_NAMES.items()}
            fields["level"] = levels.get(fields["level"], fields["level"])
        return key, fields
    return None


def in_language(detail, lang: str):
    """``detail`` (as the analysis wrote it) in ``lang``."""
    if lang == DEFAULT_LANGUAGE or (found := read(detail)) is None:
        return detail
    key, fields = found
    if key == "staffing":
        return _staffing(fields["name"], fields["missing"], lang)
    return text(f"gap.detail.{key}", lang).format(**fields)


def frame_in_language(gaps: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The gaps with each ``detail`` in ``lang`` (the frame itself in Chinese)."""
    if lang == DEFAULT_LANGUAGE or "detail" not in gaps.columns or gaps.empty:
        return gaps
    return gaps.assign(detail=[in_language(d, lang) for d in gaps["detail"].tolist()])
