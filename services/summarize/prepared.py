"""Preprocessing for extractive summaries (pure): clean, detect the language, split, tokenize;
and the ``SentenceRanker`` contract every extractive algorithm implements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from services.core.errors import (
    EmptyInput,
)
from services.text.lexicon import normalize_terms
from services.text.sentences import split_source
from services.text.splitting import clean_text, tokenize_words


@dataclass(frozen=True)
class PreparedText:
    """A text split and tokenized for extractive ranking."""

    language: str
    sentences: list[str]
    words: list[list[str]]
    chars: int

    def terms(self) -> list[list[str]]:
        """Normalized terms per sentence (lowercased, stop words removed, stemmed)."""
        return [normalize_terms(words, self.language) for words in self.words]


def prepare_text(text: str, language: str = "") -> PreparedText:
    """Clean, detect the language (unless given), split into sentences and words."""
    cleaned = clean_text(text)
    if not any(ch.isalnum() for ch in cleaned):
        raise EmptyInput("no text")
    lang, sentences = split_source(cleaned, language)
    return PreparedText(
        language=lang,
        sentences=sentences,
        words=[tokenize_words(s) for s in sentences],
        chars=len(cleaned),
    )


class SentenceRanker(Protocol):
    """An extractive algorithm: picks ``count`` sentence indices of a prepared text."""

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Indices of the chosen sentences, in document order."""
        ...


_TITLE_MAX_CHARS = 120
_TERMINAL = re.compile(r"[.!?…:;]$")


def looks_like_title(sentence: str) -> bool:
    """A short first line with no closing punctuation reads as a headline."""
    return len(sentence) <= _TITLE_MAX_CHARS and not _TERMINAL.search(sentence.strip())
