"""``python -m server`` speaks one language at a time (issue 14): its help, its errors (a setting, a damaged
record, a database out of reach) and what ``repair`` and ``migrate`` report are Chinese by default and under
``GRIDMAP_LANG=zh``, English under ``GRIDMAP_LANG=en`` — never half of each ("错误：the database …")."""

from __future__ import annotations

import re

import pytest

from geodata.store import FileStore
from tests.server.test_cli import damaged_old_data_dir, free_port, run_cli, two_grids
from tests.server.test_i18n import english_sentences

HAN = re.compile(r"[\u4e00-\u9fff]")
# examples in the help that name units (the same in any language) and the commands' own names
EXAMPLES = re.compile(r"海曙区|月湖街道|python -m server[a-z ]*")


def speaks(output: str, lang: str) -> None:
    text = EXAMPLES.sub(" ", output)
    if lang == "zh":
        assert HAN.search(text), output
        assert english_sentences(text) == [], output
    else:
        assert not HAN.search(text), output


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("command", [["--help"], ["user", "--help"], ["user", "add", "--help"], ["repair", "--help"],
                                     ["migrate", "--help"]])
def test_the_help_is_in_one_language(command, lang):
    result = run_cli(*command, GRIDMAP_LANG=lang)
    assert result.returncode == 0, result.stderr
    speaks(result.stdout, lang)
    if command == ["--help"]:
        assert ("运行 gridmap 服务" if lang == "zh" else "Serve gridmap.") in result.stdout
        assert ("其他命令" if lang == "zh" else "other commands") in result.stdout


def test_the_help_is_chinese_without_gridmap_lang():
    assert "运行 gridmap 服务" in run_cli("--help").stdout  # the C locale names no language


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_bad_setting_is_said_in_one_language(lang):
    result = run_cli("--port", str(free_port()), GRIDMAP_DEMO="shanghai", GRIDMAP_LANG=lang)
    assert result.returncode == 2 and "'shanghai'" in result.stderr and "Traceback" not in result.stderr
    speaks(result.stderr, lang)
    assert ("须为 ningbo、zhejiang 或 off" if lang == "zh" else "must be ningbo, zhejiang or off") in result.stderr


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_damaged_record_and_its_repair_are_said_in_one_language(tmp_path, lang):
    data_dir, manifest = damaged_old_data_dir(tmp_path)

    started = run_cli("--data-dir", str(data_dir), "--port", str(free_port()), GRIDMAP_DEMO="0", GRIDMAP_LANG=lang)
    assert started.returncode == 1 and str(manifest) in started.stderr
    speaks(started.stderr.replace(str(manifest), " "), lang)

    refused = run_cli("migrate", "--data-dir", str(data_dir), GRIDMAP_LANG=lang)
    assert refused.returncode == 1 and "python -m server repair" in refused.stderr
    speaks(refused.stderr.replace(str(manifest), " ").replace(str(data_dir), " "), lang)
    assert ("未从" if lang == "zh" else "nothing was imported from") in refused.stderr

    repaired = run_cli("repair", "--data-dir", str(data_dir), GRIDMAP_LANG=lang)
    assert repaired.returncode == 0, repaired.stderr
    speaks(repaired.stdout.replace(str(manifest), " "), lang)
    assert ("已用 2 个版本重建" if lang == "zh" else "grids: rebuilt") in repaired.stdout


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_what_migrate_imports_is_said_in_one_language(tmp_path, lang):
    data_dir = tmp_path / "data"
    old = FileStore(data_dir)
    old.write("grids", two_grids(), author="a", message="first")
    old.write("grids", two_grids().head(1), author="b", message="second")

    done = run_cli("migrate", "--data-dir", str(data_dir), GRIDMAP_LANG=lang)

    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == ("grids：已导入 2 个版本，第 1 至第 2 版；当前版本有 1 个要素" if lang == "zh" else
                     "grids: imported 2 versions, 1 to 2; the current one has 1 feature")
    speaks(done.stdout.replace(str(data_dir), " "), lang)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_database_out_of_reach_is_said_in_one_language(tmp_path, lang):
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/gridmap"  # a port nothing listens on
    result = run_cli("--data-dir", str(tmp_path / "data"), "--database-url", url, GRIDMAP_DATABASE_WAIT_S="0",
                     GRIDMAP_LANG=lang)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("python -m server：错误：无法连接数据库" if lang == "zh" else
                            "python -m server: error: the database")
    # the driver's own reason, in brackets, is quoted as the driver gave it
    speaks(re.sub(r"（[^）]*）|\([^)]*\)", " ", error), lang)


@pytest.mark.parametrize("lang, says", [
    ("zh", ["用法：python -m server user add", "python -m server user add：错误：缺少必需的参数：--role"]),
    ("en", ["usage: python -m server user add", "python -m server user add: error: the following arguments are "
                                                "required: --role"]),
])
def test_argparses_own_words_are_in_the_command_lines_language(lang, says):
    result = run_cli("user", "add", "someone", GRIDMAP_LANG=lang)
    assert result.returncode == 2
    assert all(said in result.stderr for said in says), result.stderr
    speaks(result.stderr, lang)
    help_text = run_cli("user", "add", "--help", GRIDMAP_LANG=lang).stdout
    assert ("选项:" if lang == "zh" else "options:") in help_text and ("显示此帮助并退出" if lang == "zh" else
                                                                       "show this help message and exit") in help_text
