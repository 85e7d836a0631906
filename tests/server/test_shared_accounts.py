"""Two instances on one PostGIS database, each with its own data directory (two machines): they agree
on users, sessions, sign-in limits, the audit log and the key that signs browser sessions."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from server import create_app
from server.audit import read as read_audit
from server.users import UserStore
from tests.factories import six_grids
from tests.server.test_auth import bearer, csrf_token, sign_in

ROOT = Path(__file__).resolve().parents[2]


def start(data_dir, url=None, **config):
    values = {"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, **config}
    if url:
        values["DATABASE_URL"] = url
    return create_app(values)


@pytest.fixture
def machines(postgis_url, tmp_path):
    """Two apps on one database, each with a data directory of its own."""
    apps = [start(tmp_path / "one", postgis_url), start(tmp_path / "two", postgis_url)]
    yield apps
    for app in apps:
        app.extensions["gridmap"].jobs.close()
        app.extensions["gridmap"].store.close()


def who(client) -> str | None:
    """The user a page names as signed in (None: nobody)."""
    found = re.search(r'<span class="user">([^<]*?) · ', client.get("/dashboard").get_data(as_text=True))
    return found and found.group(1)


def moved_cookie(from_client, to_app):
    """A browser of ``to_app`` holding the session cookie ``from_client`` got (a load balancer's next pick)."""
    browser = to_app.test_client()
    cookie = from_client.get_cookie(to_app.config["SESSION_COOKIE_NAME"])
    browser.set_cookie(cookie.key, cookie.value)
    return browser


def upload(client, headers):
    data = {"file": (io.BytesIO(six_grids().to_json(drop_id=True).encode()), "grids.geojson")}
    return client.post("/api/uploads/grids", data=data, headers=headers, content_type="multipart/form-data")


def test_a_user_added_through_one_signs_in_on_the_other(machines):
    one, two = machines
    token = one.extensions["gridmap_users"].add("li", "editor", password="li-pw")[1]
    assert two.test_client().get("/api/collections", headers=bearer(token)).status_code == 200
    assert upload(two.test_client(), bearer(token)).status_code == 201
    browser = two.test_client()
    assert sign_in(browser, "li", "li-pw").status_code == 302
    assert who(browser) == "li"


def test_a_user_added_by_the_command_signs_in_on_every_instance(machines, postgis_url, tmp_path):
    out = subprocess.run([sys.executable, "-m", "server", "user", "add", "wang", "--role", "viewer",
                          "--data-dir", str(tmp_path / "admin"), "--database-url", postgis_url],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    for app in machines:
        assert app.test_client().get("/api/collections", headers=bearer(token)).status_code == 200
    assert not (tmp_path / "admin" / "users.json").exists()  # in the database, not in a file
    listing = subprocess.run([sys.executable, "-m", "server", "user", "list", "--data-dir", str(tmp_path / "admin")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={"PATH": "/usr/bin:/bin", "GRIDMAP_DATABASE_URL": postgis_url})
    assert "wang\tviewer" in listing.stdout, listing.stderr  # GRIDMAP_DATABASE_URL is honoured too


def test_a_session_cookie_from_one_is_accepted_by_the_other(machines):
    one, two = machines
    one.extensions["gridmap_users"].add("li", "editor", password="li-pw")
    assert one.config["SECRET_KEY"] == two.config["SECRET_KEY"]
    browser = one.test_client()
    assert sign_in(browser, "li", "li-pw").status_code == 302
    form = csrf_token(browser, "/dashboard")  # a page of one instance, whose form is sent to the other
    elsewhere = moved_cookie(browser, two)
    assert who(elsewhere) == "li"
    # a cookie-signed write needs the CSRF token: one instance's token is good on the other too
    resp = elsewhere.post("/api/uploads/grids", data={"csrf_token": form})
    assert resp.status_code == 400 and "file" in resp.get_json()["error"]["message"]  # past CSRF and roles


def test_logout_on_one_ends_the_session_on_the_other(machines):
    one, two = machines
    one.extensions["gridmap_users"].add("li", "editor", password="li-pw")
    browser = one.test_client()
    sign_in(browser, "li", "li-pw")
    copy = moved_cookie(browser, two)
    elsewhere = two.test_client()
    sign_in(elsewhere, "li", "li-pw")  # another browser of the same user, signed in on the other instance
    assert who(copy) == who(elsewhere) == "li"
    browser.post("/logout", data={"csrf_token": csrf_token(browser, "/dashboard")})
    for client in (copy, elsewhere):
        resp = client.get("/upload")
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")


def test_a_token_reset_on_one_ends_the_old_token_and_sessions_on_the_other(machines):
    one, two = machines
    old = one.extensions["gridmap_users"].add("li", "editor", password="li-pw")[1]
    browser = two.test_client()
    sign_in(browser, "li", "li-pw")
    new = one.extensions["gridmap_users"].reset("li")
    client = two.test_client()
    assert client.get("/api/collections", headers=bearer(old)).status_code == 401
    assert client.get("/api/collections", headers=bearer(new)).status_code == 200
    assert browser.get("/upload").status_code == 302


def test_failed_sign_ins_through_both_count_together(machines):
    one, two = machines
    one.extensions["gridmap_users"].add("li", "editor", password="li-pw")
    clients = [one.test_client(), two.test_client()]
    for i in range(5):
        clients[i % 2].environ_base["REMOTE_ADDR"] = f"10.0.0.{i}"  # from five addresses: the account's count
        assert sign_in(clients[i % 2], "li", "wrong").status_code == 401
    for client in clients:
        client.environ_base["REMOTE_ADDR"] = "10.0.1.1"
        resp = sign_in(client, "li", "li-pw")
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0


def test_audit_lines_of_both_are_read_back_from_one_place(machines, postgis_url, tmp_path):
    one, two = machines
    token = one.extensions["gridmap_users"].add("li", "editor")[1]
    assert upload(one.test_client(), {}).status_code == 401
    assert upload(two.test_client(), bearer(token)).status_code == 201
    assert upload(one.test_client(), {**bearer(token), "If-Match": '"7"'}).status_code == 412
    expected = [(None, "refused 401"), ("li", "stored"), ("li", "refused 412")]
    for where in (postgis_url, one.extensions["gridmap_accounts"], two.extensions["gridmap_accounts"]):
        assert [(e["user"], e["outcome"]) for e in read_audit(where)] == expected
    assert not (tmp_path / "one" / "audit.log").exists() and not (tmp_path / "two" / "audit.log").exists()


def test_a_set_secret_key_wins_over_the_databases(postgis_url, tmp_path):
    app = start(tmp_path / "one", postgis_url, SECRET_KEY="set-by-the-operator")
    try:
        assert app.config["SECRET_KEY"] == "set-by-the-operator"
    finally:
        app.extensions["gridmap"].store.close()


def test_an_old_data_directory_keeps_its_users_tokens_sessions_and_audit(postgis_url, tmp_path):
    # a machine that ran on its data directory alone: a user, a signed-in browser, an audit line
    alone = start(tmp_path / "one")
    token = UserStore(tmp_path / "one").add("li", "editor", password="li-pw")[1]
    browser = alone.test_client()
    sign_in(browser, "li", "li-pw")
    assert upload(alone.test_client(), {}).status_code == 401
    before = read_audit(tmp_path / "one")

    # it moves to the shared database; another machine joins with a data directory of its own
    moved, other = start(tmp_path / "one", postgis_url), start(tmp_path / "two", postgis_url)
    try:
        for app in (moved, other):
            assert app.test_client().get("/api/collections", headers=bearer(token)).status_code == 200
            assert who(moved_cookie(browser, app)) == "li"  # still signed in
        assert read_audit(postgis_url) == before
        assert (tmp_path / "one" / "users.json.migrated").exists()
        assert start(tmp_path / "one", postgis_url).extensions["gridmap_users"].all().keys() == {"li"}  # once
    finally:
        for app in (moved, other):
            app.extensions["gridmap"].store.close()


def test_while_the_database_is_down_sign_in_is_a_503_not_a_500(postgis_url, postgres_cluster, tmp_path):
    app = start(tmp_path / "one", postgis_url)
    token = app.extensions["gridmap_users"].add("li", "editor", password="li-pw")[1]
    client = app.test_client()
    form = csrf_token(client)
    postgres_cluster.stop()
    try:
        resp = client.post("/login", data={"name": "li", "password": "li-pw", "csrf_token": form},
                           headers={"Accept": "application/json"})
        assert resp.status_code == 503 and "Retry-After" in resp.headers
        assert client.get("/api/collections", headers=bearer(token)).status_code == 503
    finally:
        postgres_cluster.start()
    assert client.get("/api/collections", headers=bearer(token)).status_code == 200
    assert sign_in(client, "li", "li-pw").status_code == 302
    app.extensions["gridmap"].store.close()
