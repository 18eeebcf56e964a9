"""How every summary, baseline and check splits its source: cleaned text, its language, and the
sentences that hold at least one word."""

from __future__ import annotations

from services.text.language import detect_language
from services.text.splitting import split_sentences, tokenize_words


def split_source(cleaned: str, language: str = "") -> tuple[str, list[str]]:
    """(language, sentences with at least one word) of ``cleaned`` (see ``clean_text``); the
    language is detected unless given."""
    lang = language or detect_language(cleaned)
    return lang, [s for s in split_sentences(cleaned, lang) if tokenize_words(s)]
