"""Evaluation data: JSONL reference sets of summaries and keyphrases, with line-numbered errors."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.core.errors import CondensaError


class BadDataFile(CondensaError):
    """An evaluation or training file that cannot be used, with the line at fault."""

    code = "bad_data"


@dataclass(frozen=True)
class SummaryExample:
    """One document with its reference summary (and any extra references)."""

    id: str
    text: str
    summary: str
    language: str = ""
    extra_refs: list[str] = field(default_factory=list)


def jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file.

    Raises:
        BadDataFile: an unreadable file, or a line that is not a JSON object (with its number).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadDataFile(f"{path}: cannot read: {exc}") from exc
    return jsonl_lines(lines, str(path))


def jsonl_lines(lines: Iterable[str], source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; errors name ``source`` and the line.

    Raises:
        BadDataFile: a line that is not a JSON object.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadDataFile(f"{source}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise BadDataFile(f"{source}:{number}: expected a JSON object")
        yield number, record


def load_summary_examples(path: Path, limit: int | None = None) -> list[SummaryExample]:
    """Read ``{"text", "summary"}`` JSONL; every problem names its line.

    Raises:
        BadDataFile: unreadable file, a line that is not a JSON object, a missing or empty field,
            or no example at all.
    """
    examples: list[SummaryExample] = []
    for number, record in jsonl_records(path):
        for key in ("text", "summary"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise BadDataFile(f"{path}:{number}: missing or empty field {key!r}")
        extra = record.get("extra_refs") or []
        examples.append(
            SummaryExample(
                id=str(record.get("id", number)),
                text=record["text"],
                summary=record["summary"],
                language=str(record.get("lang") or ""),
                extra_refs=[r for r in extra if isinstance(r, str)],
            )
        )
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        raise BadDataFile(f"{path}: no examples")
    return examples


@dataclass(frozen=True)
class KeyphraseExample:
    """A document with its gold keyphrases."""

    id: str
    text: str
    keyphrases: list[str]
    language: str = "en"


def load_keyphrase_examples(path: Path, limit: int | None = None) -> list[KeyphraseExample]:
    """Read ``{"text", "keyphrases"}`` JSONL; every problem names its line."""
    examples: list[KeyphraseExample] = []
    for number, record in jsonl_records(path):
        text, gold = record.get("text"), record.get("keyphrases")
        if not isinstance(text, str) or not text.strip():
            raise BadDataFile(f"{path}:{number}: missing or empty field 'text'")
        if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold) or not gold:
            raise BadDataFile(f"{path}:{number}: 'keyphrases' must be a non-empty list of strings")
        examples.append(
            KeyphraseExample(
                str(record.get("id", number)), text, gold, str(record.get("lang") or "en")
            )
        )
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        raise BadDataFile(f"{path}: no examples")
    return examples


@dataclass(frozen=True)
class ConversationExample:
    """A conversation (``(author, text)`` messages, oldest first) with its reference summary."""

    id: str
    messages: list[tuple[str, str]]
    summary: str
    language: str = ""


def load_conversation_examples(path: Path, limit: int | None = None) -> list[ConversationExample]:
    """Read ``{"messages": [{"author", "text"}], "summary"}`` JSONL; problems name their line."""
    examples: list[ConversationExample] = []
    for number, record in jsonl_records(path):
        summary, messages = record.get("summary"), record.get("messages")
        if not isinstance(summary, str) or not summary.strip():
            raise BadDataFile(f"{path}:{number}: missing or empty field 'summary'")
        if not isinstance(messages, list) or not messages:
            raise BadDataFile(f"{path}:{number}: 'messages' must be a non-empty list")
        turns: list[tuple[str, str]] = []
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("text"), str):
                raise BadDataFile(f"{path}:{number}: each message needs a 'text' string")
            turns.append((str(message.get("author") or ""), message["text"]))
        examples.append(
            ConversationExample(
                str(record.get("id", number)), turns, summary, str(record.get("lang") or "")
            )
        )
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        raise BadDataFile(f"{path}: no examples")
    return examples
