"""Per-language stemmers and stop-word lists (sumy's Snowball stemmers and bundled lists)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from services.text.language import language_name


@functools.cache
def stop_words(language: str) -> frozenset[str]:
    """Lowercased stop words for an ISO 639-1 code, from the lists sumy ships."""
    from sumy.utils import get_stop_words

    try:
        return frozenset(w.lower() for w in get_stop_words(language_name(language)))
    except LookupError:
        return frozenset()


NOT_STOP_WORDS = frozenset(
    {
        "novel",
        "computer",
        "homepage",
        "information",
        "invention",
        "microsoft",
        "netscape",
        "research",
        "system",
        "website",
        "webpage",
    }
)
"""Things people talk about that the bundled English lists call stop words: a book club's
digest must be able to say "novel"."""


@functools.cache
def keyword_stop_words(language: str) -> frozenset[str]:
    """A fuller stop-word list for keyphrase candidates: sumy's list plus ``stop-words``'.

    sumy's Spanish list lacks "y" and "de", which would leave phrases like "gobierno de".
    """
    try:
        from stop_words import StopWordError
        from stop_words import get_stop_words as more_stop_words
    except ImportError:  # pragma: no cover - depends on the install
        return stop_words(language)
    try:
        extra = {w.lower() for w in more_stop_words(language)}
    except StopWordError:
        extra = set()
    return (stop_words(language) | extra) - NOT_STOP_WORDS


@functools.cache
def stemmer(language: str) -> Callable[[str], str]:
    """A memoized Snowball stemmer for an ISO 639-1 code (the one sumy uses)."""
    from sumy.nlp.stemmers import Stemmer

    stem = Stemmer(language_name(language))
    return functools.lru_cache(maxsize=200_000)(stem)


def normalize_terms(words: Sequence[str], language: str) -> list[str]:
    """Lowercase, drop stop words, stem: the terms sumy's summarizers compare."""
    stops = stop_words(language)
    stem = stemmer(language)
    return [stem(w) for w in (word.lower() for word in words) if w not in stops]
