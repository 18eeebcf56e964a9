"""Settings, logging redaction, storage and documents."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.logging_setup import RedactingFormatter
from bot.settings import Settings
from services.core.errors import UnsupportedFormat
from services.core.types import ChatPreferences, Length
from services.ingest.documents import decode_text, read_text_document
from services.storage.sqlite import MIGRATIONS, SQLiteStore


def test_settings_defaults_and_derived_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_API_URL", "http://localhost:8081/")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.bot_api_base_url == "http://localhost:8081/bot"
    assert settings.bot_api_file_url == "http://localhost:8081/file/bot"
    assert settings.auto_summary_min_chars == 600 and settings.forward_batch_seconds == 2.0
    assert settings.telegram_bot_token is None


def test_settings_fail_fast_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_URL", "https://example.org/hook")
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET is required"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_settings_read_the_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("TELEGRAM_BOT_TOKEN=42:abc\nAUTO_SUMMARY_MIN_CHARS=900\n")
    settings = Settings(_env_file=env)  # type: ignore[call-arg]
    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value() == "42:abc"
    assert "42:abc" not in repr(settings)
    assert settings.auto_summary_min_chars == 900


def test_token_is_redacted_from_messages_and_tracebacks() -> None:
    token = "123456:SECRET-token"
    formatter = RedactingFormatter("%(message)s", [token])
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{token}/getMe failed")
    except RuntimeError:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "calling %s",
            (token,),
            exc_info=__import__("sys").exc_info(),
        )
    output = formatter.format(record)
    assert token not in output and output.count("[REDACTED]") == 2


async def test_store_creates_the_file_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "condensa.sqlite3"
    store = await SQLiteStore.open(path)
    assert await store.get_preferences(1) == ChatPreferences()
    await store.set_preferences(1, ChatPreferences("lexrank", Length.LONG, "es"))
    await store.set_preferences(1, ChatPreferences("lexrank", Length.SHORT, "es"))
    await store.close()
    reopened = await SQLiteStore.open(path)
    assert await reopened.get_preferences(1) == ChatPreferences("lexrank", Length.SHORT, "es")
    await reopened.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("año señal".encode(), "año señal"),
        ("año señal".encode("cp1252"), "año señal"),
        ("“quoted” €".encode("cp1252"), "“quoted” €"),
        ("\ufeffaño".encode(), "año"),
        ("año".encode("utf-16"), "año"),
    ],
)
def test_text_files_decode_in_common_encodings(data: bytes, expected: str) -> None:
    assert decode_text(data) == expected


def test_binary_or_foreign_files_are_refused() -> None:
    with pytest.raises(UnsupportedFormat):
        read_text_document(b"\x00\x01\x02binary", "notes.txt")
    with pytest.raises(UnsupportedFormat):
        read_text_document(b"a,b\n1,2", "table.csv")


def test_env_example_lists_every_setting() -> None:
    example = Path(__file__).resolve().parents[1] / ".env.example"
    keys = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert keys == {name.upper() for name in Settings.model_fields}
    Settings(_env_file=example)  # type: ignore[call-arg]  # and its defaults are valid


def test_the_settings_page_is_generated_from_the_code_and_names_every_setting() -> None:
    from bot.settings import Settings
    from bot.settings_doc import PAGE, settings_reference

    fresh = settings_reference()
    assert PAGE.read_text(encoding="utf-8") == fresh, (
        "docs/configuration/settings.md is stale: run python -m bot.settings_doc --write"
    )
    rows = {
        line.split("|")[1].strip(" `") for line in fresh.splitlines() if line.startswith("| `")
    }
    assert rows == {name.upper() for name in Settings.model_fields}
    for line in fresh.splitlines():
        if line.startswith("| `"):
            assert line.rstrip(" |").split("|")[-1].strip(), f"no meaning for {line[:40]}"
