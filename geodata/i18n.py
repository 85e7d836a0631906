"""Every label, legend entry and message a person reads, in one language at a time: Chinese (default) or English.

The texts live in gettext catalogues, ``geodata/locale/<locale>/LC_MESSAGES/messages.po`` (``zh_CN`` and
``en``), whose msgids are dotted keys (``nav.map``, ``check.empty``).  They are compiled in memory when this
module is imported (Babel's ``pofile`` then ``mofile``: no ``.mo`` file is kept in the repository) and read
with ``text(key, lang)``, ``ntext(key, n, lang)`` (plural forms) and ``says(key, ...)`` (a message whose
language is chosen later, where the reader is known: the domain errors).  A missing translation falls back
to Chinese, then to the key, so a gap shows up on the page instead of breaking it (tests/geodata/test_i18n.py
lists gaps).

Adding texts (both catalogues at once)::

    python -m geodata.i18n add KEY "中文" "English"
    python -m geodata.i18n add KEY "{n} 个错误" "{n} error" --plural "{n} errors"
    python -m geodata.i18n absorb OLD_I18N.py   # every (zh, en) pair of an old CATALOGUE dict not yet here
    python -m geodata.i18n check                # keys missing from or untranslated in a catalogue
"""

from __future__ import annotations

import argparse
import ast
import gettext
import io
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
HTML_LANG = {"zh": "zh-CN", "en": "en"}
LOCALES = {"zh": "zh_CN", "en": "en"}  # the catalogues' locale names
LOCALE_DIR = Path(__file__).parent / "locale"


def po_path(lang: str) -> Path:
    return LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / "messages.po"


def read_catalogue(lang: str) -> Catalog:
    with po_path(lang).open("rb") as f:
        return read_po(f, locale=LOCALES[lang])


def _compile(lang: str) -> gettext.GNUTranslations:
    """The catalogue as the standard library's translations (plural forms included), compiled in memory."""
    if not po_path(lang).exists():  # only while the catalogues are first made
        return gettext.NullTranslations()
    mo = io.BytesIO()
    write_mo(mo, read_catalogue(lang))
    mo.seek(0)
    return gettext.GNUTranslations(mo)


_TRANSLATIONS = {lang: _compile(lang) for lang in LANGUAGES}


def text(key: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The text for ``key`` in ``lang``; Chinese if that is missing; the key if both are."""
    found = _TRANSLATIONS.get(lang, _TRANSLATIONS[DEFAULT_LANGUAGE]).gettext(key)
    if found == key and lang != DEFAULT_LANGUAGE:
        found = _TRANSLATIONS[DEFAULT_LANGUAGE].gettext(key)
    return found


def ntext(key: str, n: int, lang: str = DEFAULT_LANGUAGE) -> str:
    """The plural form of ``key`` for ``n`` in ``lang`` ("1 error", "3 errors"); ``{n}`` is filled in."""
    found = _TRANSLATIONS.get(lang, _TRANSLATIONS[DEFAULT_LANGUAGE]).ngettext(key, key, n)
    if found == key and lang != DEFAULT_LANGUAGE:
        found = _TRANSLATIONS[DEFAULT_LANGUAGE].ngettext(key, key, n)
    return found.replace("{n}", f"{n:,}")


def known(key: str) -> bool:
    """Whether ``key`` is in the Chinese catalogue (the one every key must be in)."""
    return _TRANSLATIONS[DEFAULT_LANGUAGE].gettext(key) != key


class Says(str):
    """A message whose language is chosen where the reader is known: ``says("error.no_such_unit", unit=…)``.

    Domain code (which knows no reader) raises its errors with one; ``server/errors.py`` answers in the
    request's language (``in_language``).  As a plain string it is the English text, for logs and scripts.
    ``count`` picks a plural form and fills ``{n}``.
    """

    def __new__(cls, msgid: str, /, count: int | None = None, **params):
        self = super().__new__(cls, _render(msgid, count, params, "en"))
        self.key, self.count, self.params = msgid, count, params
        return self

    def in_language(self, lang: str) -> str:
        return _render(self.key, self.count, self.params, lang)

    def __reduce__(self):  # a job process's error comes back whole
        return _says, (self.key, self.count, self.params)


def _says(key, count, params):
    return Says(key, count, **params)


says = Says


def _render(key: str, count: int | None, params: dict, lang: str) -> str:
    params = {name: value.in_language(lang) if isinstance(value, Says) else value for name, value in params.items()}
    template = text(key, lang) if count is None else ntext(key, count, lang)
    return template.format(**params) if params else template


def in_language(message, lang: str) -> str:
    """``message`` in ``lang`` when it is a ``Says``; as it is otherwise."""
    return message.in_language(lang) if isinstance(message, Says) else message


def language(requested: str | None) -> str:
    """A supported language code from what a request asked for (``zh``, ``zh-CN``, ``en-GB``...)."""
    if requested:
        code = requested.split("-")[0].split("_")[0].split(".")[0].lower()
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def cli_language(environ=None) -> str:
    """The command line's language: ``GRIDMAP_LANG``, else the POSIX locale variables (``LC_ALL``,
    ``LC_MESSAGES``, ``LANG``: ``en_US.UTF-8`` means English), else Chinese.  ``C``/``POSIX`` name no language."""
    environ = os.environ if environ is None else environ
    for name in ("GRIDMAP_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = (environ.get(name) or "").strip()
        if value and value not in ("C", "POSIX") and not value.startswith("C."):
            return language(value)
    return DEFAULT_LANGUAGE


# --- keeping the catalogues --------------------------------------------------------------------


def _empty_catalogue(lang: str) -> Catalog:
    fixed = datetime(2026, 12, 2, tzinfo=timezone.utc)  # a stable header: no noise in diffs
    return Catalog(locale=LOCALES[lang], project="gridmap", creation_date=fixed, revision_date=fixed, fuzzy=False,
                   header_comment="# gridmap's texts. Add with: python -m geodata.i18n add KEY 中文 English")


def _write(lang: str, catalogue: Catalog) -> None:
    path = po_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalogue, width=0, no_location=True, omit_header=False)


def add(entries: list[tuple[str, tuple[str, ...], tuple[str, ...]]], replace: bool = False) -> list[str]:
    """Add ``(key, zh_forms, en_forms)`` to both catalogues (one form: a text; more: plural forms).
    Keys already there are kept unless ``replace``.  Returns the keys added."""
    catalogues = {lang: read_catalogue(lang) if po_path(lang).exists() else _empty_catalogue(lang)
                  for lang in LANGUAGES}
    added = []
    for key, zh, en in entries:
        if key in catalogues["zh"] and not replace:
            continue
        plural = len(zh) > 1 or len(en) > 1
        for lang, forms in (("zh", zh), ("en", en)):
            catalogue = catalogues[lang]
            if key in catalogue:
                del catalogue[key]
            if plural:
                forms = tuple(forms[i] if i < len(forms) else forms[-1] for i in range(catalogue.num_plurals))
                catalogue.add((key, key), forms)
            else:
                catalogue.add(key, forms[0])
        added.append(key)
    for lang, catalogue in catalogues.items():
        _write(lang, catalogue)
    return added


def old_catalogue(path: str) -> dict[str, tuple[str, str]]:
    """The ``CATALOGUE = {key: (zh, en)}`` dict of an old geodata/i18n.py (read, not imported)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and getattr(target, "id", None) == "CATALOGUE":
            return ast.literal_eval(node.value)
    return {}


def problems() -> list[str]:
    """Keys in one catalogue and not the other, or without a text in one."""
    found = []
    catalogues = {lang: read_catalogue(lang) for lang in LANGUAGES}
    keys = {lang: {m.id if isinstance(m.id, str) else m.id[0] for m in c if m.id} for lang, c in catalogues.items()}
    for lang, catalogue in catalogues.items():
        for other in LANGUAGES:
            for key in sorted(keys[other] - keys[lang]):
                found.append(f"{key}: missing from {LOCALES[lang]}")
        for message in catalogue:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.id and not all(strings):
                found.append(f"{message.id if isinstance(message.id, str) else message.id[0]}: "
                             f"untranslated in {LOCALES[lang]}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geodata.i18n", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("add", help="add a text to both catalogues")
    one.add_argument("key")
    one.add_argument("zh")
    one.add_argument("en", help="English (the singular, with --plural)")
    one.add_argument("--plural", help="English plural form; the text then takes a count {n}")
    one.add_argument("--replace", action="store_true", help="replace the key's texts if it is there")
    old = commands.add_parser("absorb", help="add the pairs of an old CATALOGUE dict (a geodata/i18n.py) not here")
    old.add_argument("path")
    commands.add_parser("check", help="list keys missing from or untranslated in a catalogue")
    args = parser.parse_args(argv)
    if args.command == "add":
        en = (args.en, args.plural) if args.plural else (args.en,)
        done = add([(args.key, (args.zh,), en)], replace=args.replace)
        print(f"added {args.key}" if done else f"{args.key} is there already (--replace to change it)")
    elif args.command == "absorb":
        pairs = old_catalogue(args.path)
        done = add([(key, (zh,), (en,)) for key, (zh, en) in pairs.items()])
        print(f"added {len(done)} of {len(pairs)}: {', '.join(done)}" if done else f"all {len(pairs)} are here")
        # keys there already, read as compiled at start (before this run's additions)
        differ = [key for key, pair in pairs.items() if key not in done and (text(key, "zh"), text(key, "en")) != pair]
        if differ:  # the same key with other words there: said, not overwritten (add --replace to take them)
            print("texts that differ from the catalogues' (kept): " + ", ".join(differ))
    else:
        found = problems()
        print("\n".join(found) or "both catalogues are complete")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
