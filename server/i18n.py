"""The reader's language: ``?lang=en`` switches and is remembered in a cookie; Chinese by default."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, current_app, g, request

from geodata.i18n import HTML_LANG, LANGUAGES, language, text

COOKIE = "gridmap_lang"


def current_language() -> str:
    return g.get("lang") or language(request.args.get("lang") or request.cookies.get(COOKIE))


def switch_url(lang: str) -> str:
    """The current page in another language."""
    args = request.args.to_dict(flat=True)
    args["lang"] = lang
    return request.path + "?" + urlencode(args)


def register(app: Flask) -> None:
    @app.before_request
    def choose_language():
        g.lang = language(request.args.get("lang") or request.cookies.get(COOKIE))

    @app.after_request
    def remember_language(response):
        asked = request.args.get("lang")
        if asked and language(asked) == asked.split("-")[0].lower():
            response.set_cookie(COOKIE, language(asked), max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                                secure=current_app.config["SECURE_COOKIES"])
        return response

    @app.context_processor
    def translations():
        lang = current_language()
        other = next(code for code in LANGUAGES if code != lang)
        return {"t": lambda key: text(key, lang), "lang": lang, "html_lang": HTML_LANG[lang],
                "switch_language_url": switch_url(other)}
