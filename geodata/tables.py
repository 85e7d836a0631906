"""Tables as CSV files for spreadsheets: UTF-8 with a BOM, and no cell a spreadsheet runs as a formula.

Every CSV gridmap writes (downloads, summaries, recommendations) goes through
:func:`to_csv`.  Text cells — and column names — that start with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return get a leading ``'`` (OWASP's advice
against CSV injection), so Excel and LibreOffice show them as text instead of
evaluating them.  Numeric columns are left alone: ``-3`` stays a number.
"""

from __future__ import annotations

import io

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """``value`` with a ``'`` in front when it is text a spreadsheet would take for a formula.

    Examples
    --------
    >>> neutralise("=1+1"), neutralise("+86 574"), neutralise("海曙区"), neutralise(-3)
    ("'=1+1", "'+86 574", '海曙区', -3)
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells and column names are neutralised; numeric and boolean columns as they were."""
    if frame.shape[1] == 0:
        return frame.copy()
    columns = []
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        columns.append(values if numeric else values.map(neutralise))
    out = pd.concat(columns, axis=1)
    out.columns = [neutralise(c) for c in frame.columns]
    return out


def to_csv(frame: pd.DataFrame) -> bytes:
    """``frame`` as CSV (no index), UTF-8 with a BOM so that Excel reads Chinese text.

    Examples
    --------
    >>> to_csv(pd.DataFrame({"name": ["=HYPERLINK(1)"], "n": [-3]})).decode("utf-8-sig").splitlines()
    ['name,n', "'=HYPERLINK(1),-3"]
    """
    text = io.StringIO()
    # CRLF rows (RFC 4180): the csv writer then quotes any cell holding a CR or LF, so none splits a row
    safe_frame(frame).to_csv(text, index=False, lineterminator="\r\n")
    return text.getvalue().encode("utf-8-sig")
