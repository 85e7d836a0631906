"""CSV for spreadsheets: no text cell starts a formula (OWASP CSV injection), numbers stay numbers."""

import csv
import io

import pandas as pd

from geodata.tables import neutralise, to_csv

HOSTILE = ["=1+1", "+86", "-x", "@SUM(A1)", "\tx", "\rx"]


def read(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_text_cells_that_start_a_formula_get_a_quote():
    frame = pd.DataFrame({"name": HOSTILE, "n": [-3, 1, 0, -1, 2, 3]})
    header, *rows = read(to_csv(frame))
    assert header == ["name", "n"]
    assert [r[0] for r in rows] == ["'" + v for v in HOSTILE]
    assert [r[1] for r in rows] == ["-3", "1", "0", "-1", "2", "3"]  # a numeric column is left alone


def test_numbers_nulls_and_plain_text_are_unchanged():
    frame = pd.DataFrame({"text": ["海曙区", None, "a=b", " -x"], "int": pd.array([-3, None, 4, 5], dtype="Int64"),
                          "float": [-3.5, None, 0.25, 1.0], "flag": [True, False, True, False]})
    header, *rows = read(to_csv(frame))
    assert rows[0] == ["海曙区", "-3", "-3.5", "True"]
    assert rows[1] == ["", "", "", "False"]  # nulls stay empty
    assert rows[2][0] == "a=b" and rows[3][0] == " -x"  # only the first character counts


def test_column_names_are_cells_too():
    header, _ = read(to_csv(pd.DataFrame({"=cmd|' /C calc'!A0": ["x"]})))
    assert header == ["'=cmd|' /C calc'!A0"]


def test_the_file_is_utf8_with_a_bom_and_the_frame_is_not_changed():
    frame = pd.DataFrame({"name": ["=1+1"]})
    assert to_csv(frame).startswith(b"\xef\xbb\xbf")
    assert frame["name"][0] == "=1+1"


def test_neutralise_leaves_non_text_alone():
    assert neutralise(-3) == -3 and neutralise(None) is None and neutralise("-3") == "'-3"
