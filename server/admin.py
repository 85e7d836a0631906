"""Admins' page: the users, their roles and the units each editor may change (its scopes).

Presentation only: ``UserStore.set_scopes`` checks and stores (``geodata.scopes``); each change is audited.
Forms carry the CSRF token a signed-in browser's writes need.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from geodata.errors import BadRequest
from geodata.i18n import in_language

from . import audit
from .audit import audited
from .auth import page_for, require, users
from .i18n import current_language

blueprint = Blueprint("admin", __name__)


@blueprint.get("/admin/users")
def users_page():
    return page_for("admin", "managing users") or _page()


@blueprint.post("/admin/users/<name>/scopes")
@audited("scope", "name")
@require("admin")
def set_scopes(name: str):
    lines = [line.strip() for line in request.form.get("scopes", "").splitlines() if line.strip()]
    audit.note(scopes=lines)
    try:
        users().set_scopes(name, lines)
    except BadRequest as e:
        return _page(error=(name, in_language(e.message, current_language()))), 400
    return redirect(url_for("admin.users_page", saved=name))


def _page(error: tuple[str, str] | None = None):
    return render_template("admin_users.html", users=list(users().all().values()), error=error,
                           saved=request.args.get("saved"))
