"""Grounding what a model wrote in its source: supporting sentences and unsupported details.

Every written sentence is aligned with the source sentences that support it — by shared
content words (stemmed, stop words dropped) and, when an encoder is given, by embedding
similarity — and checked for details the source never mentions: numbers, names (capitalized
words that do not start the sentence) and, when most of its content words are new, the
content itself. The result lets a reply cite numbered sources and mark or drop what the
source does not support. Pure apart from the optional encoder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from services.text.lexicon import normalize_terms
from services.text.splitting import tokenize_words

if TYPE_CHECKING:
    from services.grounding.learned import ConsistencyHead

MAX_SOURCES = 2
"""Supporting source sentences cited per written sentence."""
MIN_ALIGNMENT = 0.25
"""A source sentence below this alignment score is not cited."""
MIN_CONTENT_COVERAGE = 0.5
"""Below this share of content words found in the source, the content itself is unsupported."""
_DETAIL_RE = re.compile(r"\b(?:\d[\d.,:]*\d|\d|[A-ZÁÉÍÓÚÑÜ][\w'’-]+)")
_PRONOUN_I = re.compile(r"I(?:['’]\w+)?")
_POSSESSIVE = re.compile(r"\s*['’]s\b")


class GroundingMode(StrEnum):
    """What to do with a written sentence the source does not support."""

    MARK = "mark"
    DROP = "drop"
    OFF = "off"


@dataclass(frozen=True)
class GroundedSentence:
    """One written sentence and what supports it.

    Attributes:
        text: the sentence.
        sources: indices of the supporting source sentences, best first (may be empty).
        unsupported: numbers, names or (when most content is new) content words absent from
            the source.
        doubted: the learned check doubts the summary, and this sentence most.
    """

    text: str
    sources: list[int] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    doubted: bool = False

    @property
    def supported(self) -> bool:
        """Whether every detail was found in the source and the learned check did not doubt
        it."""
        return not self.unsupported and not self.doubted


def known_words(text: str) -> set[str]:
    """The lower-cased words of ``text``, possessives stripped."""
    # CNN/DM text is re-tokenized ("Burnley 's"): compare words without possessives.
    return set(re.findall(r"\w+", _POSSESSIVE.sub("", text.lower())))


def novel_details(sentence: str, known: set[str]) -> list[str]:
    """Numbers and non-initial capitalized words of ``sentence`` whose words are not in
    ``known`` (the source's lower-cased words)."""
    found = []
    for match in _DETAIL_RE.finditer(sentence):
        if match.start() == 0 and not match.group(0)[0].isdigit():
            continue  # a sentence-initial capital says nothing
        token = _POSSESSIVE.sub("", match.group(0).rstrip(".,:"))
        if _PRONOUN_I.fullmatch(token):
            continue
        words = re.findall(r"\w+", token.lower())
        if words and any(word not in known for word in words):
            found.append(token)
    return found


def lexical_alignment(terms: set[str], source_terms: Sequence[set[str]]) -> np.ndarray:
    """The share of ``terms`` each source sentence's terms hold."""
    return np.array([len(terms & st) / len(terms) if terms else 0.0 for st in source_terms])


def ground(
    written: Sequence[str],
    source: Sequence[str],
    language: str,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    max_sources: int = MAX_SOURCES,
    min_alignment: float = MIN_ALIGNMENT,
    head: ConsistencyHead | None = None,
) -> list[GroundedSentence]:
    """Align each written sentence with ``source`` sentences and list what is unsupported.

    With a learned ``head`` (for its languages), a summary the head doubts and no rule flagged
    gets its most doubtful sentence marked as well.

    Args:
        written: the model's sentences.
        source: the source's sentences.
        language: ISO 639-1 code (stemmer and stop words).
        embed: unit-length sentence embeddings, when an encoder is at hand.
        max_sources: supporting sentences cited per written sentence, at most.
        min_alignment: a source sentence aligned below this is not cited.
        head: the learned consistency check, or None for the rules alone.
    """
    if not written:
        return []
    source_terms = [set(normalize_terms(tokenize_words(s), language)) for s in source]
    all_terms = set().union(*source_terms) if source_terms else set()
    known = known_words(" ".join(source))
    semantic = None
    if embed is not None and source:
        vectors = np.asarray(embed([*written, *source]), dtype=np.float64)
        semantic = vectors[: len(written)] @ vectors[len(written) :].T
    grounded = []
    for index, sentence in enumerate(written):
        terms = set(normalize_terms(tokenize_words(sentence), language))
        lexical = lexical_alignment(terms, source_terms)
        score = lexical if semantic is None else 0.5 * lexical + 0.5 * semantic[index]
        order = [int(i) for i in np.argsort(-score, kind="stable")[:max_sources]]
        cited = [i for i in order if score[i] >= min_alignment]
        unsupported = novel_details(sentence, known)
        missing = sorted(terms - all_terms)
        if terms and len(missing) / len(terms) > 1 - MIN_CONTENT_COVERAGE:
            unsupported += [w for w in missing if w not in unsupported]
        grounded.append(GroundedSentence(sentence, cited, unsupported))
    if head is not None and all(g.supported for g in grounded):
        doubted = head.doubted_sentence(written, source, language)
        if doubted is not None:
            grounded[doubted] = replace(grounded[doubted], doubted=True)
    return grounded


def supported_share(grounded: Sequence[GroundedSentence]) -> float:
    """Share of written sentences the source supports (1.0 for none written)."""
    return sum(g.supported for g in grounded) / len(grounded) if grounded else 1.0
