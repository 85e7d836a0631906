"""Whole numbers from request text: ASCII digits only, of a sane length.

``str.isdigit`` and ``int`` accept far more than people type: ``'²'.isdigit()``
is True (and ``int('²')`` then fails), ``int('٣')`` is 3, and ``int`` refuses
more than 4,300 digits with a ValueError.  Every numeric request parameter
(``version``, ``from``, ``to``, ``limit``, ``offset``, a version in a path or in
``If-Match``) goes through :func:`whole_number` instead.
"""

from __future__ import annotations

import re

from .errors import BadRequest, GridmapError

MAX_DIGITS = 15  # larger than any count or version we hold, far below int()'s 4,300-digit limit
_WHOLE = re.compile(r"-?[0-9]+")  # [0-9], not \d: \d matches every script's digits


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
        raise error(f"'{name}' must be a whole number written with the digits 0-9, not {_shown(raw)}")
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise error(f"'{name}' must have at most {MAX_DIGITS} digits, not {len(text.lstrip('-'))}")
    value = int(text)
    if minimum is not None and value < minimum:
        raise error(f"'{name}' must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise error(f"'{name}' must be at most {maximum}, not {value}")
    return value


def version_number(raw: str, name: str = "version", error: type[GridmapError] = BadRequest) -> int:
    """A layer version: 1, 2, ..."""
    return whole_number(raw, name, minimum=1, error=error)


def _shown(raw: str) -> str:
    """The value for a message, cut short: a 5,000-character parameter need not come back whole."""
    return repr(raw) if len(raw) <= 40 else repr(raw[:40]) + f"... ({len(raw)} characters)"
