"""Sentence features for the learned extractive scorer (pure given the sentence embeddings).

BERTSUM fine-tunes the encoder; on a CPU we keep the pretrained encoder frozen and learn a
small head over what it and classic extractive signals say about each sentence: where it is,
how long, how close to the document and its neighbours, how central (PacSum, LexRank), how
much of the document's TF-IDF mass it carries, and for conversations who speaks and how often.
Most features are also z-scored within the document, because the head only has to rank a
document's sentences against each other. The head also reads the sentence embedding itself
(:func:`head_inputs`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.summarize.prepared import PreparedText
from services.summarize.rankers.centrality import pacsum_scores
from services.summarize.rankers.lexrank import idf_modified_cosine, lexrank_scores

FEATURES: tuple[str, ...] = (
    "position",
    "inverse_position",
    "first",
    "lead3",
    "log_words",
    "words_z",
    "doc_similarity",
    "doc_similarity_z",
    "previous_similarity",
    "next_similarity",
    "centrality_z",
    "forward_z",
    "backward_z",
    "lexrank_z",
    "tfidf_z",
    "embedding_method_z",
    "has_number",
    "capitalized_share",
    "question",
    "conversation",
    "turn_start",
    "speaker_share",
    "short",
    "log_sentences",
)
"""Column order of the feature matrix; a saved head records it and is refused if it differs."""

SPEAKER_RE = re.compile(r"^\s*#?([^\s:#][^:\n#]{0,29})#?:\s+\S")
_DIGIT_RE = re.compile(r"\d")
_MIN_TURNS = 3
_TURN_SHARE = 0.2


@dataclass(frozen=True)
class Turns:
    """Who speaks each sentence of a conversation (inherited until the next "Name:" prefix)."""

    speakers: list[str]
    starts: list[bool]


def speaker_turns(sentences: Sequence[str]) -> Turns:
    """The speaker of each sentence and whether it opens a turn."""
    speakers: list[str] = []
    starts: list[bool] = []
    current = ""
    for sentence in sentences:
        match = SPEAKER_RE.match(sentence)
        if match:
            current = match.group(1).strip()
        speakers.append(current)
        starts.append(match is not None)
    return Turns(speakers, starts)


def is_conversation(sentences: Sequence[str]) -> bool:
    """A transcript or chat ("Name: text" turns) rather than prose."""
    turns = speaker_turns(sentences)
    opened = sum(turns.starts)
    named = {s for s, start in zip(turns.speakers, turns.starts, strict=True) if start}
    return opened >= _MIN_TURNS and len(named) >= 2 and opened >= _TURN_SHARE * len(sentences)


def _z(values: np.ndarray) -> np.ndarray:
    spread = float(values.std())
    return (values - values.mean()) / spread if spread > 1e-9 else np.zeros_like(values)


def _tfidf_similarity(terms: list[list[str]]) -> np.ndarray:
    """Cosine of each sentence's TF-IDF vector with the whole document's."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not any(terms):
        return np.zeros(len(terms))
    vectorizer = TfidfVectorizer(analyzer=lambda words: words, sublinear_tf=True)
    matrix = vectorizer.fit_transform(terms)
    document = np.asarray(matrix.sum(axis=0)).ravel()
    norm = np.linalg.norm(document)
    if norm == 0:
        return np.zeros(len(terms))
    return np.asarray(matrix @ (document / norm)).ravel()


def sentence_features(text: PreparedText, vectors: np.ndarray) -> np.ndarray:
    """The (sentences × :data:`FEATURES`) matrix of ``text``.

    Args:
        text: the prepared document.
        vectors: unit-length sentence embeddings, one row per sentence.
    """
    n = len(text.sentences)
    if n == 0:
        return np.zeros((0, len(FEATURES)))
    vectors = np.asarray(vectors, dtype=np.float64)
    similarity = vectors @ vectors.T
    centroid = vectors.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    doc_similarity = vectors @ centroid
    off = similarity - np.eye(n) * similarity.diagonal()
    centrality = off.sum(axis=1) / max(n - 1, 1)
    previous = np.array([similarity[i, i - 1] if i > 0 else 0.0 for i in range(n)])
    following = np.array([similarity[i, i + 1] if i < n - 1 else 0.0 for i in range(n)])
    forward = pacsum_scores(similarity, 1.0, 0.0, 0.0)
    backward = pacsum_scores(similarity, 0.0, 1.0, 0.0)
    terms = text.terms()
    lexical = idf_modified_cosine(terms).toarray()
    lexrank = lexrank_scores(terms) * n
    tfidf = _tfidf_similarity(terms)
    mixed = 0.7 * similarity + 0.3 * lexical
    embedding_method = pacsum_scores(mixed, 1.0, -1.0, 0.0)
    words = np.array([len(w) for w in text.words], dtype=np.float64)
    conversation = is_conversation(text.sentences)
    turns = speaker_turns(text.sentences)
    share = {s: turns.speakers.count(s) / n for s in set(turns.speakers)}
    rows = []
    for i, sentence in enumerate(text.sentences):
        tokens = text.words[i]
        capitalized = sum(1 for w in tokens[1:] if w[:1].isupper())
        rows.append(
            (
                i / (n - 1) if n > 1 else 0.0,
                1.0 / (i + 1),
                float(i == 0),
                float(i < 3),
                math.log1p(words[i]),
                0.0,  # words_z, filled below
                float(doc_similarity[i]),
                0.0,
                float(previous[i]),
                float(following[i]),
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                float(bool(_DIGIT_RE.search(sentence))),
                capitalized / max(len(tokens) - 1, 1),
                float(sentence.rstrip().endswith("?")),
                float(conversation),
                float(conversation and turns.starts[i]),
                share[turns.speakers[i]] if conversation else 0.0,
                float(words[i] <= 3),
                math.log1p(n),
            )
        )
    matrix = np.array(rows, dtype=np.float64)
    column = {name: index for index, name in enumerate(FEATURES)}
    for name, values in (
        ("words_z", words),
        ("doc_similarity_z", doc_similarity),
        ("centrality_z", centrality),
        ("forward_z", forward),
        ("backward_z", backward),
        ("lexrank_z", lexrank),
        ("tfidf_z", tfidf),
        ("embedding_method_z", embedding_method),
    ):
        matrix[:, column[name]] = _z(np.asarray(values, dtype=np.float64))
    return matrix


def head_inputs(text: PreparedText, vectors: np.ndarray) -> np.ndarray:
    """What a head reads per sentence: the :data:`FEATURES` followed by the sentence embedding
    itself (the part of BERTSUM's recipe a frozen encoder keeps: the head learns which kinds of
    sentences summaries are made of)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return np.hstack([sentence_features(text, vectors), vectors.reshape(len(text.sentences), -1)])
