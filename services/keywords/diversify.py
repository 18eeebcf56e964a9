"""Choosing a diverse set of key phrases: Maximal Marginal Relevance and Max Sum Distance.

KeyBERT describes both; its implementations are private (``keybert._mmr``), so these are ours,
on unit-length embeddings (a dot product is the cosine).
"""

from __future__ import annotations

import itertools

import numpy as np


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def mmr(
    document: np.ndarray, candidates: np.ndarray, phrases: list[str], count: int, diversity: float
) -> list[tuple[str, float]]:
    """Pick ``count`` phrases by MMR: relevance to the document minus ``diversity`` times the
    highest similarity to a phrase already picked.

    Args:
        document: (1, d) embedding of the document.
        candidates: (n, d) embeddings of ``phrases``.
        phrases: the candidate phrases.
        count: how many to pick.
        diversity: 0 = pure relevance, 1 = pure novelty.

    Returns:
        (phrase, relevance) in the order picked.
    """
    count = min(count, len(phrases))
    if count <= 0:
        return []
    vectors = _unit(np.asarray(candidates, dtype=np.float64))
    relevance = vectors @ _unit(np.asarray(document, dtype=np.float64).reshape(1, -1))[0]
    similarity = vectors @ vectors.T
    chosen = [int(np.argmax(relevance))]
    closest = similarity[chosen[0]].copy()
    available = np.ones(len(phrases), dtype=bool)
    available[chosen[0]] = False
    while len(chosen) < count:
        value = (1 - diversity) * relevance - diversity * closest
        value[~available] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        available[best] = False
        closest = np.maximum(closest, similarity[best])
    return [(phrases[i], round(float(relevance[i]), 4)) for i in chosen]


def max_sum(
    document: np.ndarray, candidates: np.ndarray, phrases: list[str], count: int, pool: int
) -> list[tuple[str, float]]:
    """Max Sum Distance: among the ``pool`` most relevant phrases, the ``count`` whose pairwise
    similarity sums lowest.

    Returns:
        (phrase, relevance) of the chosen set, most relevant first.
    """
    count = min(count, len(phrases))
    if count <= 0:
        return []
    vectors = _unit(np.asarray(candidates, dtype=np.float64))
    relevance = vectors @ _unit(np.asarray(document, dtype=np.float64).reshape(1, -1))[0]
    top = [int(i) for i in np.argsort(-relevance)[: max(pool, count)]]
    similarity = vectors[top] @ vectors[top].T
    best = min(
        itertools.combinations(range(len(top)), count),
        key=lambda combo: sum(similarity[a, b] for a, b in itertools.combinations(combo, 2)),
    )
    picked = sorted((top[i] for i in best), key=lambda i: -relevance[i])
    return [(phrases[i], round(float(relevance[i]), 4)) for i in picked]
