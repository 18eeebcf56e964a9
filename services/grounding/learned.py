"""A learned consistency head: does a written summary say something its source does not?

The alignment rules (:mod:`services.grounding.align`) catch a name or a number the source
lacks. They miss the edits that change meaning with ordinary words: an added "not", "only" or
"precisely", "quarter" for "year", "increase" for "decrease". This module describes each written
sentence by what it shares with the whole source and with its best-aligned source sentences:
new content words, numbers, names, word pairs and triples; negations added or dropped;
quantifier, comparison and contrast words the source does not use there. It sums and takes
the maximum over the summary's sentences, and scores the result with a logistic regression
whose weights are bounded in sign (the same recipe as the learned summarizer: fixed
features, a small trained head kept as JSON). The head is trained on a factual-consistency
benchmark's development part and measured by domain-held-out cross-validation
(``condensa eval grounding --cross-validate``).

The head judges a summary as a whole. Scored one sentence at a time it was far worse (the
summary's totals carry much of the signal). So when it doubts a summary that no rule flagged,
the sentence whose removal lowers its doubt most is the one marked.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.grounding.align import known_words, lexical_alignment, novel_details
from services.text.lexicon import normalize_terms
from services.text.splitting import tokenize_words

logger = logging.getLogger(__name__)

HEAD_PATH = Path(__file__).with_name("heads") / "consistency-en.json"
FORMAT = 1

NEGATIONS = frozenset(
    [
        "not",
        "no",
        "never",
        "without",
        "lack",
        "lacks",
        "lacking",
        "none",
        "nor",
        "neither",
        "cannot",
        "nothing",
        "nobody",
        "fail",
        "failed",
        "fails",
        "unable",
        "absence",
    ]
)
"""Words that turn a statement around (English; the head is trained on English)."""
SHIFTERS = frozenset(
    [
        "only",
        "all",
        "every",
        "each",
        "always",
        "never",
        "precisely",
        "exactly",
        "solely",
        "entirely",
        "completely",
        "fully",
        "just",
        "merely",
        "limited",
        "unique",
        "first",
        "last",
        "most",
        "least",
        "more",
        "less",
        "fewer",
        "higher",
        "lower",
        "increase",
        "increased",
        "decrease",
        "decreased",
        "rise",
        "fall",
        "fell",
        "rose",
        "grew",
        "declined",
        "up",
        "down",
        "but",
        "however",
        "although",
        "despite",
        "though",
        "while",
        "instead",
        "rather",
        "both",
        "neither",
        "either",
        "any",
        "some",
        "many",
        "few",
        "several",
        "significant",
        "significantly",
        "slightly",
        "major",
        "minor",
        "new",
        "old",
        "before",
        "after",
        "earlier",
        "later",
        "above",
        "below",
        "over",
        "under",
        "doubled",
        "twice",
        "half",
        "approximately",
        "roughly",
        "about",
        "around",
        "nearly",
        "almost",
        "exceeded",
        "beat",
        "missed",
        "record",
        "positive",
        "negative",
        "strong",
        "weak",
        "better",
        "worse",
        "best",
        "worst",
        "large",
        "small",
        "largest",
        "smallest",
    ]
)
"""Quantifier, degree, direction, time and contrast words: an edit that adds one where the
source has none changes the claim without a new name or number."""

SENTENCE_FEATURES = (
    "new_terms",
    "new_term_share",
    "new_details_numbers",
    "numbers_not_in_source",
    "new_details_names",
    "new_bigram_share",
    "new_trigram_share",
    "new_bigrams",
    "best_alignment",
    "negations_added",
    "negations_dropped",
    "negations_not_aligned",
    "shifters_not_in_source",
    "shifters_not_aligned",
    "words_not_in_source",
    "words",
    "terms_not_in_top3",
    "numbers_not_aligned",
    "word_share_not_aligned",
    "second_alignment",
)
"""What each written sentence is described by, in column order."""
FEATURES = (
    *(f"max_{name}" for name in SENTENCE_FEATURES),
    *(f"sum_{name}" for name in SENTENCE_FEATURES),
    "sentences",
    "min_best_alignment",
)
"""The summary's columns: the maximum and the sum over its sentences, their count and the
weakest alignment."""
SUPPORT_FEATURES = frozenset(name for name in FEATURES if name.endswith("alignment"))
"""Columns that speak for the summary (a higher value can only lower the doubt); every other
column can only raise it."""
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_BEST = SENTENCE_FEATURES.index("best_alignment")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}


def _negations(words: Sequence[str]) -> int:
    return sum(w in NEGATIONS or w.endswith("n't") for w in words)


@dataclass(frozen=True)
class SourceIndex:
    """What the features compare a written sentence with, computed once per source."""

    sentences: Sequence[str]
    language: str
    terms: list[set[str]]
    all_terms: set[str]
    known: set[str]
    words: set[str]
    bigrams: set[tuple[str, ...]]
    trigrams: set[tuple[str, ...]]
    numbers: set[str]

    @classmethod
    def build(cls, sentences: Sequence[str], language: str) -> SourceIndex:
        """Index ``sentences`` (the source, split as the summary service splits it)."""
        terms = [set(normalize_terms(tokenize_words(s), language)) for s in sentences]
        text = " ".join(sentences)
        words = _words(text)
        return cls(
            sentences,
            language,
            terms,
            set().union(*terms) if terms else set(),
            known_words(text),
            set(words),
            set(zip(words, words[1:], strict=False)),
            set(zip(words, words[1:], words[2:], strict=False)),
            _numbers(text),
        )


def sentence_features(index: SourceIndex, sentence: str) -> list[float]:
    """The :data:`SENTENCE_FEATURES` of one written sentence against the source."""
    terms = set(normalize_terms(tokenize_words(sentence), index.language))
    lexical = lexical_alignment(terms, index.terms)
    order = np.argsort(-lexical, kind="stable") if len(lexical) else np.array([], dtype=int)
    aligned = " ".join(index.sentences[i] for i in order[:2])
    aligned_words = set(_words(aligned))
    top3 = set().union(*(index.terms[i] for i in order[:3])) if len(order) else set()
    words = _words(sentence)
    bigrams = list(zip(words, words[1:], strict=False))
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    details = novel_details(sentence, index.known)
    numbers = _numbers(sentence)
    new_terms = terms - index.all_terms
    said, source_said = _negations(words), _negations(_words(aligned))
    ranked = np.sort(lexical)[::-1] if len(lexical) else np.zeros(1)
    return [
        len(new_terms),
        len(new_terms) / max(1, len(terms)),
        sum(d[0].isdigit() for d in details),
        len(numbers - index.numbers),
        sum(not d[0].isdigit() for d in details),
        sum(b not in index.bigrams for b in bigrams) / max(1, len(bigrams)),
        sum(t not in index.trigrams for t in trigrams) / max(1, len(trigrams)),
        sum(b not in index.bigrams for b in bigrams),
        float(ranked[0]),
        max(0, said - source_said),
        max(0, source_said - said),
        sum(w in NEGATIONS and w not in aligned_words for w in words),
        sum(w in SHIFTERS and w not in index.words for w in words),
        sum(w in SHIFTERS and w not in aligned_words for w in words),
        sum(w not in index.words for w in words),
        len(words),
        len(terms - top3),
        len(numbers - _numbers(aligned)),
        sum(w not in aligned_words for w in words) / max(1, len(words)),
        float(ranked[1]) if len(ranked) > 1 else 0.0,
    ]


def summary_vector(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """The :data:`FEATURES` of a summary from its sentences' features."""
    matrix = np.asarray(rows, dtype=np.float64).reshape(-1, len(SENTENCE_FEATURES))
    if not len(matrix):
        matrix = np.zeros((1, len(SENTENCE_FEATURES)))
    return np.concatenate([matrix.max(0), matrix.sum(0), [len(rows), matrix[:, _BEST].min()]])


class HeadUnusable(Exception):
    """A saved consistency head is missing, damaged or made for other features."""


@dataclass(frozen=True)
class ConsistencyHead:
    """Scores a summary's :data:`FEATURES`; above ``threshold`` means "the source may not
    support it".

    Attributes:
        languages: the languages it was trained on (the only ones it is applied to).
        mean / scale: the standardization fitted on the training rows.
        weights / bias: the logistic regression over standardized features.
        threshold: the doubt above which a summary is flagged (chosen on the training rows).
        features: the feature names, in column order (must equal :data:`FEATURES`).
        about: provenance (data, rows, regularization, cross-validated scores).
    """

    languages: list[str]
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    threshold: float = 0.0
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    about: dict[str, Any] = field(default_factory=dict)

    def doubts(self, rows: Sequence[Sequence[float]]) -> bool:
        """Whether a summary with these sentence features is flagged."""
        return bool(rows) and self.doubt(rows) > self.threshold

    def doubt(self, rows: Sequence[Sequence[float]]) -> float:
        """The logit that a summary with these sentence features is inconsistent."""
        standardized = (summary_vector(rows) - np.asarray(self.mean)) / np.asarray(self.scale)
        return float(standardized @ np.asarray(self.weights) + self.bias)

    def culprit(self, rows: Sequence[Sequence[float]]) -> int:
        """The sentence whose removal lowers the doubt most (0 for one sentence)."""
        if len(rows) < 2:
            return 0
        drops = [self.doubt([r for j, r in enumerate(rows) if j != i]) for i in range(len(rows))]
        return int(np.argmin(drops))

    def doubted_sentence(
        self, written: Sequence[str], source: Sequence[str], language: str
    ) -> int | None:
        """The sentence to mark when the head doubts ``written`` against ``source``; None when
        it does not, or when ``language`` is not one it was trained on."""
        if language not in self.languages or not written or not source:
            return None
        index = SourceIndex.build(source, language)
        rows = [sentence_features(index, sentence) for sentence in written]
        return self.culprit(rows) if self.doubts(rows) else None

    def save(self, path: Path) -> None:
        """Write the head as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, **asdict(self)}
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", "utf-8")

    @classmethod
    def load(cls, path: Path) -> ConsistencyHead:
        """Read a head; :class:`HeadUnusable` with the reason when it cannot be used."""
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise HeadUnusable(f"no consistency head at {path}") from exc
        except (OSError, ValueError) as exc:
            raise HeadUnusable(f"the consistency head at {path} is damaged") from exc
        try:
            head = cls(
                languages=[str(v) for v in payload["languages"]],
                mean=[float(v) for v in payload["mean"]],
                scale=[float(v) for v in payload["scale"]],
                weights=[float(v) for v in payload["weights"]],
                bias=float(payload["bias"]),
                threshold=float(payload["threshold"]),
                features=[str(v) for v in payload["features"]],
                about=dict(payload.get("about", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise HeadUnusable(f"the consistency head at {path} is damaged") from exc
        widths = {len(head.mean), len(head.scale), len(head.weights)}
        if (
            payload.get("format") != FORMAT
            or head.features != list(FEATURES)
            or widths != {len(FEATURES)}
        ):
            raise HeadUnusable(f"the consistency head at {path} was made for other features")
        return head


@functools.cache
def shipped_head() -> ConsistencyHead | None:
    """The head that ships with the bot, or None (logged once) when it cannot be used."""
    try:
        return ConsistencyHead.load(HEAD_PATH)
    except HeadUnusable as error:
        logger.warning("grounding without the learned check: %s", error)
        return None
