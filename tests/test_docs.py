"""The README's settings table is kept honest (as datasette's tests/test_docs.py does)."""

import re
from pathlib import Path

from server.config import SETTINGS

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def documented_settings() -> set[str]:
    section = README.split("## Settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(GRIDMAP_[A-Z0-9_]+)` \|", section, flags=re.M))


def test_every_setting_is_documented_and_nothing_else():
    assert documented_settings() == {s.env for s in SETTINGS}
