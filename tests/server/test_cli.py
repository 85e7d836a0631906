"""``python -m server``: arguments, settings from GRIDMAP_* variables, a real gunicorn serving /healthz."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import geopandas as gpd
import pytest
from shapely import box

from geodata.store import FileStore
from geodata.store.sqlite import SQLiteStore
from server import __main__ as cli
from server import config

ROOT = Path(__file__).resolve().parents[2]  # the project: `python -m server` runs from here
START_DEADLINE = 30.0  # seconds for the server to answer /healthz


def clean_env(**variables: str) -> dict:
    """This process's environment without any GRIDMAP_* setting, in the C locale (no language: the commands
    speak Chinese), plus ``variables``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GRIDMAP_") and k not in ("LC_ALL", "LC_MESSAGES", "LANGUAGE")}
    env.update({"LANG": "C.UTF-8", **variables})
    return env


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=clean_env(**env),
                          capture_output=True, text=True, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"grid_id": ["g1", "g2"], "name": ["一号网格", "二号网格"], "grid_type": ["residential", "other"],
         "district": ["海曙区"] * 2, "street": ["月湖街道"] * 2, "community": ["青石社区"] * 2,
         "population": [100, 200]},
        geometry=[box(121.50, 29.90, 121.51, 29.91), box(121.51, 29.90, 121.52, 29.91)], crs="EPSG:4326")


class Server:
    """A ``python -m server`` process, its log, and a way to wait until it answers."""

    def __init__(self, args: list[str], env: dict, log: Path):
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "server", *args], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, port: int):
        """Poll /healthz until it answers 200; the response (status, headers, JSON body)."""
        url = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + START_DEADLINE
        last_error = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode} before answering:\n{self.log()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status, response.headers, json.loads(response.read())
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                last_error = e
            time.sleep(0.1)  # poll interval, not a wait-and-hope: the deadline bounds the loop
        pytest.fail(f"no answer from {url} within {START_DEADLINE} s ({last_error}):\n{self.log()}")

    def stop(self) -> int | None:
        """SIGTERM and wait; SIGKILL the whole process group if it will not go.  The exit code after SIGTERM."""
        code = None
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # any worker left behind (the group is ours alone)
            if self.proc.poll() is None:
                self.proc.wait(timeout=10)
            self._log.close()
        return code


@pytest.fixture
def start_server(tmp_path):
    servers: list[Server] = []
    run_dir = tmp_path / "run"  # gunicorn's control socket goes here, not into ~/.gunicorn
    run_dir.mkdir()

    def start(args: list[str], **env: str) -> Server:
        env.setdefault("XDG_RUNTIME_DIR", str(run_dir))
        server = Server(args, clean_env(**env), tmp_path / f"server{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- arguments --------------------------------------------------------------------

def test_help_lists_the_options():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for option in ("--host", "--port", "--data-dir", "--database-url", "--workers"):
        assert option in result.stdout


@pytest.mark.parametrize("port", ["70000", "0", "-1"])
def test_out_of_range_port_is_a_usage_error(port):
    result = run_cli(f"--port={port}", GRIDMAP_DEMO="0")
    assert result.returncode == 2
    assert "--port" in result.stderr and port in result.stderr
    assert "serving" not in result.stdout  # it stopped before starting anything


def test_port_must_be_a_number():
    result = run_cli("--port", "abc", GRIDMAP_DEMO="0")
    assert result.returncode == 2
    assert "--port" in result.stderr and "abc" in result.stderr


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_workers_must_be_positive(monkeypatch, capsys, workers):
    served = []
    monkeypatch.setattr(cli, "serve", served.append)
    assert cli.main([f"--workers={workers}"]) == 2
    assert served == []
    assert "--workers" in capsys.readouterr().err


def test_main_passes_options_on(monkeypatch):
    served = []
    monkeypatch.setattr(cli, "serve", served.append)
    assert cli.main(["--host", "0.0.0.0", "--port", "8080", "--data-dir", "/srv/grids", "--workers", "3",
                     "--database-url", "postgresql://gridmap@db/gridmap"]) == 0
    assert served == [{"HOST": "0.0.0.0", "PORT": 8080, "DATA_DIR": "/srv/grids",
                       "DATABASE_URL": "postgresql://gridmap@db/gridmap", "WORKERS": 3}]


def test_main_leaves_missing_options_to_the_settings(monkeypatch):
    served = []
    monkeypatch.setattr(cli, "serve", served.append)
    assert cli.main([]) == 0
    assert served == [{"HOST": None, "PORT": None, "DATA_DIR": None, "DATABASE_URL": None, "WORKERS": None}]
    # None options do not hide GRIDMAP_* values
    loaded = config.load(served[0], environ={"GRIDMAP_PORT": "5123", "GRIDMAP_DATA_DIR": "/env/dir"})
    assert (loaded["PORT"], loaded["DATA_DIR"], loaded["WORKERS"]) == (5123, "/env/dir", 2)


# --- a real server ---------------------------------------------------------------

def test_serves_healthz_with_gunicorn(start_server, tmp_path):
    data_dir = tmp_path / "data"
    FileStore(data_dir).write("grids", two_grids(), author="test")
    port = free_port()
    server = start_server(["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
                           "--workers", "1"], GRIDMAP_DEMO="0")

    status, headers, body = server.wait_healthy(port)
    assert status == 200
    assert body["status"] == "ok"
    assert "gunicorn" in headers.get("Server", "").lower()
    # it serves --data-dir, and GRIDMAP_DEMO=0 kept the demo out of it
    assert body["layers"] == {"grids": {"version": 1, "features": 2}, "centers": None, "districts": None, "roads": None}
    assert [v.version for v in FileStore(data_dir).versions("centers")] == []

    assert server.stop() == 0  # SIGTERM is a clean shutdown
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_settings_come_from_the_environment(start_server, tmp_path):
    data_dir = tmp_path / "env-data"
    port = free_port()
    server = start_server([], GRIDMAP_PORT=str(port), GRIDMAP_DATA_DIR=str(data_dir), GRIDMAP_WORKERS="1",
                          GRIDMAP_DEMO="0")

    status, _, body = server.wait_healthy(port)
    assert status == 200
    assert body["status"] == "ok"
    assert body["layers"] == {"grids": None, "centers": None, "districts": None, "roads": None}
    assert (data_dir / "gridmap.sqlite").is_file()  # GRIDMAP_DATA_DIR was used
    assert f":{port}/" in server.log()  # the start-up line names the port it serves


# --- config.load --------------------------------------------------------------------

def test_defaults_without_environment():
    values = config.load(environ={})
    assert values["PORT"] == 5000
    assert values["HOST"] == "127.0.0.1"
    assert values["WORKERS"] == 2
    assert values["DEMO"] == "ningbo"
    assert values["PUBLIC_READ"] is True
    assert values["SECRET_KEY"] is None
    assert values["DATA_DIR"] == "./gridmap-data"
    assert set(values) == {s.name for s in config.SETTINGS}


def test_environment_values_are_typed():
    values = config.load(environ={
        "GRIDMAP_PORT": "5050", "GRIDMAP_WORKERS": "3", "GRIDMAP_MAX_ITEMS": "200",
        "GRIDMAP_PUBLIC_READ": "0", "GRIDMAP_DEMO": "yes", "GRIDMAP_DATA_DIR": "/var/lib/gridmap",
        "GRIDMAP_BASEMAP": "none", "GRIDMAP_SECRET_KEY": "s3cret",
    })
    assert values["PORT"] == 5050 and type(values["PORT"]) is int
    assert values["WORKERS"] == 3 and values["MAX_ITEMS"] == 200
    assert values["PUBLIC_READ"] is False
    assert values["DEMO"] == "ningbo"
    assert values["DATA_DIR"] == "/var/lib/gridmap"
    assert values["BASEMAP"] == "none"
    assert values["SECRET_KEY"] == "s3cret"


@pytest.mark.parametrize("text, expected", [
    ("1", True), ("true", True), ("TRUE", True), (" on ", True), ("yes", True),
    ("0", False), ("false", False), ("no", False), ("off", False), ("", False),
])
def test_boolean_settings(text, expected):
    assert config.load(environ={"GRIDMAP_PUBLIC_READ": text})["PUBLIC_READ"] is expected


@pytest.mark.parametrize("value, expected", [
    ("ningbo", "ningbo"), ("zhejiang", "zhejiang"), (" Zhejiang ", "zhejiang"),
    # the setting was a boolean: its words keep their meaning
    ("1", "ningbo"), ("true", "ningbo"), ("yes", "ningbo"), ("on", "ningbo"), (True, "ningbo"),
    ("0", None), ("false", None), ("no", None), ("off", None), ("none", None), ("", None), (False, None),
])
def test_demo_setting_names_a_demo(value, expected):
    assert config.load({"DEMO": value}, environ={})["DEMO"] == expected
    if isinstance(value, str):
        assert config.load(environ={"GRIDMAP_DEMO": value})["DEMO"] == expected


def test_the_demo_setting_names_the_demos_there_are():
    from geodata.demo import DEMOS

    assert set(config.DEMOS) == set(DEMOS)


def test_an_unknown_demo_is_a_setting_error():
    with pytest.raises(config.SettingError, match="GRIDMAP_DEMO must be ningbo, zhejiang or off, not 'shanghai'"):
        config.load(environ={"GRIDMAP_DEMO": "shanghai"})


def test_python_m_server_names_an_unknown_demo_and_does_not_start(tmp_path, monkeypatch, capsys):
    from server import __main__ as cli

    monkeypatch.setenv("GRIDMAP_DEMO", "shanghai")
    assert cli.main(["--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "GRIDMAP_DEMO" in err and "'shanghai'" in err and "Traceback" not in err
    assert not (tmp_path / "data" / "gridmap.sqlite").exists()


def test_options_override_the_environment():
    environ = {"GRIDMAP_PORT": "5050", "GRIDMAP_DEMO": "1", "GRIDMAP_HOST": "0.0.0.0"}
    values = config.load({"PORT": 6000, "DEMO": False, "HOST": None}, environ=environ)
    assert values["PORT"] == 6000
    assert values["DEMO"] is None
    assert values["HOST"] == "0.0.0.0"  # a None option leaves the environment's value
    assert config.load({"PORT": "7000"}, environ=environ)["PORT"] == 7000  # options are typed too


def test_other_config_keys_pass_through():
    values = config.load({"TESTING": True, "DATA_DIR": "/tmp/x"}, environ={})
    assert values["TESTING"] is True
    assert values["DATA_DIR"] == "/tmp/x"


def test_reads_os_environ_by_default_and_only_then(monkeypatch):
    monkeypatch.setenv("GRIDMAP_PORT", "5051")
    assert config.load()["PORT"] == 5051
    assert config.load(environ={})["PORT"] == 5000


# --- users ------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["reset", "li", "--password"], ["reset", "li"], ["remove", "li"]])
def test_user_reset_and_remove_end_the_users_browser_sessions(tmp_path, command):
    from server import create_app
    from server.users import UserStore
    from tests.server.test_auth import sign_in

    data_dir = tmp_path / "data"
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})
    UserStore(data_dir).add("li", "editor", password="li-pw")
    browser = app.test_client()
    assert sign_in(browser, "li", "li-pw").status_code == 302
    assert browser.get("/upload").status_code == 200
    copy = app.test_client()  # the cookie as copied before the reset
    cookie = browser.get_cookie(app.config["SESSION_COOKIE_NAME"])
    copy.set_cookie(cookie.key, cookie.value)

    assert copy.get("/upload").status_code == 200

    result = subprocess.run([sys.executable, "-m", "server", "user", *command, "--data-dir", str(data_dir)],
                            cwd=ROOT, env=clean_env(), input="new-pw\n", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for client in (browser, copy):
        resp = client.get("/upload")
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")


# --- a damaged layer record: no start, and `repair` ------------------------------------

def damaged_old_data_dir(tmp_path):
    """A data directory of the first store, two versions of grids, its record truncated in the second
    entry: the data directory and the damaged record."""
    data_dir = tmp_path / "data"
    old = FileStore(data_dir)
    old.write("grids", two_grids(), author="a", message="first")
    old.write("grids", two_grids().head(1), author="b", message="second")
    manifest = data_dir / "layers" / "grids" / "manifest.json"
    raw = manifest.read_bytes()
    manifest.write_bytes(raw[: raw.index(b'"version": 2')])
    return data_dir, manifest


def test_a_damaged_record_stops_the_server_naming_the_file_and_repair_restores_it(tmp_path):
    data_dir, manifest = damaged_old_data_dir(tmp_path)

    started = run_cli("--data-dir", str(data_dir), "--port", str(free_port()), GRIDMAP_DEMO="0")
    assert started.returncode == 1
    assert str(manifest) in started.stderr and "python -m server repair" in started.stderr
    assert "serving" not in started.stdout

    repaired = run_cli("repair", "--data-dir", str(data_dir), GRIDMAP_LANG="en")
    assert repaired.returncode == 0, repaired.stderr
    assert "grids: rebuilt" in repaired.stdout and "2 versions" in repaired.stdout
    versions = FileStore(data_dir).versions("grids")
    assert [(v.version, v.author, v.features) for v in versions] == [(1, "a", 2), (2, None, 1)]
    FileStore(data_dir).check()

    again = run_cli("repair", "--data-dir", str(data_dir))
    assert again.returncode == 0 and "无需修复" in again.stdout  # the locale (C.UTF-8) names no language: Chinese


def test_repair_is_in_the_help_and_needs_a_data_dir(tmp_path):
    assert "repair" in run_cli("--help").stdout
    missing = run_cli("repair", "--data-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "中没有图层" in missing.stderr


@pytest.mark.parametrize("env", [{"GRIDMAP_LANG": "en"}, {"LANG": "en_US.UTF-8"}, {"LC_ALL": "en_GB.UTF-8", "LANG": "zh_CN.UTF-8"}])
def test_the_commands_speak_english_when_the_locale_or_gridmap_lang_says_so(tmp_path, env):
    missing = run_cli("repair", "--data-dir", str(tmp_path / "nowhere"), **env)
    assert missing.stderr.startswith("python -m server repair: error: ") and "holds no layers" in missing.stderr
    assert not re.search(r"[\u4e00-\u9fff]", missing.stderr)


def test_the_commands_speak_chinese_by_default_and_when_the_locale_says_so(tmp_path):
    for env in ({"LANG": "C.UTF-8"}, {"LANG": "zh_CN.UTF-8"}, {"LANG": "en_US.UTF-8", "GRIDMAP_LANG": "zh"}):
        missing = run_cli("repair", "--data-dir", str(tmp_path / "nowhere"), **env)
        assert missing.stderr.startswith("python -m server repair：错误：") and "中没有图层" in missing.stderr, env


# --- `migrate`: a data directory of the old store (one file a version) into the database -------------

def test_migrate_imports_every_old_version_once_and_keeps_the_old_layers_aside(tmp_path):
    data_dir = tmp_path / "data"
    old = FileStore(data_dir)
    old.write("grids", two_grids(), author="王芳", message="第一版", time="2025-03-01T08:00:00+00:00")
    old.write("grids", two_grids().head(1), author="b", message="second", time="2025-03-02T08:00:00+00:00")

    done = run_cli("migrate", "--data-dir", str(data_dir), GRIDMAP_LANG="en")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == ("grids: imported 2 versions, 1 to 2; "
                                           "the current one has 1 feature")
    assert "is kept as layers.migrated" in done.stdout
    assert not (data_dir / "layers").exists() and (data_dir / "layers.migrated" / "grids").is_dir()
    store = SQLiteStore(data_dir)
    assert [(v.version, v.time, v.author, v.message, v.features) for v in store.versions("grids")] == [
        (1, "2025-03-01T08:00:00+00:00", "王芳", "第一版", 2), (2, "2025-03-02T08:00:00+00:00", "b", "second", 1)]

    again = run_cli("migrate", GRIDMAP_DATA_DIR=str(data_dir))
    assert again.returncode == 0 and "无需导入" in again.stdout
    assert len(store.versions("grids")) == 2


def test_migrate_refuses_a_damaged_record_naming_repair_which_still_works_before_migration(tmp_path):
    data_dir, manifest = damaged_old_data_dir(tmp_path)

    refused = run_cli("migrate", "--data-dir", str(data_dir), GRIDMAP_LANG="en")
    assert refused.returncode == 1
    assert "nothing was imported" in refused.stderr and "python -m server repair" in refused.stderr
    assert str(manifest) in refused.stderr
    assert SQLiteStore(data_dir).versions("grids") == []

    assert run_cli("repair", "--data-dir", str(data_dir)).returncode == 0
    done = run_cli("migrate", "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    assert [(v.version, v.author) for v in SQLiteStore(data_dir).versions("grids")] == [(1, "a"), (2, None)]


def test_migrate_is_in_the_help():
    assert "python -m server migrate" in run_cli("--help").stdout
    usage = run_cli("migrate", "--help")
    assert usage.returncode == 0 and "--database-url" in usage.stdout


def test_the_first_start_imports_an_old_data_directory_and_serves_it(tmp_path):
    data_dir = tmp_path / "data"
    old = FileStore(data_dir)
    old.write("grids", two_grids(), author="王芳", message="第一版")
    old.write("grids", two_grids().head(1), author="b", message="second")
    port = free_port()
    server = Server(["--data-dir", str(data_dir), "--port", str(port)], clean_env(GRIDMAP_DEMO="0"),
                    tmp_path / "server.log")
    try:
        server.wait_healthy(port)
        url = f"http://127.0.0.1:{port}/api/collections/grids/versions"
        with urllib.request.urlopen(url, timeout=10) as response:
            versions = json.loads(response.read())
        assert "grids: imported 2 versions" in server.log()  # the log is in English
    finally:
        server.stop()
    assert (data_dir / "layers.migrated").is_dir() and not (data_dir / "layers").exists()
    assert sorted((v["version"], v["message"], v["features"]) for v in versions["versions"]) == [
        (1, "第一版", 2), (2, "second", 1)]


def test_repair_after_migration_says_where_the_old_layers_went(tmp_path):
    data_dir = tmp_path / "data"
    FileStore(data_dir).write("grids", two_grids(), author="a")
    assert run_cli("migrate", "--data-dir", str(data_dir)).returncode == 0
    late = run_cli("repair", "--data-dir", str(data_dir))
    assert late.returncode == 1 and "中没有图层" in late.stderr and "layers.migrated" in late.stderr


def test_user_scopes_limit_an_editor_and_are_listed_and_changed(tmp_path):
    from server.users import UserStore

    data_dir = tmp_path / "data"

    def user(*args):
        return subprocess.run([sys.executable, "-m", "server", "user", *args, "--data-dir", str(data_dir)],
                              cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)

    added = user("add", "wang", "--role", "editor", "--scope", "district=海曙区")
    assert added.returncode == 0, added.stderr
    assert "可编辑范围：district=海曙区" in added.stdout
    assert [str(s) for s in UserStore(data_dir).all()["wang"].areas] == ["district=海曙区"]
    changed = user("scope", "wang", "district=海曙区,street=月湖街道", "district=江北区")
    assert changed.returncode == 0, changed.stderr
    assert user("list").stdout.split("\n")[0].endswith("district=海曙区,street=月湖街道; district=江北区")
    assert user("scope", "wang").returncode == 0
    assert UserStore(data_dir).all()["wang"].areas == []
    bad = user("scope", "wang", "street=月湖街道")
    assert bad.returncode == 1 and "其上各级" in bad.stderr
    admin = user("add", "zhao", "--role", "admin", "--scope", "district=海曙区")
    assert admin.returncode == 1 and "只有编辑者有权限范围" in admin.stderr  # the C locale: Chinese


def test_warm_up_builds_what_the_maps_first_view_asks_for(app, store, monkeypatch):
    from geodata import tiles
    from geodata.validate import validate
    from tests.factories import center_row, centers, six_grids

    store.write("grids", validate(six_grids(), "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")]), "centers").data, author="t")
    built, real = [], tiles.TileSource.of.__func__

    def of(cls, name, gdf, visible):
        built.append(name)
        return real(cls, name, gdf, visible)

    monkeypatch.setattr(tiles.TileSource, "of", classmethod(of))
    assert app.test_client().get("/healthz").get_json()["warm"] is False
    cli.warm_up(app)
    assert app.test_client().get("/healthz").get_json()["warm"] is True  # what benchmarks wait for
    assert {"coverage", "gaps", "districts", "streets", "communities", "centers"} >= set(built) >= {"coverage",
                                                                                                   "streets"}
    before = len(built)
    z = tiles.MIN_ZOOM["grids"] - 2  # a zoom the warm-up did not ask for: cut from the source it built
    x, y = tiles.tile_of(121.515, 29.81, z)
    assert app.test_client().get(f"/api/collections/coverage/tiles/WebMercatorQuad/{z}/{y}/{x}").status_code == 200
    assert len(built) == before  # the first view's tile: cut from what the warm-up built
