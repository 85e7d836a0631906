"""The admins' page: users, roles and editors' scopes, changed in a browser form (CSRF), audited."""

from __future__ import annotations

import re

from server.audit import read as read_audit
from tests.server.test_auth import csrf_token, sign_in


def signed_in_admin(app):
    app.extensions["gridmap_users"].add("boss", "admin", password="boss-pw")
    browser = app.test_client()
    assert sign_in(browser, "boss", "boss-pw").status_code == 302
    return browser


def test_an_admin_sets_an_editors_scopes_in_the_form(app, data_dir):
    users = app.extensions["gridmap_users"]
    users.add("li", "editor")
    browser = signed_in_admin(app)
    page = browser.get("/admin/users").get_data(as_text=True)
    assert 'data-user="li"' in page and "不限范围" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = browser.post("/admin/users/li/scopes", data={"csrf_token": token,
                                                         "scopes": "district=海曙区,street=月湖街道\n\ndistrict=江北区\n"})
    assert resp.status_code == 302
    assert [str(s) for s in users.all()["li"].areas] == ["district=海曙区,street=月湖街道", "district=江北区"]
    assert "district=海曙区,street=月湖街道\ndistrict=江北区</textarea>" in browser.get(
        "/admin/users?saved=li").get_data(as_text=True)
    entry = read_audit(data_dir)[-1]
    assert (entry["action"], entry["target"], entry["user"], entry["status"]) == ("scope", "li", "boss", 302)
    assert entry["scopes"] == ["district=海曙区,street=月湖街道", "district=江北区"]


def test_a_bad_scope_is_shown_beside_the_form_and_nothing_changes(app):
    users = app.extensions["gridmap_users"]
    users.add("li", "editor", scopes=["district=海曙区"])
    browser = signed_in_admin(app)
    resp = browser.post("/admin/users/li/scopes", data={"csrf_token": csrf_token(browser), "scopes": "street=月湖街道"})
    assert resp.status_code == 400 and "范围须同时写出其上各级" in resp.get_data(as_text=True)  # the page's language
    assert [str(s) for s in users.all()["li"].areas] == ["district=海曙区"]


def test_only_admins_manage_users(app, client):
    app.extensions["gridmap_users"].add("ed", "editor", password="ed-pw")
    assert client.get("/admin/users").status_code == 302  # to sign in
    editor = app.test_client()
    sign_in(editor, "ed", "ed-pw")
    assert editor.get("/admin/users").status_code == 403
    assert editor.post("/admin/users/ed/scopes", data={"csrf_token": csrf_token(editor), "scopes": ""}).status_code == 403


def test_the_form_needs_its_csrf_token(app):
    app.extensions["gridmap_users"].add("li", "editor")
    browser = signed_in_admin(app)
    assert browser.post("/admin/users/li/scopes", data={"scopes": "district=海曙区"}).status_code == 400
    assert app.extensions["gridmap_users"].all()["li"].areas == []
