"""Training labels: the greedy ROUGE oracle of BERTSUM / PreSumm (pure).

Sentences are added one at a time, each time the one that most raises ROUGE-1 F + ROUGE-2 F
of the selection against the reference, until no sentence raises it or ``limit`` are chosen;
the chosen sentences are the positives.
"""

from __future__ import annotations

from collections.abc import Sequence


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """The distinct ``n``-grams of ``tokens``."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _f1(candidate: set[tuple[str, ...]], reference: set[tuple[str, ...]]) -> float:
    if not candidate or not reference:
        return 0.0
    overlap = len(candidate & reference)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(candidate), overlap / len(reference)
    return 2 * precision * recall / (precision + recall)


def rouge_gain(selected: Sequence[Sequence[str]], reference: Sequence[str]) -> float:
    """ROUGE-1 F + ROUGE-2 F (on n-gram sets, 0–2) of ``selected`` sentences' tokens."""
    one: set[tuple[str, ...]] = set().union(*(ngrams(s, 1) for s in selected))
    two: set[tuple[str, ...]] = set().union(*(ngrams(s, 2) for s in selected))
    return _f1(one, ngrams(reference, 1)) + _f1(two, ngrams(reference, 2))


def greedy_oracle(
    sentences: Sequence[Sequence[str]], reference: Sequence[str], limit: int = 3
) -> list[int]:
    """Indices (in document order) of the greedy ROUGE-1 + ROUGE-2 oracle selection.

    Args:
        sentences: each sentence's normalized tokens (lowercased, stemmed).
        reference: the reference summary's tokens, normalized the same way.
        limit: most sentences to select.
    """
    reference_1, reference_2 = ngrams(reference, 1), ngrams(reference, 2)
    grams = [(ngrams(s, 1), ngrams(s, 2)) for s in sentences]
    chosen: list[int] = []
    selected_1: set[tuple[str, ...]] = set()
    selected_2: set[tuple[str, ...]] = set()
    best_score = 0.0
    while len(chosen) < limit:
        best_index = -1
        for index, (one, two) in enumerate(grams):
            if index in chosen:
                continue
            score = _f1(selected_1 | one, reference_1) + _f1(selected_2 | two, reference_2)
            if score > best_score:
                best_score, best_index = score, index
        if best_index < 0:
            break
        chosen.append(best_index)
        selected_1 |= grams[best_index][0]
        selected_2 |= grams[best_index][1]
    return sorted(chosen)
