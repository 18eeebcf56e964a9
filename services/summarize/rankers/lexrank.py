"""LexRank (Erkan & Radev, 2004), vectorized.

This computes exactly what sumy's ``LexRankSummarizer`` computes — the idf-modified cosine over
per-sentence tf (normalized by the sentence's most frequent term) and sumy's idf
``log(N / (1 + n_j))``, a 0/1 graph thresholded at 0.1 and row-normalized, and sumy's power
iteration with its stopping rule — but with a sparse TF-IDF matrix and one sparse product
instead of a pure-Python double loop over sentence pairs. Sentences are picked by rating with
a stable sort, as sumy does, so both select the same sentences.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from services.summarize.prepared import PreparedText

THRESHOLD = 0.1
EPSILON = 0.1


def idf_modified_cosine(sentences_terms: Sequence[Sequence[str]]) -> sparse.coo_matrix:
    """Sparse sentence × sentence idf-modified cosine, exactly as sumy's LexRank computes it.

    tf is per sentence, normalized by its most frequent term; idf is ``log(N / (1 + n_j))``.
    """
    n = len(sentences_terms)
    vocabulary: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    tf_values: list[float] = []
    for i, terms in enumerate(sentences_terms):
        counts = Counter(terms)
        if not counts:
            continue
        max_tf = max(counts.values())
        for term, count in counts.items():
            rows.append(i)
            cols.append(vocabulary.setdefault(term, len(vocabulary)))
            tf_values.append(count / max_tf)
    tf = sparse.csr_matrix(
        (
            np.asarray(tf_values),
            (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)),
        ),
        shape=(n, len(vocabulary)),
    )
    document_frequency = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(vocabulary))
    idf = np.log(n / (1.0 + document_frequency))
    weighted = tf @ sparse.diags(idf)
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    similarity = (weighted @ weighted.T).tocoo()
    denominator = norms[similarity.row] * norms[similarity.col]
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.where(denominator > 0, similarity.data / denominator, 0.0)
    return sparse.coo_matrix((cosine, (similarity.row, similarity.col)), shape=(n, n))


def lexrank_scores(
    sentences_terms: Sequence[Sequence[str]],
    threshold: float = THRESHOLD,
    epsilon: float = EPSILON,
) -> np.ndarray:
    """Centrality score of each sentence.

    Args:
        sentences_terms: per sentence, its normalized terms (stemmed, stop words removed),
            repeated terms kept.
        threshold: similarity above which two sentences are linked.
        epsilon: the power iteration stops when the step is at most this long.

    Returns:
        One score per sentence, in input order.
    """
    n = len(sentences_terms)
    if n == 0:
        return np.zeros(0)
    cosine = idf_modified_cosine(sentences_terms)
    linked = cosine.data > threshold
    adjacency = sparse.csr_matrix(
        (np.ones(int(linked.sum())), (cosine.row[linked], cosine.col[linked])),
        shape=(n, n),
    )
    degrees = np.asarray(adjacency.sum(axis=1)).ravel()
    degrees[degrees == 0] = 1.0
    transition_t = (sparse.diags(1.0 / degrees) @ adjacency).T.tocsr()
    return _power_method(transition_t, epsilon)


def _power_method(transition_t: sparse.csr_matrix, epsilon: float) -> np.ndarray:
    n = transition_t.shape[0]
    p = np.full(n, 1.0 / n)
    step = 1.0
    iterations = 0
    while step > epsilon and iterations < 10_000:
        nxt = transition_t @ p
        norm = np.linalg.norm(nxt)
        if norm == 0:
            return p
        nxt /= norm
        step = float(np.linalg.norm(nxt - p))
        p = nxt
        iterations += 1
    return p


def top_indices(scores: np.ndarray, count: int) -> list[int]:
    """Indices of the ``count`` best scores, ties broken by position, in document order.

    Scores are rounded to 12 decimals first: sentences that tie mathematically can differ in
    the last bit depending on summation order, and the earlier sentence should win then.
    """
    order = np.argsort(-np.round(scores, 12), kind="stable")[: max(count, 0)]
    return sorted(int(i) for i in order)


class LexRankRanker:
    """Our vectorized LexRank (the functions above)."""

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Pick the ``count`` most central sentences."""
        return top_indices(lexrank_scores(text.terms()), count)
