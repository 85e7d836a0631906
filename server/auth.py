"""Who is asking: API tokens for scripts, a signed session cookie for browsers; role checks.

- ``Authorization: Bearer <token>`` identifies a script; a bad token is a 401.
- ``/login`` signs a browser in (session cookie: HttpOnly, SameSite=Lax, Secure
  with ``GRIDMAP_SECURE_COOKIES=1``).  The session carries the user's session
  nonce: logout, a token or password reset end every session of that user.
- Failed sign-ins are limited per account and per address (``attempts``): 429
  with ``Retry-After``.  Bad bearer tokens are limited per address the same way
  (counted apart), though only on the failing path: good tokens never wait.
- Every write needs a user with the right role (401 without one, 403 with too
  little), and a write made with the session cookie must carry a CSRF token;
  token-authenticated writes need none (no browser sends them by itself).
- ``GRIDMAP_PUBLIC_READ=0`` closes reading to signed-in users.
"""

from __future__ import annotations

import contextlib
import math
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from geodata.errors import Forbidden, NotFound, ServiceUnavailable, TooManyRequests, Unauthorized
from geodata.i18n import says

from .attempts import Attempts
from .errors import error_response, wants_json
from .users import User, UserStore

blueprint = Blueprint("auth", __name__)
csrf = CSRFProtect()

OPEN_WITHOUT_READ_ACCESS = {"auth.login", "auth.logout", "api.healthz", "assets.asset", "static", "pages.favicon"}


class LoginForm(FlaskForm):
    name = StringField(validators=[DataRequired(), Length(max=64)])
    password = PasswordField(validators=[DataRequired(), Length(max=200)])


def users() -> UserStore:
    return current_app.extensions["gridmap_users"]


def attempts() -> Attempts:
    return current_app.extensions["gridmap_attempts"]


def current_user() -> User | None:
    return g.get("user")


def page_for(role: str, doing: str):
    """For a page that needs ``role``: a redirect to sign in for an anonymous browser (None once signed in);
    Forbidden (403) for a user without the role."""
    user = current_user()
    if user is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if not user.can(role):
        raise Forbidden(says("error.page_needs_role", doing=doing, role=role, name=user.name, has=user.role))
    return None


def require(role: str):
    """Route decorator: the request's user must have ``role`` (or a higher one)."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                raise Unauthorized(says("error.sign_in"))
            if not user.can(role):
                raise Forbidden(says("error.needs_role", role=role, name=user.name, has=user.role))
            return view(*args, **kwargs)
        return wrapped
    return decorator


def register(app: Flask) -> None:
    app.extensions["gridmap_users"] = UserStore(app.extensions["gridmap_accounts"])
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked below, only for cookie-signed writes
    app.extensions["gridmap_attempts"] = Attempts(app.extensions["gridmap_accounts"])
    if app.config["TRUSTED_PROXIES"]:  # else every client behind a proxy is one address to the sign-in limit
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=app.config["SECURE_COOKIES"])
    csrf.init_app(app)
    app.register_blueprint(blueprint)

    @app.before_request
    def identify():
        g.user = None
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            user = users().by_token(token.strip()) if scheme.lower() == "bearer" else None
            if user is None:
                with contextlib.suppress(ServiceUnavailable):  # counts unavailable: the answer is a 401 anyway
                    attempts().reserve("token", "", request.remote_addr or "")  # 429 once this address is used up
                raise Unauthorized(says("error.bad_token"))
            g.user, g.by_token = user, True
            return
        name = session.get("user")
        if name:
            g.user = users().by_session(name, session.get("nonce"))
            if g.user is None:
                session.clear()  # signed out elsewhere, reset or removed
        if g.user is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
            csrf.protect()
        if (not app.config["PUBLIC_READ"] and g.user is None and request.method != "OPTIONS"
                and request.endpoint not in OPEN_WITHOUT_READ_ACCESS):  # preflights carry no credentials
            if request.path.startswith("/api") or request.accept_mimetypes.best == "application/json":
                raise Unauthorized(says("error.reading_needs_user"))
            return redirect(url_for("auth.login", next=request.full_path))

    @app.errorhandler(CSRFError)
    def csrf_failed(e: CSRFError):
        return error_response(400, "csrf_failed", says("error.csrf"), [e.description])  # Flask-WTF's reason, in English

    @app.context_processor
    def user_in_templates():
        return {"current_user": current_user()}


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if request.method == "POST":
        status = 400  # an incomplete or forged form (no CSRF token) signs nobody in
        if form.validate():
            name, address = form.name.data, request.remote_addr or ""
            try:
                attempts().reserve("password", name, address)  # before the check: parallel guesses count too
            except TooManyRequests as e:
                if wants_json():
                    raise
                page = render_template("login.html", form=form, limited_minutes=math.ceil(e.retry_after / 60))
                return page, 429, {"Retry-After": str(e.retry_after)}
            user = users().check_password(name, form.password.data)
            if user is not None:
                attempts().clear("password", name, address)
                session.clear()
                session["user"], session["nonce"] = user.name, users().session_nonce(user.name)
                return redirect(_safe_next(request.args.get("next")))
            status = 401
    return render_template("login.html", form=form, failed=status != 200), status


@blueprint.post("/logout")
def logout():
    user = current_user()
    if user is not None and not g.get("by_token"):
        with contextlib.suppress(NotFound):  # removed meanwhile: no session of it is valid anyway
            users().end_sessions(user.name)  # every browser of this user, copied cookies included
    session.clear()
    return redirect(url_for("pages.city"))


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and not urlsplit(target).netloc:
        return target
    return url_for("pages.city")
