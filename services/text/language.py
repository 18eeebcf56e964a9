"""Language detection restricted to the languages Condensa can summarize.

py3langid ships its model inside the wheel (no download). Short or ambiguous text falls back to
a default instead of guessing wildly.
"""

from __future__ import annotations

import functools

from services.text.splitting import PUNKT_LANGUAGES

SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(PUNKT_LANGUAGES)
"""ISO 639-1 codes with a sentence splitter, stemmer and stop-word list."""


LANGUAGE_NAMES = dict(PUNKT_LANGUAGES)
_MIN_CHARS = 20


@functools.cache
def _identifier() -> object:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED_LANGUAGES))
    return identifier


def detect_language(text: str, default: str = "en", min_confidence: float = 0.6) -> str:
    """Return the ISO 639-1 code of ``text`` among the supported languages.

    Args:
        text: the text to classify; only its first 5,000 characters are read.
        default: returned for text that is too short or too ambiguous.
        min_confidence: normalized probability below which ``default`` is returned.
    """
    sample = text[:5000]
    if sum(ch.isalpha() for ch in sample) < _MIN_CHARS:
        return default
    code, confidence = _identifier().classify(sample)  # type: ignore[attr-defined]
    return str(code) if confidence >= min_confidence else default


def language_name(code: str) -> str:
    """The lowercase English name sumy and NLTK use for a language code ("es" → "spanish")."""
    return LANGUAGE_NAMES.get(code, "english")
