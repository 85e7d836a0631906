"""The gettext catalogues (geodata/locale/*.po): complete, used, and read with plural forms and fallbacks."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from geodata import i18n
from geodata.errors import NotFound
from geodata.i18n import LANGUAGES, Says, cli_language, in_language, ntext, read_catalogue, says, text

ROOT = Path(__file__).resolve().parents[2]
HAN = re.compile(r"[\u4e00-\u9fff]")

# where a text is asked for by its key: text("k"), says("k"), ntext("k"), the CLI's _say("k"), pages' and
# maps' t("k") (Python, Jinja and the scripts), and validate's found.say("k") (a check.* key)
CALLS = re.compile(r"""\b(?:text|says|Says|ntext|_say|t)\(\s*["']([a-z_]+(?:\.[A-Za-z0-9_]+)+)["']""")
CHECKS = re.compile(r"""\bsay\(\s*["']([a-z_]+)["']""")


def catalogue_keys(lang: str) -> dict[str, object]:
    return {(m.id if isinstance(m.id, str) else m.id[0]): m.string for m in read_catalogue(lang) if m.id}


def used_keys() -> dict[str, str]:
    """Every key the code names literally, with one file that names it."""
    found = {}
    sources = [*ROOT.glob("geodata/**/*.py"), *ROOT.glob("server/**/*.py"), *ROOT.glob("maps/**/*.py"),
               *ROOT.glob("server/templates/*.html"), *ROOT.glob("server/static/*.js"), *ROOT.glob("maps/static/*.js")]
    for path in sources:
        source = path.read_text(encoding="utf-8")
        for key in CALLS.findall(source):
            found.setdefault(key, str(path.relative_to(ROOT)))
        if path.name == "validate.py":
            for check in CHECKS.findall(source):
                found.setdefault(f"check.{check}", str(path.relative_to(ROOT)))
    from server.editing import SCRIPT_TEXTS  # the upload page's script asks for these by key

    for key in SCRIPT_TEXTS:
        found.setdefault(key, "server/editing.py SCRIPT_TEXTS")
    return found


def families() -> list[str]:
    """Keys the code builds from a value (f"status.{status}"): one for each value it can have."""
    from geodata.io import ENCODING_HOW, FORMATS
    from geodata.schema import LAYERS
    from maps.palette import GAP_COLOURS, MISSING_CENTER_WEIGHTS, STATUS_COLOURS

    levels = list(MISSING_CENTER_WEIGHTS)
    grid_types = next(f.choices for f in LAYERS["grids"].fields if f.name == "grid_type")
    return [*(f"status.{s}" for s in STATUS_COLOURS), *(f"level.{lvl}" for lvl in levels),
            *(f"center.{lvl}" for lvl in levels), *(f"gap.{k}" for k in GAP_COLOURS),
            *(f"grid_type.{g}" for g in grid_types), *(f"role.{r}" for r in ("viewer", "editor", "admin")),
            *(f"io.format.{f}" for f in set(FORMATS.values())), *ENCODING_HOW.values(),
            *(f"check.{k}" for k in ("tiling_gap", "outside_district", "overlap"))]


def test_both_catalogues_hold_every_key_with_a_text():
    assert i18n.problems() == []
    zh, en = catalogue_keys("zh"), catalogue_keys("en")
    assert set(zh) == set(en) and len(zh) > 400


def test_every_key_the_code_uses_is_in_both_catalogues():
    zh, en = catalogue_keys("zh"), catalogue_keys("en")
    used = used_keys()
    assert len(used) > 300  # the scan finds the calls
    missing = {key: where for key, where in used.items() if key not in zh or key not in en}
    assert missing == {}
    assert [key for key in families() if key not in zh or key not in en] == []


def test_a_missing_key_is_found(monkeypatch):
    """The check above can fail: a key the code would use that no catalogue has."""
    assert "nav.nowhere" not in catalogue_keys("zh")
    assert CALLS.findall('x = text("nav.nowhere", lang)') == ["nav.nowhere"]


def test_chinese_texts_are_chinese_and_english_texts_are_english():
    """No English sentence in the Chinese catalogue (commands in `backquotes` aside) and no Han character in the
    English one (the examples of district names in a few help texts aside)."""
    examples = re.compile(r"海曙区|月湖街道|江北区|网格|中文")
    english_in_zh = [(k, v) for k, v in catalogue_keys("zh").items()
                     if isinstance(v, str)
                     and re.search(r"[A-Za-z]{3,}(?: [A-Za-z]{2,}){2,}", re.sub(r"`[^`]*`", "", v))]
    assert english_in_zh == []
    han_in_en = [(k, v) for k, v in catalogue_keys("en").items()
                 if any(HAN.search(examples.sub("", s)) for s in (v if isinstance(v, tuple) else (v,)))]
    assert han_in_en == []


def test_text_falls_back_to_chinese_then_to_the_key():
    assert text("nav.map", "en") == "Coverage map" and text("nav.map", "zh") == "覆盖地图"
    assert text("nav.map", "fr") == "覆盖地图"
    assert text("no.such.key", "en") == "no.such.key"


def test_plural_forms_follow_the_count():
    assert ntext("upload.not_stored", 1, "en") == "the file was not stored: 1 error"
    assert ntext("upload.not_stored", 3, "en") == "the file was not stored: 3 errors"
    assert ntext("upload.not_stored", 1200, "en") == "the file was not stored: 1,200 errors"
    assert ntext("upload.not_stored", 1, "zh") == ntext("upload.not_stored", 1, "zh") == "文件未保存：有 1 个错误"
    assert ntext("upload.not_stored", 3, "zh") == "文件未保存：有 3 个错误"


def test_a_domain_error_is_said_in_the_language_chosen_later_and_survives_a_job_process():
    error = NotFound(says("error.no_grid", key="g00"))
    assert error.message == "no grid 'g00'" and str(error) == "no grid 'g00'"  # logs and scripts: English
    again = pickle.loads(pickle.dumps(error))
    assert isinstance(again.message, Says)
    assert in_language(again.message, "zh") == "没有网格 'g00'" and in_language(again.message, "en") == "no grid 'g00'"
    assert in_language("plain", "zh") == "plain"
    nested = says("io.unreadable", format=says("io.format.shapefile"), reason="x")
    assert nested.in_language("zh") == "无法读取该 Shapefile 压缩包：x"
    assert nested.in_language("en") == "could not read the zipped Shapefile: x"


@pytest.mark.parametrize("environ,expected", [
    ({}, "zh"), ({"LANG": "C.UTF-8"}, "zh"), ({"LANG": "POSIX"}, "zh"), ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh"), ({"LANG": "zh_TW.UTF-8"}, "zh"), ({"LANG": "fr_FR.UTF-8"}, "zh"),
    ({"LC_ALL": "en_GB.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"), ({"LC_MESSAGES": "en_US", "LANG": "zh_CN"}, "en"),
    ({"GRIDMAP_LANG": "zh", "LC_ALL": "en_US.UTF-8"}, "zh"), ({"GRIDMAP_LANG": "en"}, "en"),
])
def test_the_command_line_language(environ, expected):
    assert cli_language(environ) == expected


def test_add_writes_both_catalogues_and_absorb_reads_an_old_dict(tmp_path, monkeypatch):
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.add([("a.one", ("一",), ("one",)), ("a.count", ("{n} 个",), ("{n} thing", "{n} things"))])
    zh, en = catalogue_keys("zh"), catalogue_keys("en")
    assert zh == {"a.one": "一", "a.count": ("{n} 个",)} and en == {"a.one": "one", "a.count": ("{n} thing", "{n} things")}
    old = tmp_path / "old_i18n.py"
    old.write_text('CATALOGUE: dict = {\n    "a.one": ("壹", "ONE"),  # kept as it is\n    "b.two": ("二", "two"),\n}\n',
                   encoding="utf-8")
    assert i18n.main(["absorb", str(old)]) == 0
    assert catalogue_keys("zh")["a.one"] == "一" and catalogue_keys("en")["b.two"] == "two"
    assert i18n.main(["check"]) == 0
    assert i18n.main(["add", "c.three", "三", "three"]) == 0 and catalogue_keys("en")["c.three"] == "three"
    assert i18n.main(["add", "c.three", "叁", "THREE", "--replace"]) == 0 and catalogue_keys("zh")["c.three"] == "叁"
    assert list((tmp_path / "en" / "LC_MESSAGES").iterdir()) == [tmp_path / "en" / "LC_MESSAGES" / "messages.po"]


def test_no_compiled_catalogue_is_kept():
    assert not list((ROOT / "geodata" / "locale").rglob("*.mo"))
    assert {p.parent.parent.name for p in (ROOT / "geodata" / "locale").rglob("messages.po")} == {"zh_CN", "en"}
    assert set(LANGUAGES) == {"zh", "en"}
