"""Users and roles: tokens for scripts, sign-in for browsers, CSRF for cookie-signed writes."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from server import create_app
from server.users import UserStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def users(app):
    return app.extensions["gridmap_users"]


@pytest.fixture
def tokens(users):
    return {role: users.add(f"{role}1", role, password=f"{role}-pw")[1] for role in ("viewer", "editor", "admin")}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def csrf_token(client, path="/login") -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', client.get(path).get_data(as_text=True)
                     ).group(1)


def sign_in(client, name, password):
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf_token(client)})


def test_cli_user_add_prints_a_working_token_on_its_last_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "server", "user", "add", "wang", "--role", "editor",
                          "--data-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=True)
    token = out.stdout.strip().splitlines()[-1]
    user = UserStore(tmp_path).by_token(token)
    assert (user.name, user.role) == ("wang", "editor")
    assert token not in (tmp_path / "users.json").read_text()  # only its digest is kept


def test_cli_list_reset_remove(tmp_path):
    def cli(*args, stdin=None):
        return subprocess.run([sys.executable, "-m", "server", "user", *args, "--data-dir", str(tmp_path)], cwd=ROOT,
                              capture_output=True, text=True, input=stdin)

    first = cli("add", "li", "--role", "viewer").stdout.splitlines()[-1]
    assert cli("add", "li", "--role", "viewer").returncode == 1
    listing = cli("list").stdout
    assert "li\tviewer" in listing
    second = cli("reset", "li", "--password", stdin="new-secret\n").stdout.splitlines()[-1]
    store = UserStore(tmp_path)
    assert store.by_token(first) is None and store.by_token(second).name == "li"
    assert store.check_password("li", "new-secret").name == "li"
    assert cli("remove", "li").returncode == 0
    assert UserStore(tmp_path).all() == {}
    assert cli("remove", "li").returncode == 1
    assert cli("add", "x", "--role", "boss").returncode == 2


def test_passwords_are_hashed(users):
    users.add("zhao", "editor", password="s3cret")
    text = users.path.read_text()
    assert "s3cret" not in text and "scrypt:" in text or "pbkdf2:" in text
    assert users.check_password("zhao", "s3cret").name == "zhao"
    assert users.check_password("zhao", "wrong") is None


def test_writes_need_a_user_and_the_editor_role(client, tokens):
    resp = client.post("/api/uploads/grids")
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = client.post("/api/uploads/grids", headers=bearer(tokens["viewer"]))
    assert resp.status_code == 403 and "editor" in resp.get_json()["error"]["message"]
    resp = client.post("/api/uploads/grids", headers=bearer(tokens["editor"]))
    assert resp.status_code == 400  # authorised; only the file is missing
    assert client.post("/api/collections/grids/versions/1/restore").status_code == 401


def test_a_bad_token_is_refused_even_for_reading(client, tokens):
    assert client.get("/api/collections", headers=bearer("not-a-token")).status_code == 401
    assert client.get("/api/collections", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/api/collections", headers=bearer(tokens["viewer"])).status_code == 200


def test_browser_sign_in_sets_a_safe_session_cookie(client, tokens):
    assert sign_in(client, "editor1", "wrong").status_code == 401
    resp = sign_in(client, "editor1", "editor-pw")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "editor1" in client.get("/dashboard").get_data(as_text=True)


def test_sign_in_without_the_form_token_is_refused(client, tokens):
    resp = client.post("/login", data={"name": "editor1", "password": "editor-pw"})
    assert resp.status_code == 400
    assert "editor1" not in client.get("/dashboard").get_data(as_text=True)


def test_cookie_signed_writes_need_the_csrf_token(client, tokens):
    sign_in(client, "editor1", "editor-pw")
    forged = client.post("/api/uploads/grids", data={})
    assert forged.status_code == 400 and forged.get_json()["error"]["code"] == "csrf_failed"
    token = csrf_token(client, "/dashboard")
    resp = client.post("/api/uploads/grids", data={"csrf_token": token})
    assert resp.status_code == 400 and "file" in resp.get_json()["error"]["message"]  # past CSRF and roles


def test_logout_forgets_the_user(client, tokens):
    sign_in(client, "admin1", "admin-pw")
    resp = client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard")})
    assert resp.status_code == 302
    assert "admin1" not in client.get("/dashboard").get_data(as_text=True)


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_no_open_redirect_after_sign_in(app, tokens, target):
    client = app.test_client()
    resp = client.post(f"/login?next={target}", data={"name": "viewer1", "password": "viewer-pw",
                                                      "csrf_token": csrf_token(client)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_sign_in_returns_to_the_page_asked_for(client, tokens):
    resp = client.post("/login?next=/dashboard?lang=en", data={"name": "viewer1", "password": "viewer-pw",
                                                               "csrf_token": csrf_token(client)})
    assert resp.headers["Location"] == "/dashboard?lang=en"


def test_closed_reading(data_dir):
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "PUBLIC_READ": False})
    client = app.test_client()
    token = app.extensions["gridmap_users"].add("reader", "viewer")[1]
    assert client.get("/api/collections").status_code == 401
    page = client.get("/dashboard", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert client.get("/healthz").status_code == 200 and client.get("/login").status_code == 200
    assert client.get("/api/collections", headers=bearer(token)).status_code == 200
