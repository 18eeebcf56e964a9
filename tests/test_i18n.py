"""The message catalogs: complete in both languages, real plural forms, every key used exists."""

from __future__ import annotations

import re
import string
from pathlib import Path

from handlers.i18n import UI_LANGUAGES, catalog, message_ids, t, tn

REPO = Path(__file__).resolve().parents[1]


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_message_exists_in_both_languages() -> None:
    english, spanish = message_ids("en"), message_ids("es")
    assert len(english) > 50
    assert english == spanish, f"only in one: {sorted(english ^ spanish)}"


def test_translations_take_the_same_placeholders() -> None:
    for key in message_ids("en"):
        for number in (1, 2):
            forms = {lang: catalog(lang).ngettext(key, key, number) for lang in UI_LANGUAGES}
            assert placeholders(forms["en"]) == placeholders(forms["es"]), key


def test_every_key_the_code_uses_is_in_the_catalogs() -> None:
    used: set[str] = set()
    for path in [*(REPO / "handlers").rglob("*.py"), *(REPO / "bot").rglob("*.py")]:
        source = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bt\(\s*\"([a-z_]+)\"", source))
        used |= set(re.findall(r"\btn\(\s*\"([a-z_]+)\"", source))
    assert used, "the scan found no message keys"
    missing = used - message_ids("en")
    assert not missing, sorted(missing)


def test_plural_forms_follow_the_number() -> None:
    assert tn("count_people", 1, "en") == "1 person"
    assert tn("count_people", 3, "en") == "3 people"
    assert tn("count_messages", 1, "es") == "1 mensaje"
    assert tn("count_messages", 1200, "es") == "1,200 mensajes"
    assert "1 sentence," in tn("err_too_short", 1, "en", sentences=1, minimum=3)
    assert "2 frases" in tn("err_too_short", 2, "es", sentences=2, minimum=3)


def test_unknown_languages_get_english() -> None:
    assert t("err_busy", "fr") == t("err_busy", "en")
    assert t("err_busy", "es") != t("err_busy", "en")
