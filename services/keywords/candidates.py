"""Candidate key phrases: runs of content words, their counts and a frequency prior (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_PHRASE_WORDS = 4
_TOKEN_RE = re.compile(r"[^\W\d_][\w'’-]*|\d[\w.,]*|[^\w\s]")


# Pieces of English contractions in pre-tokenized text ("did n't", "I 've").
_CLITICS = frozenset({"n't", "n’t", "ve", "ll", "re", "nt"})


def content_runs(text: str, stop_words: frozenset[str]) -> list[list[str]]:
    """Runs of content words: the text cut at stop words, numbers and punctuation."""
    runs: list[list[str]] = []
    run: list[str] = []
    for token in _TOKEN_RE.findall(text):
        lower = token.lower()
        if not token[0].isalpha() or lower in stop_words or len(lower) < 2 or lower in _CLITICS:
            if run:
                runs.append(run)
                run = []
        else:
            run.append(token)
    if run:
        runs.append(run)
    return runs


def candidate_counts(text: str, stop_words: frozenset[str]) -> dict[str, int]:
    """Keyphrase candidates with how often each occurs, in first-occurrence order.

    Plain 1–3-gram candidates (stock KeyBERT) favour long, redundant phrases that straddle stop
    words ("services hyped ad"); keyphrases are noun-phrase-like runs of content words between
    stop words and punctuation. A run of up to four words is a candidate as a whole; a longer
    run gives its word trigrams. Every content word longer than two letters is a candidate too.
    """
    counts: dict[str, int] = {}
    for run in content_runs(text, stop_words):
        if len(run) <= MAX_PHRASE_WORDS:
            phrases = [" ".join(run)]
        else:
            phrases = [" ".join(run[i : i + 3]) for i in range(len(run) - 2)]
        if len(run) > 1:
            phrases.extend(word for word in run if len(word) > 2)
        for phrase in phrases:
            key = phrase.lower()
            counts[key] = counts.get(key, 0) + 1
    return counts


def run_ngrams(text: str, stop_words: frozenset[str], longest: int = 3) -> set[str]:
    """Every 1–``longest``-gram inside the content-word runs of ``text`` (lower case).

    Short chat messages phrase the same thing inside different runs ("the chess tournament
    starts", "for the chess tournament"), so a digest counts the phrases within runs.
    """
    grams: set[str] = set()
    for run in content_runs(text, stop_words):
        words = [w.lower() for w in run]
        for size in range(1, min(longest, len(words)) + 1):
            for start in range(len(words) - size + 1):
                gram = words[start : start + size]
                if size > 1 or len(gram[0]) > 2:
                    grams.add(" ".join(gram))
    return grams


def prior_weight(phrase: str, count: int) -> float:
    """Frequency prior: repeated phrases matter, and a repeated multi-word phrase more so."""
    return count * (1.0 + 0.5 * (phrase.count(" ")))


def top_candidates(counts: Mapping[str, int], limit: int) -> list[str]:
    """At most ``limit`` candidates by :func:`prior_weight`, earlier first on ties, kept in
    first-occurrence order. Embedding every candidate costs more than it gains (README)."""
    phrases = list(counts)
    if len(phrases) <= limit:
        return phrases
    order = sorted(
        range(len(phrases)), key=lambda i: (-prior_weight(phrases[i], counts[phrases[i]]), i)
    )
    return [phrases[i] for i in sorted(order[:limit])]
