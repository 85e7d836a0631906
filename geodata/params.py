"""Values from request text, parsed defensively: whole numbers and JSON documents.

Whole numbers: ASCII digits only, of a sane length.

``str.isdigit`` and ``int`` accept far more than people type: ``'²'.isdigit()``
is True (and ``int('²')`` then fails), ``int('٣')`` is 3, and ``int`` refuses
more than 4,300 digits with a ValueError.  Every numeric request parameter
(``version``, ``from``, ``to``, ``limit``, ``offset``, a version in a path or in
``If-Match``) goes through :func:`whole_number` instead.

JSON: nesting is bounded before ``json.loads`` sees the text (see :func:`loads_json`).
"""

from __future__ import annotations

import json
import re

import numpy as np

from .errors import BadRequest, GridmapError
from .i18n import says

MAX_DIGITS = 15  # larger than any count or version we hold, far below int()'s 4,300-digit limit
_WHOLE = re.compile(r"-?[0-9]+")  # [0-9], not \d: \d matches every script's digits
MAX_JSON_DEPTH = 64  # GeoJSON needs about 8 (a MultiPolygon's coordinates in a feature in a collection)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def whole_number(raw: str, name: str, *, minimum: int | None = None, maximum: int | None = None,
                 error: type[GridmapError] = BadRequest) -> int:
    """``raw`` as an int, or ``error`` (400 unless told) with a message naming ``name``.

    >>> whole_number("42", "limit")
    42
    >>> whole_number("²", "version")
    Traceback (most recent call last):
    geodata.errors.BadRequest: 'version' must be a whole number written with the digits 0-9, not '²'
    """
    text = raw.strip()
    if not _WHOLE.fullmatch(text):
        raise error(says("params.whole_number", name=name, value=_shown(raw)))
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise error(says("params.digits", name=name, most=MAX_DIGITS, digits=len(text.lstrip("-"))))
    value = int(text)
    if minimum is not None and value < minimum:
        raise error(says("params.at_least", name=name, minimum=minimum, value=value))
    if maximum is not None and value > maximum:
        raise error(says("params.at_most", name=name, maximum=maximum, value=value))
    return value


def version_number(raw: str, name: str = "version", error: type[GridmapError] = BadRequest) -> int:
    """A layer version: 1, 2, ..."""
    return whole_number(raw, name, minimum=1, error=error)


def _shown(raw: str) -> str:
    """The value for a message, cut short: a 5,000-character parameter need not come back whole."""
    return repr(raw) if len(raw) <= 40 else repr(raw[:40]) + f"... ({len(raw)} characters)"


def loads_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH, **kwargs):
    """``json.loads``, but a BadRequest for arrays and objects nested deeper than ``max_depth``.

    The depth is measured first, in C-speed steps (strings blanked by a regular
    expression, brackets counted by numpy), so a 2 MiB run of ``[`` costs
    milliseconds instead of a RecursionError deep inside the parser.

    >>> loads_json('{"a": [1, {"b": "[[["}]}')
    {'a': [1, {'b': '[[['}]}
    >>> loads_json("[" * 100 + "]" * 100)
    Traceback (most recent call last):
    geodata.errors.BadRequest: the JSON nests arrays and objects 100 deep; at most 64 are accepted
    """
    data = _as_bytes(text)
    if data.count(b"[") + data.count(b"{") > max_depth and (depth := json_depth(data)) > max_depth:
        raise BadRequest(says("params.json_depth", depth=depth, most=max_depth))
    try:
        return json.loads(text, **kwargs)
    except RecursionError:  # not reached with a sane max_depth; a 400 all the same
        raise BadRequest(says("params.json_too_deep", most=max_depth)) from None


def json_depth(text: str | bytes) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets inside strings do not count)."""
    data = _as_bytes(text)
    brackets = _JSON_STRING.sub(b'""', data).translate(None, _NOT_BRACKETS)
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def _as_bytes(text: str | bytes) -> bytes:
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
