"""A gap's ``detail`` in one language at a time (issue 14): the analysis writes Chinese from the catalogues'
templates, and an English reader gets the same reason in English, never both."""

from __future__ import annotations

import re

import pytest

from geodata import gapdetail
from geodata.i18n import known, text

HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_template_is_in_both_catalogues():
    keys = [*gapdetail.KEYS, "staffing", "separator", *gapdetail.STAFFING.values()]
    assert [key for key in keys if not known(f"gap.detail.{key}") or text(f"gap.detail.{key}", "en") ==
            f"gap.detail.{key}"] == []


@pytest.mark.parametrize("chinese,english", [
    (gapdetail.template("service_gap").format(name="一号网格", area="1,234"), "一号网格: 1,234 m² outside every catchment"),
    (gapdetail.template("walk_gap").format(name="一号网格", area="12"),
     "一号网格: 12 m² within a centre's radius but beyond its walk"),
    (gapdetail.template("missing_center").format(unit="青石社区", level=gapdetail.LEVEL_NAMES["community"]),
     "青石社区: no community-level centre"),
    (gapdetail.template("tiling_gap").format(name="海曙区", area="10,663"), "海曙区: 10,663 m² of the district in no grid"),
    (gapdetail.template("outside").format(name="二号网格", area="5", district="海曙区"),
     "二号网格: 5 m² outside its district 海曙区"),
    (gapdetail.template("overlap").format(a="g1", b="g2", area="7"), "g1 ∩ g2: 7 m² in two grids"),
    (gapdetail.staffing("一号网格", ["instructor", "grid_workers"]),
     "一号网格: no party-building instructor; no grid worker"),
])
def test_each_detail_is_said_in_english_from_its_chinese(chinese, english):
    assert not re.search(r"[A-Za-z]{3,} [A-Za-z]{2,}", chinese), chinese  # no English in the Chinese one
    assert gapdetail.in_language(chinese, "zh") == chinese
    assert gapdetail.in_language(chinese, "en") == english


def test_a_detail_no_template_matches_is_left_as_it_is():
    assert gapdetail.in_language("something else", "en") == "something else"
    assert gapdetail.in_language("一号网格：无此项", "en") == "一号网格：无此项"  # not a staffing item
    assert gapdetail.in_language(None, "en") is None
