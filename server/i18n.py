"""The reader's language: ``?lang=``, then the cookie it leaves, then the browser's ``Accept-Language``
(``zh-TW`` is Chinese, ``en-US`` English, q-values weigh); Chinese by default.  Pages, maps and API
answers (error messages, upload reports) all follow it."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, current_app, g, request
from werkzeug.datastructures import LanguageAccept

from geodata.i18n import DEFAULT_LANGUAGE, HTML_LANG, LANGUAGES, language, text

COOKIE = "gridmap_lang"


def chosen_language() -> str:
    """What this request asks for: ``?lang=``, the cookie, ``Accept-Language``, else Chinese."""
    return language_of(request.args.get("lang"), request.cookies.get(COOKIE), request.accept_languages)


def language_of(lang: str | None, cookie: str | None, accept: LanguageAccept) -> str:
    """``chosen_language`` from the parts of a request (server.front answers before Flask sees one)."""
    asked = lang or cookie
    if asked:
        return language(asked)
    return accept.best_match(LANGUAGES) or DEFAULT_LANGUAGE  # werkzeug: zh-CN → zh


def current_language() -> str:
    return g.get("lang") or chosen_language()


def switch_url(lang: str) -> str:
    """The current page in another language."""
    args = request.args.to_dict(flat=True)
    args["lang"] = lang
    return request.path + "?" + urlencode(args)


def register(app: Flask) -> None:
    @app.before_request
    def choose_language():
        g.lang = chosen_language()

    @app.after_request
    def remember_language(response):
        asked = request.args.get("lang")
        if asked and language(asked) == asked.split("-")[0].lower():
            response.set_cookie(COOKIE, language(asked), max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                                secure=current_app.config["SECURE_COOKIES"])
        if response.mimetype == "text/html" or response.status_code >= 400:  # the texts follow the browser's
            response.vary.add("Accept-Language")
        return response

    @app.context_processor
    def translations():
        lang = current_language()
        other = next(code for code in LANGUAGES if code != lang)
        return {"t": lambda key: text(key, lang), "lang": lang, "html_lang": HTML_LANG[lang],
                "switch_language_url": switch_url(other)}
