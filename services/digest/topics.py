"""Topics of a window of short chat messages: NMF over TF-IDF (default) or gensim's LDA.

NMF is the default because chat messages are short: LDA's per-document topic mixtures are
poorly estimated from a dozen words, while NMF on sublinear TF-IDF is deterministic, fast
(10,000 messages in well under a second) and gives distinct, readable topics. The number of
topics (3–6) is the one whose top words co-occur best (mean NPMI over the window itself).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import sparse

from services.text.splitting import tokenize_words

TOPIC_METHODS = ("nmf", "lda")
TOP_WORDS = 4
MIN_TOPIC_SHARE = 0.5
_COHERENCE_WORDS = 5


@dataclass(frozen=True)
class FoundTopic:
    """A topic: its words, best first; the messages (indices) it dominates; the most typical."""

    words: list[str]
    members: list[int]
    representative: int | None


def content_tokens(text: str, stop_words: frozenset[str]) -> list[str]:
    """Lower-case words of three letters or more that are neither stop words nor pieces of
    contractions ("n't")."""
    return [
        word
        for word in (w.lower() for w in tokenize_words(text))
        if len(word) > 2 and word not in stop_words and "'" not in word and "’" not in word
    ]


def npmi_coherence(topic_words: Sequence[Sequence[int]], presence: sparse.csc_matrix) -> float:
    """Mean normalized PMI of each topic's top word pairs, from message co-occurrence."""
    documents = presence.shape[0]
    scores: list[float] = []
    for words in topic_words:
        for a, b in combinations(words, 2):
            col_a, col_b = presence[:, a], presence[:, b]
            p_a = col_a.nnz / documents
            p_b = col_b.nnz / documents
            p_ab = col_a.multiply(col_b).nnz / documents
            if p_ab == 0:
                scores.append(-1.0)
            elif p_ab == 1:
                scores.append(1.0)
            else:
                scores.append(math.log(p_ab / (p_a * p_b)) / -math.log(p_ab))
    return float(np.mean(scores)) if scores else -1.0


def _nmf(matrix: sparse.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import NMF

    model = NMF(n_components=k, init="nndsvd", random_state=0, max_iter=300)
    weights = model.fit_transform(matrix)
    return weights, model.components_


def _lda(matrix: sparse.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    from gensim.matutils import Sparse2Corpus
    from gensim.models import LdaModel

    counts = (matrix > 0).astype(np.int32)
    corpus = Sparse2Corpus(counts, documents_columns=False)
    model = LdaModel(corpus, num_topics=k, passes=5, iterations=50, random_state=0, id2word=None)
    weights = np.zeros((matrix.shape[0], k))
    for row, bow in enumerate(corpus):
        for topic, probability in model.get_document_topics(bow, minimum_probability=0.0):
            weights[row, topic] = probability
    return weights, model.get_topics()


_FITTERS: dict[str, Callable[[sparse.csr_matrix, int], tuple[np.ndarray, np.ndarray]]] = {
    "nmf": _nmf,
    "lda": _lda,
}


def find_topics(
    texts: Sequence[str],
    stop_words: frozenset[str],
    method: str = "nmf",
    counts: tuple[int, int] = (3, 6),
) -> list[FoundTopic]:
    """Topics of ``texts`` (one per message), most discussed first; [] when too little text.

    Args:
        texts: the messages.
        stop_words: words never used as topic words.
        method: "nmf" or "lda".
        counts: the smallest and largest number of topics to consider.
    """
    if method not in _FITTERS:
        raise ValueError(f"topic method must be one of {TOPIC_METHODS}, not {method!r}")
    from sklearn.feature_extraction.text import TfidfVectorizer

    tokens = [content_tokens(text, stop_words) for text in texts]
    rows = [i for i, words in enumerate(tokens) if words]
    low, high = counts
    if len(rows) < 2 * low:
        return []
    vectorizer = TfidfVectorizer(
        analyzer=lambda words: words,
        min_df=2,
        max_df=0.5 if len(rows) >= 20 else 1.0,
        sublinear_tf=True,
    )
    try:
        matrix = vectorizer.fit_transform([tokens[i] for i in rows])
    except ValueError:  # no word occurs in two messages
        return []
    vocabulary = vectorizer.get_feature_names_out()
    if len(vocabulary) < 2 * low:
        return []
    presence = (matrix > 0).astype(np.int8).tocsc()
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for k in range(low, min(high, len(vocabulary) // 2, len(rows) // 2) + 1):
        weights, components = _FITTERS[method](matrix, k)
        top = [list(np.argsort(-component)[:_COHERENCE_WORDS]) for component in components]
        score = npmi_coherence(top, presence)
        if best is None or score > best[0]:
            best = (score, weights, components)
    if best is None:
        return []
    _, weights, components = best
    dominant = weights.argmax(axis=1)
    totals = weights.sum(axis=1)
    share = np.divide(weights.max(axis=1), totals, out=np.zeros(len(rows)), where=totals > 0)
    # A message belongs to a topic only when that topic is most of what it is about; chit-chat
    # spread thinly over every topic is counted nowhere rather than inflating the first one.
    has_weight = share >= MIN_TOPIC_SHARE
    lengths = np.array([len(texts[i]) for i in rows])
    found: list[FoundTopic] = []
    for topic, component in enumerate(components):
        members = [int(r) for r in np.flatnonzero((dominant == topic) & has_weight)]
        if not members:
            continue
        # The most typical message: the strongest member of a quotable length.
        quotable = [m for m in members if 30 <= lengths[m] <= 400] or members
        representative = max(quotable, key=lambda m: weights[m, topic])
        words = [str(vocabulary[i]) for i in np.argsort(-component)[:TOP_WORDS]]
        found.append(FoundTopic(words, [rows[m] for m in members], rows[representative]))
    found.sort(key=lambda topic: -len(topic.members))
    return found
