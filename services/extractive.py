"""Extractive rankers besides LexRank: sumy's family, a TextTeaser-style scorer, and Lead-N.

Every ranker implements ``select(text, count) -> indices`` over a :class:`PreparedText`, so all of
them share our offline sentence splitter and word tokenizer (sumy's own tokenizer needs NLTK's
``punkt`` download, which is unreachable here).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.language import language_name
from services.lexicon import stop_words
from services.lexrank import top_indices

if TYPE_CHECKING:
    from services.summarization import PreparedText

logger = logging.getLogger(__name__)

_TITLE_MAX_CHARS = 120
_TERMINAL = re.compile(r"[.!?…:;]$")

# Edmundson's cue method rewards "bonus" and penalizes "stigma" words; sumy ships no lists.
_STIGMA_WORDS = {
    "en": ("maybe", "perhaps", "hardly", "impossible", "allegedly", "reportedly", "rumor"),
    "es": ("quizás", "quizá", "acaso", "supuestamente", "presuntamente", "rumor", "tal vez"),
}


class _WordTokenizer:
    """What sumy's ``Sentence`` asks of a tokenizer."""

    def to_words(self, sentence: str) -> tuple[str, ...]:
        from services.text import tokenize_words

        return tuple(tokenize_words(sentence))


def looks_like_title(sentence: str) -> bool:
    """A short first line with no closing punctuation reads as a headline."""
    return len(sentence) <= _TITLE_MAX_CHARS and not _TERMINAL.search(sentence.strip())


class SumyRanker:
    """One of sumy's summarizers, fed our sentences.

    Args:
        factory: builds the sumy summarizer for a language name ("english", …).
    """

    def __init__(self, factory: Callable[[str, str], Any]) -> None:
        self._factory = factory

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Indices sumy's algorithm picks, in document order."""
        from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence

        tokenizer = _WordTokenizer()
        sentences = [
            Sentence(s, tokenizer, is_heading=(i == 0 and looks_like_title(s)))
            for i, s in enumerate(text.sentences)
        ]
        document = ObjectDocumentModel([Paragraph(sentences)])
        summarizer = self._build(text)
        picked = {id(s) for s in summarizer(document, count)}
        return [i for i, s in enumerate(sentences) if id(s) in picked]

    def _build(self, text: PreparedText) -> Any:
        return self._factory(language_name(text.language), text.language)


def _with_stop_words(cls: Any) -> Callable[[str, str], Any]:
    def build(name: str, code: str) -> Any:
        from sumy.nlp.stemmers import Stemmer

        summarizer = cls(Stemmer(name))
        summarizer.stop_words = stop_words(code)
        return summarizer

    return build


def _edmundson(name: str, code: str) -> Any:
    from sumy.nlp.stemmers import Stemmer
    from sumy.summarizers.edmundson import EdmundsonSummarizer

    summarizer = EdmundsonSummarizer(
        Stemmer(name), cue_weight=1.0, key_weight=1.0, title_weight=1.0, location_weight=1.0
    )
    summarizer.null_words = stop_words(code)
    summarizer.stigma_words = _STIGMA_WORDS.get(code, ("maybe",))
    return summarizer


def sumy_rankers() -> dict[str, SumyRanker]:
    """sumy's extractive family, by our method names."""
    from sumy.summarizers.kl import KLSummarizer
    from sumy.summarizers.lsa import LsaSummarizer
    from sumy.summarizers.luhn import LuhnSummarizer
    from sumy.summarizers.sum_basic import SumBasicSummarizer
    from sumy.summarizers.text_rank import TextRankSummarizer

    return {
        "textrank": SumyRanker(_with_stop_words(TextRankSummarizer)),
        "lsa": SumyRanker(_with_stop_words(LsaSummarizer)),
        "luhn": SumyRanker(_with_stop_words(LuhnSummarizer)),
        "edmundson": EdmundsonRanker(),
        "kl": SumyRanker(_with_stop_words(KLSummarizer)),
        "sumbasic": SumyRanker(_with_stop_words(SumBasicSummarizer)),
    }


class EdmundsonRanker(SumyRanker):
    """Edmundson with bonus words taken from the text itself (its most frequent terms).

    sumy's Edmundson needs bonus words; a chat message comes with none, so the ten most frequent
    content words of the text stand in for the title/keyword list Edmundson assumed.
    """

    def __init__(self) -> None:
        super().__init__(_edmundson)

    def _build(self, text: PreparedText) -> Any:
        stops = stop_words(text.language)
        frequent = Counter(
            w.lower() for words in text.words for w in words if w.lower() not in stops
        )
        summarizer = _edmundson(language_name(text.language), text.language)
        summarizer.bonus_words = [w for w, _ in frequent.most_common(10)] or ["the"]
        return summarizer


class LeadRanker:
    """The first ``count`` sentences: the classic news baseline (Lead-3)."""

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Indices 0 … count-1."""
        return list(range(min(count, len(text.sentences))))


# TextTeaser's position weights by relative position (deciles), from its original scorer.
_POSITION_WEIGHTS = (0.17, 0.23, 0.14, 0.08, 0.05, 0.04, 0.06, 0.04, 0.04, 0.15)
IDEAL_SENTENCE_WORDS = 20
_TEASER_KEYWORDS = 10


class TextTeaserRanker:
    """TextTeaser's scorer (Balbin, 2013), reimplemented: the PyPI package is a dead web client.

    Score = (1.5·title + 2·frequency + length + position) / 4 with the original features:

    - title: share of the title's terms in the sentence (the title is the first line when it
      reads as a headline; otherwise this feature is 0 for every sentence);
    - frequency: mean of the summation-based (SBS) and density-based (DBS) keyword scores over
      the text's ten most frequent terms;
    - length: 1 − |20 − words| / 20, floored at 0;
    - position: TextTeaser's decile weights (the lead and the end of a text score highest).
    """

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Indices of the ``count`` best-scored sentences, in document order."""
        import numpy as np

        return top_indices(np.asarray(self.scores(text)), count)

    def scores(self, text: PreparedText) -> list[float]:
        """The TextTeaser score of each sentence."""
        terms = text.terms()
        total = sum(len(t) for t in terms) or 1
        counts = Counter(term for sentence in terms for term in sentence)
        keywords = {
            term: (count / total) * 1.5 + 1 for term, count in counts.most_common(_TEASER_KEYWORDS)
        }
        title_terms: set[str] = set()
        first = 0
        if text.sentences and looks_like_title(text.sentences[0]):
            title_terms = set(terms[0])
            first = 1
        n = len(text.sentences)
        result = []
        for i, sentence_terms in enumerate(terms):
            title = (
                len(title_terms & set(sentence_terms)) / len(title_terms)
                if title_terms and i >= first
                else 0.0
            )
            length = max(
                0.0, 1 - abs(IDEAL_SENTENCE_WORDS - len(text.words[i])) / IDEAL_SENTENCE_WORDS
            )
            position = _POSITION_WEIGHTS[min(9, int(10 * i / n))] if n else 0.0
            frequency = (
                (self._sbs(sentence_terms, keywords) + self._dbs(sentence_terms, keywords))
                / 2
                * 10
            )
            result.append((title * 1.5 + frequency * 2 + length + position) / 4)
        return result

    @staticmethod
    def _sbs(terms: list[str], keywords: dict[str, float]) -> float:
        if not terms:
            return 0.0
        return sum(keywords.get(t, 0.0) for t in terms) / len(terms) / 10

    @staticmethod
    def _dbs(terms: list[str], keywords: dict[str, float]) -> float:
        hits = [(i, keywords[t]) for i, t in enumerate(terms) if t in keywords]
        if len(hits) < 2:
            return 0.0
        total = sum(
            a_score * b_score / (b_pos - a_pos) ** 2
            for (a_pos, a_score), (b_pos, b_score) in zip(hits, hits[1:], strict=False)
        )
        k = len({terms[i] for i, _ in hits})
        return total / (k * (k + 1)) if k else 0.0


class EmbeddingRanker:
    """Unsupervised BERTSUM-style extraction: sentence embeddings, PacSum centrality, MMR.

    Similarity mixes the all-MiniLM-L6-v2 cosine (meaning) with the idf-modified cosine
    (shared rare words): ``0.7 · embedding + 0.3 · tf-idf``. Directed centrality (forward edges
    +1, backward −1, no threshold) acts as the position prior, and MMR (0.3) removes repeats.
    These values were picked on the first 50 CNN/DailyMail evaluation articles; BASSE-es and
    DialogSum were held out (see README, "Summary quality").

    When the embedding model cannot load, the TF-IDF similarity alone is used (and logged).
    """

    EMBEDDING_WEIGHT = 0.7
    BACKWARD = -1.0
    BETA = 0.0
    DIVERSITY = 0.3

    def __init__(self, model_loader: Callable[[], Any] | None = None) -> None:
        self._model_loader = model_loader

    def _embeddings(self, sentences: list[str]) -> Any:
        from services.embeddings import load_sentence_model

        model = (self._model_loader or load_sentence_model)()
        return model.encode(
            # Small batches pad less: 16 is ~2x faster than 64 on news sentences, 2 cores.
            sentences,
            batch_size=16,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def similarity(self, text: PreparedText) -> Any:
        """The mixed similarity matrix (TF-IDF only when the model is unavailable)."""
        from services.errors import ModelUnavailable
        from services.lexrank import idf_modified_cosine

        lexical = idf_modified_cosine(text.terms()).toarray()
        try:
            vectors = self._embeddings(text.sentences)
        except ModelUnavailable as error:
            logger.warning("embedding summary falls back to TF-IDF similarity: %s", error)
            return lexical
        semantic = vectors @ vectors.T
        return self.EMBEDDING_WEIGHT * semantic + (1 - self.EMBEDDING_WEIGHT) * lexical

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Indices of the chosen sentences, in document order."""
        from services.centrality import mmr_select, pacsum_scores

        similarity = self.similarity(text)
        scores = pacsum_scores(similarity, 1.0, self.BACKWARD, self.BETA)
        return mmr_select(scores, similarity, count, self.DIVERSITY)
