"""PostgreSQL stopped and started under a running app: readers and a writer meet 503 with Retry-After
while it is down, never a 500; every upload answered 201 is stored whole, no version is partial; the
same app answers again once it is back.  A server started while its database is down waits for it a
bounded time, then exits with one line.  (The store alone: tests/geodata/test_store.py.)"""

from __future__ import annotations

import io
import threading
import time

import pytest

from geodata.store import FileStore
from server import create_app
from tests.factories import six_grids
from tests.server.test_cli import free_port, run_cli, start_server  # noqa: F401 - start_server: a fixture

READS = ["/api/collections/grids/items", "/api/collections/grids/items?bbox=121,29,122,30&limit=3",
         "/healthz", "/api/collections/grids/versions"]
RESTARTS = 3
WAIT_S = 120  # generous bounds for a loaded machine: the test waits for events, never for time


@pytest.fixture
def app(tmp_path, postgis_url):
    app = create_app({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": postgis_url, "DEMO": False,
                      "TESTING": True})
    yield app
    app.extensions["gridmap"].jobs.close()


def upload(client, headers, population: int):
    grids = six_grids().assign(population=population)  # each upload: one population in all six grids
    data = {"file": (io.BytesIO(grids.to_json(drop_id=True).encode()), "grids.geojson")}
    return client.post("/api/uploads/grids", data=data, headers=headers, content_type="multipart/form-data")


def allowed(resp) -> str | None:
    """What is wrong with an answer given while the database may be down, or None."""
    if resp.status_code in (200, 201):
        return None
    if resp.status_code != 503:
        return f"{resp.status_code}: {resp.get_data(as_text=True)[:300]}"
    body = resp.get_json(silent=True) or {}
    if not resp.headers.get("Retry-After", "").isdigit():
        return f"503 without Retry-After: {body}"
    if resp.request.path == "/healthz":
        return None if body.get("status") == "unavailable" and "database" in body.get("message", "") else \
            f"/healthz 503 body: {body}"
    return None if body.get("error", {}).get("code") == "service_unavailable" else f"503 body: {body}"


def test_a_database_restart_under_readers_and_a_writer_loses_nothing(app, postgres_cluster, caplog):
    editor = {"Authorization": "Bearer " + app.extensions["gridmap_users"].add("editor1", "editor")[1]}
    assert upload(app.test_client(), editor, 1000).status_code == 201
    stop, wrong, stored = threading.Event(), [], []  # stored: populations of the uploads answered 201
    names = [*READS, "upload"]
    # the database's state the test last set, and who answered as expected since: swapped in one assignment
    phase = [(False, {name: threading.Event() for name in names})]

    def note(name: str, resp) -> None:
        problem = allowed(resp)
        if problem:
            wrong.append(f"{name}: {problem}")
        down, seen = phase[0]
        if resp.status_code == (503 if down else 200 if name in READS else 201):
            seen[name].set()

    def reader(url: str) -> None:
        client = app.test_client()
        while not stop.is_set():
            note(url, client.get(url))

    def writer() -> None:
        client, population = app.test_client(), 1000
        while not stop.is_set():
            population += 1
            resp = upload(client, editor, population)
            if resp.status_code == 201:
                stored.append(population)
            note("upload", resp)

    def switch(down: bool) -> None:
        """Stop or start the database, then wait until every route has met it so."""
        seen = {name: threading.Event() for name in names}
        phase[0] = (down, seen)
        try:
            postgres_cluster.stop() if down else postgres_cluster.start()
        finally:
            for name, event in seen.items():
                if not event.wait(WAIT_S):
                    if down:
                        postgres_cluster.start()
                    pytest.fail(f"{name} never answered {'503' if down else 'again'} with the database "
                                f"{'down' if down else 'back'}")

    threads = [threading.Thread(target=reader, args=(url,)) for url in READS] + [threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(RESTARTS):
            switch(down=True)
            switch(down=False)  # the same app, not rebuilt, answers again by itself
    finally:
        stop.set()
        for thread in threads:
            thread.join(WAIT_S)
    assert not wrong, wrong[:10]
    said = [r.getMessage() for r in caplog.records if r.name == "geodata.store.postgis"]
    assert any("cannot be reached: requests that need it answer 503" in line for line in said), said
    assert any(line.endswith("answers again") for line in said), said

    client = app.test_client()
    for url in READS:
        assert client.get(url).status_code == 200, url
    uploaded = set(range(1000, max(stored) + 1))
    history = client.get("/api/collections/grids/versions").get_json()["versions"]
    assert [v["version"] for v in history] == list(range(len(history), 0, -1))
    contents = {}
    for v in history:  # each version whole: its record's count, one upload's content
        features = client.get(f"/api/collections/grids/items?version={v['version']}&limit=100").get_json()["features"]
        assert len(features) == v["features"] == 6, v
        populations = {f["properties"]["population"] for f in features}
        assert len(populations) == 1 and populations <= uploaded, (v, populations)
        contents[v["version"]] = populations.pop()
    assert set(stored) <= set(contents.values())  # every upload answered 201 is in the history
    assert client.get("/healthz").get_json()["layers"]["grids"]["version"] == len(history)


# --- `python -m server` started while the database is down -------------------------------------

def test_a_server_whose_database_stays_down_exits_with_a_one_line_error(tmp_path):
    port = free_port()  # nothing listens there
    result = run_cli("--data-dir", str(tmp_path / "data"), "--port", str(free_port()),
                     "--database-url", f"postgresql://gridmap:secret@127.0.0.1:{port}/gridmap",
                     GRIDMAP_DEMO="0", GRIDMAP_DATABASE_WAIT_S="1", GRIDMAP_LANG="en")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    (error,) = result.stderr.strip().splitlines()
    assert error.startswith(f"python -m server: error: the database 127.0.0.1:{port}/gridmap cannot be reached")
    assert "GRIDMAP_DATABASE_WAIT_S" in error and "secret" not in error
    assert f"127.0.0.1:{port}/gridmap cannot be reached" in result.stdout  # it said it would wait


def test_a_server_started_before_its_database_waits_for_it_and_serves(start_server, postgis_url, postgres_cluster,
                                                                      tmp_path):
    port = free_port()
    postgres_cluster.stop()
    try:
        server = start_server(["--data-dir", str(tmp_path / "data"), "--port", str(port)], GRIDMAP_DEMO="0",
                              GRIDMAP_WORKERS="1", GRIDMAP_BASEMAP="none", GRIDMAP_DATABASE_URL=postgis_url,
                              GRIDMAP_DATABASE_WAIT_S="600")
        deadline = time.monotonic() + WAIT_S
        while "GRIDMAP_DATABASE_WAIT_S" not in server.log():  # it says it waits (naming the setting), and goes on waiting
            assert server.proc.poll() is None, server.log()
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)  # poll interval; the deadline bounds the loop
    finally:
        postgres_cluster.start()
    status, _, body = server.wait_healthy(port)
    assert status == 200 and body["status"] == "ok"
    assert "Traceback" not in server.log()


def test_migrate_into_a_database_that_is_down_is_a_one_line_error(tmp_path):
    FileStore(tmp_path / "data").write("grids", six_grids(), author="planner")  # an older data directory
    port = free_port()  # nothing listens there
    result = run_cli("migrate", "--data-dir", str(tmp_path / "data"),
                     "--database-url", f"postgresql://gridmap@127.0.0.1:{port}/gridmap", GRIDMAP_LANG="en")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"python -m server migrate: error: the database 127.0.0.1:{port}/gridmap cannot be reached")
    assert (tmp_path / "data" / "layers" / "grids").is_dir()  # left as it was, to import once the database is up
