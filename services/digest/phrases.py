"""Key-phrase candidates of a chat window as people would write them.

Inflections are one phrase: every 1–3-gram is counted under its stemmed form ("tram" and
"trams" are both "tram"), shown in its most common spelling, and counted once per message
that uses any spelling. Words too generic to be a topic are dropped: names of days and months
(Babel's locale data) and everyday words (Zipf frequency ≥ :data:`GENERIC_ZIPF` in
``wordfreq``'s general-language counts: "think", "people", "gente"); other single words are
weighted down the more common they are ("bring" below "tram"). Multi-word phrases are
specific enough as they are.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable

from services.keywords.candidates import run_ngrams
from services.text.lexicon import stemmer

GENERIC_ZIPF = 5.5
"""Single words at least this common in general text (Zipf scale) are never key phrases."""
_SPECIFIC_ZIPF = 3.5
_ZIPF_RANGE = GENERIC_ZIPF - _SPECIFIC_ZIPF


@functools.lru_cache(maxsize=16)
def calendar_words(language: str) -> frozenset[str]:
    """Lower-case day and month names (wide and abbreviated) in ``language``."""
    from babel import Locale, UnknownLocaleError
    from babel.dates import get_day_names, get_month_names

    try:
        Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        language = "en"
    names: set[str] = set()
    for width in ("wide", "abbreviated"):
        for getter in (get_day_names, get_month_names):
            names.update(
                str(n).lower().rstrip(".") for n in getter(width, locale=language).values()
            )
    return frozenset(names)


@functools.lru_cache(maxsize=50_000)
def _zipf(word: str, language: str) -> float:
    from wordfreq import zipf_frequency

    try:
        # The "small" list (words above ~1 per million) is all a generic-word test needs, in
        # a tenth of the memory of the "best" one (7 MB instead of 70).
        return float(zipf_frequency(word, language, wordlist="small"))
    except LookupError:  # a language wordfreq does not know
        return 0.0


def specificity(phrase: str, language: str) -> float:
    """1 for multi-word phrases and rare words, down to 0 for everyday words."""
    if " " in phrase:
        return 1.0
    if phrase in calendar_words(language):
        return 0.0
    zipf = _zipf(phrase, language)
    return min(1.0, max(0.0, (GENERIC_ZIPF - zipf) / _ZIPF_RANGE))


class MergedPhrases:
    """Phrase counts of a window with inflections merged.

    Attributes:
        counts: display form → messages that used any spelling of it.
        stems: display form → its stems.
    """

    def __init__(self, texts: Iterable[str], stop_words: frozenset[str], language: str) -> None:
        stem = stemmer(language)
        messages: Counter[str] = Counter()
        spellings: dict[str, Counter[str]] = {}
        for text in texts:
            keys: set[str] = set()
            for gram in run_ngrams(text, stop_words):
                key = " ".join(stem(word) for word in gram.split())
                keys.add(key)
                spellings.setdefault(key, Counter())[gram] += 1
            messages.update(keys)
        self.counts: dict[str, int] = {}
        self.stems: dict[str, frozenset[str]] = {}
        self._key: dict[str, str] = {}
        for key, count in messages.items():
            # The most used spelling; the shorter one, then the alphabetically first, on ties.
            shown = min(spellings[key].items(), key=lambda item: (-item[1], len(item[0]), item[0]))
            self.counts[shown[0]] = count
            self.stems[shown[0]] = frozenset(key.split())
            self._key[shown[0]] = key

    def key(self, phrase: str) -> str:
        """The stemmed form a display phrase stands for."""
        return self._key[phrase]
