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


# --- hardened sign-in (issue 10, observation 7) --------------------------------------

def test_the_sixth_wrong_password_is_refused_with_retry_after(client, tokens):
    for _ in range(5):
        assert sign_in(client, "editor1", "wrong").status_code == 401
    resp = sign_in(client, "editor1", "wrong")
    assert resp.status_code == 429
    assert 0 < int(resp.headers["Retry-After"]) <= 15 * 60
    assert "editor1" not in client.get("/dashboard").get_data(as_text=True)


def test_while_limited_even_the_right_password_is_refused(client, tokens):
    for _ in range(5):
        sign_in(client, "editor1", "wrong")
    resp = sign_in(client, "editor1", "editor-pw")
    assert resp.status_code == 429 and "Retry-After" in resp.headers
    assert "editor1" not in client.get("/dashboard").get_data(as_text=True)


def test_the_limit_page_speaks_the_pages_language_and_api_clients_get_json(client, tokens):
    for _ in range(5):
        sign_in(client, "editor1", "wrong")
    page = sign_in(client, "editor1", "x")
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert "登录失败次数过多" in page.get_data(as_text=True)  # Chinese by default
    page = client.post("/login?lang=en", data={"name": "editor1", "password": "x", "csrf_token": csrf_token(client)})
    assert "Too many failed sign-ins" in page.get_data(as_text=True)
    api = client.post("/login", data={"name": "editor1", "password": "x", "csrf_token": csrf_token(client)},
                      headers={"Accept": "application/json"})
    assert api.status_code == 429 and api.get_json()["error"]["code"] == "too_many_requests"
    assert int(api.headers["Retry-After"]) > 0


def test_the_limit_holds_across_workers_sharing_the_data_dir(data_dir):
    # two apps on one data directory stand for two gunicorn workers (or two servers)
    apps = [create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True}) for _ in range(2)]
    apps[0].extensions["gridmap_users"].add("li", "editor", password="li-pw")
    clients = [a.test_client() for a in apps]
    for i in range(5):
        assert sign_in(clients[i % 2], "li", "wrong").status_code == 401
    assert sign_in(clients[1], "li", "li-pw").status_code == 429
    assert sign_in(clients[0], "li", "li-pw").status_code == 429


def test_one_address_is_limited_across_account_names(client, tokens):
    for name in ("a1", "a2", "viewer1", "a4", "a5"):
        assert sign_in(client, name, "wrong").status_code == 401
    assert sign_in(client, "editor1", "editor-pw").status_code == 429  # another account, right password
    # another address can still sign in to an account this one did not try
    other = client.application.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert sign_in(other, "editor1", "editor-pw").status_code == 302


def test_one_account_is_limited_across_addresses(app, tokens):
    for i in range(5):
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = f"10.0.1.{i}"
        assert sign_in(c, "admin1", "wrong").status_code == 401
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = "10.0.2.1"
    assert sign_in(c, "admin1", "admin-pw").status_code == 429


def test_a_success_does_not_reset_the_address_count_for_other_accounts(client, tokens):
    for name in ("x1", "x2", "x3", "x4"):
        sign_in(client, name, "wrong")
    assert sign_in(client, "viewer1", "viewer-pw").status_code == 302  # the attacker's own account
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard")})
    assert sign_in(client, "x5", "wrong").status_code == 401
    assert sign_in(client, "x6", "wrong").status_code == 429


def test_the_window_frees_a_try_after_fifteen_minutes(app, tokens):
    now = [1_000_000.0]
    app.extensions["gridmap_attempts"].clock = lambda: now[0]
    client = app.test_client()
    for i in range(5):
        sign_in(client, "editor1", "wrong")
        now[0] += 60
    resp = sign_in(client, "editor1", "editor-pw")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) == 15 * 60 - 5 * 60
    now[0] += 15 * 60 - 5 * 60
    assert sign_in(client, "editor1", "editor-pw").status_code == 302


def test_repeated_bad_tokens_from_one_address_are_limited(client, tokens):
    for _ in range(5):
        assert client.get("/api/collections", headers=bearer("guess")).status_code == 401
    resp = client.get("/api/collections", headers=bearer("guess"))
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    assert client.get("/api/collections", headers=bearer(tokens["viewer"])).status_code == 200  # good tokens pass
    assert sign_in(client, "editor1", "editor-pw").status_code == 302  # passwords are counted apart


def test_an_unknown_user_costs_the_same_hash_check(users, monkeypatch):
    import server.users

    users.add("nopass", "viewer")
    users.add("known", "viewer", password="pw")
    checked = []
    real = server.users.check_password_hash
    monkeypatch.setattr(server.users, "check_password_hash", lambda h, p: checked.append(h) or real(h, p))
    for name in ("nobody", "nopass", "known"):
        assert users.check_password(name, "wrong") is None
    assert len(checked) == 3
    method = users.all()["known"].password_hash.split("$")[0]
    assert all(h.split("$")[0] == method for h in checked)  # the same (slow) method for each
    assert users.check_password("known", "pw").name == "known"


def copied_session(client, app):
    """A second browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    thief.set_cookie(cookie.key, cookie.value)
    return thief


def test_a_cookie_copied_before_logout_is_refused_after_it(app, client, tokens):
    sign_in(client, "admin1", "admin-pw")
    thief = copied_session(client, app)
    assert "admin1" in thief.get("/dashboard").get_data(as_text=True)  # the copy works while signed in
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard")})
    assert "admin1" not in thief.get("/dashboard").get_data(as_text=True)
    assert thief.post("/api/collections/grids/versions/1/restore").status_code in (400, 401)


def test_logout_ends_every_session_of_the_user(app, tokens):
    first, second = app.test_client(), app.test_client()
    sign_in(first, "editor1", "editor-pw")
    sign_in(second, "editor1", "editor-pw")
    first.post("/logout", data={"csrf_token": csrf_token(first, "/dashboard")})
    assert "editor1" not in second.get("/dashboard").get_data(as_text=True)
    assert sign_in(first, "editor1", "editor-pw").status_code == 302  # signing in again works
    assert "editor1" in first.get("/dashboard").get_data(as_text=True)


@pytest.mark.parametrize("change", ["reset", "reset_password", "remove"])
def test_reset_and_remove_end_sessions(app, users, tokens, change):
    client = app.test_client()
    sign_in(client, "viewer1", "viewer-pw")
    assert "viewer1" in client.get("/dashboard").get_data(as_text=True)
    {"reset": lambda: users.reset("viewer1"), "reset_password": lambda: users.reset("viewer1", password="new-pw"),
     "remove": lambda: users.remove("viewer1")}[change]()
    assert "viewer1" not in client.get("/dashboard").get_data(as_text=True)


def test_a_user_added_again_does_not_inherit_old_sessions(app, users):
    users.add("zhou", "editor", password="pw")
    client = app.test_client()
    sign_in(client, "zhou", "pw")
    users.remove("zhou")
    users.add("zhou", "editor", password="pw")
    assert "zhou" not in client.get("/dashboard").get_data(as_text=True)


def test_secure_cookies_setting_marks_every_cookie_secure(data_dir):
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "SECURE_COOKIES": True})
    app.extensions["gridmap_users"].add("wu", "viewer", password="pw")
    client = app.test_client()
    assert "Secure" in sign_in(client, "wu", "pw").headers["Set-Cookie"]
    assert "Secure" in client.get("/dashboard?lang=en").headers["Set-Cookie"]


def test_cookies_are_not_secure_by_default(client, tokens):
    assert "Secure" not in sign_in(client, "viewer1", "viewer-pw").headers["Set-Cookie"]


def assert_browser_headers(resp, page: bool):
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    if page:
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"


def test_security_headers_on_every_kind_of_response(app, client, tokens):
    @app.get("/test-boom")
    def boom():
        raise RuntimeError("boom")

    assert_browser_headers(client.get("/healthz"), page=False)
    assert_browser_headers(client.get("/api/collections"), page=False)
    assert_browser_headers(client.get("/login"), page=True)
    assert_browser_headers(client.get("/upload", headers={"Accept": "text/html"}), page=True)
    missing = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert missing.status_code == 404
    assert_browser_headers(missing, page=True)
    assert_browser_headers(client.get("/api/no-such-thing"), page=False)
    failed = client.get("/test-boom", headers={"Accept": "text/html"})
    assert failed.status_code == 500
    assert_browser_headers(failed, page=True)


def test_when_the_counts_cannot_be_kept_sign_in_is_a_503_not_unlimited(app, client, tokens, monkeypatch):
    import sqlite3

    def broken():
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(app.extensions["gridmap_accounts"], "_connect", broken)  # the counts' file
    resp = client.post("/login", data={"name": "editor1", "password": "editor-pw", "csrf_token": csrf_token(client)},
                       headers={"Accept": "application/json"})
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "service_unavailable"
    assert "Retry-After" in resp.headers
    assert client.get("/api/collections", headers=bearer("guess")).status_code == 401  # refused either way


def test_guesses_sent_at_once_get_no_more_than_five_checks(app, tokens):
    # each try is counted before its password is checked, so parallel guesses cannot all pass one count
    import threading

    clients = [app.test_client() for _ in range(12)]
    forms = [csrf_token(c) for c in clients]
    start, statuses = threading.Barrier(len(clients)), []

    def guess(client, form):
        start.wait()
        statuses.append(client.post("/login", data={"name": "editor1", "password": "wrong",
                                                    "csrf_token": form}).status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, forms)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [401] * 5 + [429] * 7


def test_behind_trusted_proxies_the_forwarded_address_is_counted(data_dir):
    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "TRUSTED_PROXIES": 1})
    app.extensions["gridmap_users"].add("he", "viewer", password="pw")
    client = app.test_client()
    for i in range(5):
        client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
        sign_in(client, f"n{i}", "wrong")
    assert sign_in(client, "he", "pw").status_code == 429  # the same client behind the proxy
    client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.8"
    assert sign_in(client, "he", "pw").status_code == 302  # another client through the same proxy
