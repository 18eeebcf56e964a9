"""Position-aware centrality (PacSum, Zheng & Lapata 2019) and MMR selection.

PacSum's observation: in news, a sentence that many *later* sentences resemble is what the text
is about, while resembling earlier sentences means repeating them. Directed centrality scores
``λ_f · Σ_{j>i} e_ij + λ_b · Σ_{j<i} e_ij`` with edges ``e_ij`` kept above a relative threshold.
It needs no training and works on any similarity matrix: TF-IDF cosine or sentence embeddings.
"""

from __future__ import annotations

import numpy as np


def pacsum_scores(
    similarity: np.ndarray,
    forward: float = 1.0,
    backward: float = -0.5,
    beta: float = 0.3,
) -> np.ndarray:
    """Directed centrality of each sentence.

    Args:
        similarity: dense n × n sentence similarity (symmetric; the diagonal is ignored).
        forward: weight of edges to later sentences.
        backward: weight of edges to earlier sentences (negative: repeating is penalized).
        beta: edges below ``min + beta · (max − min)`` of the off-diagonal values are dropped.

    Returns:
        One score per sentence.
    """
    n = similarity.shape[0]
    if n == 0:
        return np.zeros(0)
    if n == 1:
        return np.ones(1)
    sim = similarity.astype(np.float64, copy=True)
    off_diagonal = ~np.eye(n, dtype=bool)
    low, high = sim[off_diagonal].min(), sim[off_diagonal].max()
    edges = np.where(off_diagonal, np.maximum(sim - (low + beta * (high - low)), 0.0), 0.0)
    later = np.triu(edges, k=1).sum(axis=1)
    earlier = np.tril(edges, k=-1).sum(axis=1)
    return np.asarray(forward * later + backward * earlier, dtype=np.float64)


def mmr_select(
    scores: np.ndarray, similarity: np.ndarray, count: int, diversity: float = 0.3
) -> list[int]:
    """Pick ``count`` sentences by maximal marginal relevance, returned in document order.

    Relevance is the min-max normalized score; each pick is penalized by its highest
    similarity to what was already picked, weighted by ``diversity`` (0 = pure relevance).
    """
    n = len(scores)
    count = min(max(count, 0), n)
    if count == 0:
        return []
    span = float(scores.max() - scores.min())
    relevance = (scores - scores.min()) / span if span > 0 else np.zeros(n)
    chosen: list[int] = []
    redundancy = np.zeros(n)
    available = np.ones(n, dtype=bool)
    for _ in range(count):
        value = (1 - diversity) * relevance - diversity * redundancy
        value[~available] = -np.inf
        best = int(np.argmax(value))  # ties go to the earlier sentence
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, similarity[best])
    return sorted(chosen)
