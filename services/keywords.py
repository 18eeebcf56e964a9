"""Keyphrase extraction with KeyBERT over sentence embeddings."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from services.errors import EmptyInput, InputTooLarge
from services.executor import ModelExecutor
from services.language import detect_language
from services.lexicon import keyword_stop_words
from services.protocols import Keyphrase, KeywordResult
from services.text import clean_text, tokenize_words

MIN_WORDS = 5
MAX_PHRASE_WORDS = 4
DEFAULT_MODELS: Mapping[str, str] = {"en": "minilm", "es": "e5", "*": "e5"}
"""Embedding model per language, chosen by F1@10 on the development sets (README)."""

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


def candidate_phrases(text: str, stop_words: frozenset[str]) -> list[str]:
    """The candidates of :func:`candidate_counts`, first occurrence first."""
    return list(candidate_counts(text, stop_words))


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


class PhraseEmbeddingCache:
    """A bounded LRU cache of phrase embeddings per backend: chat digests and related
    documents repeat their phrases, and each embedding costs a model call."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._capacity = capacity
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, backend: Any, phrases: list[str]) -> np.ndarray:
        """Embeddings of ``phrases`` (rows in order), computing only the missing ones."""
        with self._lock:
            missing = [p for p in dict.fromkeys(phrases) if (backend.name, p) not in self._vectors]
        if missing:
            fresh = np.asarray(backend.embed_phrases(missing), dtype=np.float32)
            with self._lock:
                for phrase, vector in zip(missing, fresh, strict=True):
                    self._vectors[(backend.name, phrase)] = vector
                while len(self._vectors) > self._capacity:
                    self._vectors.popitem(last=False)
        with self._lock:
            rows = []
            for phrase in phrases:
                key = (backend.name, phrase)
                self._vectors.move_to_end(key)
                rows.append(self._vectors[key])
        return np.vstack(rows)


class KeyBERTExtractor:
    """KeyBERT over content-word-run candidates, the language's stop words, and MMR or Max Sum.

    Args:
        executor: the bounded executor model calls go through.
        max_chars: longer texts are refused with :class:`InputTooLarge`.
        diversity: MMR diversity (0 = pure relevance, 1 = pure diversity).
        models: embedding backend per language ("minilm" or "e5"; "*" for the others).
        max_candidates: candidates embedded per text, the most frequent first.
        diversification: "mmr" (default) or "maxsum" (KeyBERT's Max Sum Distance).
    """

    def __init__(
        self,
        executor: ModelExecutor,
        max_chars: int = 100_000,
        diversity: float = 0.2,
        models: Mapping[str, str] | None = None,
        max_candidates: int = 30,
        diversification: str = "mmr",
    ):
        if diversification not in ("mmr", "maxsum"):
            raise ValueError(f"diversification must be 'mmr' or 'maxsum', not {diversification!r}")
        self._executor = executor
        self._max_chars = max_chars
        self._diversity = diversity
        self._models = dict(models or DEFAULT_MODELS)
        self._max_candidates = max_candidates
        self._diversification = diversification
        self.cache = PhraseEmbeddingCache()

    def model_name(self, language: str) -> str:
        """The embedding backend used for ``language``."""
        return self._models.get(language) or self._models.get("*", "minilm")

    def backend(self, language: str) -> Any:
        """The loaded embedding backend for ``language`` (blocking on first use)."""
        from services.embeddings import keyword_backend

        return keyword_backend(self.model_name(language))

    def warm_up(self) -> None:
        """Load the models now (blocking) so the first request does not pay for it."""
        for language in ("en", "es"):
            self.backend(language)

    def embed_phrases(self, phrases: list[str], language: str) -> np.ndarray:
        """Cached unit-length embeddings of ``phrases`` with ``language``'s model (blocking)."""
        return self.cache.embed(self.backend(language), phrases)

    async def extract(self, text: str, top_n: int = 10, language: str = "") -> KeywordResult:
        """Return up to ``top_n`` keyphrases of ``text``, best first."""
        if len(text) > self._max_chars:
            raise InputTooLarge(len(text), self._max_chars)
        cleaned = clean_text(text)
        if len(tokenize_words(cleaned)) < MIN_WORDS:
            raise EmptyInput("too few words")
        lang = language or detect_language(cleaned)
        return await self._executor.run(self.extract_sync, cleaned, top_n, lang)

    def extract_sync(self, text: str, top_n: int, language: str) -> KeywordResult:
        """:meth:`extract` without the checks, on the calling thread (benchmarks, executor)."""
        counts = candidate_counts(text, keyword_stop_words(language))
        candidates = top_candidates(counts, self._max_candidates)
        if not candidates:
            return KeywordResult(language=language)
        backend = self.backend(language)
        # KeyBERT's backend interface and its MMR / Max Sum; its CountVectorizer is bypassed
        # because it would re-tokenize the candidates and only ever match single words.
        document_vector = backend.embed([text])
        candidate_vectors = self.cache.embed(backend, candidates)
        count = min(top_n, len(candidates))
        if self._diversification == "maxsum":
            from keybert._maxsum import max_sum_distance

            pairs = max_sum_distance(
                document_vector, candidate_vectors, candidates, count, min(2 * count, 20)
            )
        else:
            from keybert._mmr import mmr

            pairs = mmr(document_vector, candidate_vectors, candidates, count, self._diversity)
        # MMR / Max Sum choose the set; within it, the most relevant phrase comes first.
        ranked = sorted(pairs, key=lambda pair: -pair[1])
        return KeywordResult(
            language=language,
            keyphrases=[Keyphrase(phrase, float(score)) for phrase, score in ranked],
        )
