"""User-facing sentences in English and Spanish, from gettext catalogs.

The sources are ``handlers/locale/<language>/LC_MESSAGES/condensa.po`` (edit them with any PO
editor); Babel compiles them in memory when first used, so there is no build step. Message ids
are stable keys ("err_busy"), and the text is each catalog's msgstr, with real plural forms where
a number is shown (:func:`tn`). Values interpolated into HTML strings are escaped by the caller
(see :mod:`handlers.render`).
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

UI_LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"
DOMAIN = "condensa"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@functools.cache
def catalog(language: str) -> Translations:
    """The compiled catalog of ``language`` (English for any other code), loaded once."""
    if language not in UI_LANGUAGES:
        language = DEFAULT_LANGUAGE
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as source:
        messages = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, messages, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def message_ids(language: str) -> set[str]:
    """Every message id the catalog of ``language`` translates (for the completeness test)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as source:
        messages = read_po(source, locale=language, domain=DOMAIN)
    return {
        str(message.id[0] if isinstance(message.id, tuple) else message.id)
        for message in messages
        if message.id and message.string and all(message.string)
    }


def t(key: str, language: str, **values: object) -> str:
    """The message ``key`` in ``language``, formatted with ``values``."""
    template = catalog(language).gettext(key)
    return template.format(**values) if values else template


def tn(key: str, number: int, language: str, **values: object) -> str:
    """The plural message ``key`` in the form ``number`` takes in ``language``, formatted with
    ``values`` (``count`` defaults to ``number`` written with thousands separators)."""
    template = catalog(language).ngettext(key, key, number)
    values.setdefault("count", f"{number:,}")
    return template.format(**values)


def pick_language(preferred: str | None, user_language_code: str | None) -> str:
    """The UI language: the chat's choice, else the user's Telegram language, else English."""
    if preferred in UI_LANGUAGES:
        return preferred
    code = (user_language_code or "").split("-")[0].lower()
    return code if code in UI_LANGUAGES else DEFAULT_LANGUAGE
