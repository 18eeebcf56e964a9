"""Our vectorized LexRank against sumy's reference implementation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
from sumy.nlp.stemmers import Stemmer
from sumy.summarizers.lex_rank import LexRankSummarizer
from sumy.utils import get_stop_words

from services.core.types import Length
from services.summarize.prepared import prepare_text
from services.summarize.rankers.lexrank import LexRankRanker, lexrank_scores, top_indices
from services.summarize.service import sentence_count
from services.text.splitting import tokenize_words
from tests.conftest import ENGLISH_ARTICLE, SHARED_EVAL, SPANISH_ARTICLE


class WordTokenizer:
    """sumy's Sentence asks its tokenizer for words; ours needs no NLTK download."""

    def to_words(self, sentence: str) -> tuple[str, ...]:
        return tuple(tokenize_words(sentence))


def sumy_lexrank(sentences: list[str], language: str, count: int) -> list[int]:
    name = {"en": "english", "es": "spanish"}[language]
    document = ObjectDocumentModel([Paragraph([Sentence(s, WordTokenizer()) for s in sentences])])
    summarizer = LexRankSummarizer(Stemmer(name))
    summarizer.stop_words = get_stop_words(name)
    picked = {str(s) for s in summarizer(document, count)}
    return [i for i, s in enumerate(sentences) if s in picked]


def test_scores_of_a_tiny_hand_built_document() -> None:
    # Sentences 0 and 1 share "cat"; 2 shares nothing: it only links to itself.
    terms = [["cat", "sat"], ["cat", "ran"], ["dog"], ["bird", "sang"]]
    scores = lexrank_scores(terms)
    assert scores[0] == pytest.approx(scores[1])
    assert top_indices(scores, 2) == [0, 1]


def test_top_indices_break_ties_by_position_and_keep_document_order() -> None:
    assert top_indices(np.array([0.5, 0.9, 0.5, 0.9]), 3) == [0, 1, 3]
    # Equal up to floating-point noise is equal: the earlier sentence wins.
    assert top_indices(np.array([0.25459682299535036, 0.2545968229953504, 0.1]), 1) == [0]


@pytest.mark.parametrize(("text", "language"), [(ENGLISH_ARTICLE, "en"), (SPANISH_ARTICLE, "es")])
def test_same_sentences_as_sumy_on_articles(text: str, language: str) -> None:
    prepared = prepare_text(text, language)
    for count in (1, 3, 5):
        assert LexRankRanker().select(prepared, count) == sumy_lexrank(
            prepared.sentences, language, count
        )


@pytest.mark.skipif(
    not (SHARED_EVAL / "summ_en_cnndm_summeval100.jsonl").exists(),
    reason="shared evaluation data not present",
)
def test_same_sentences_as_sumy_on_evaluation_documents() -> None:
    lines = (SHARED_EVAL / "summ_en_cnndm_summeval100.jsonl").read_text().splitlines()[:15]
    for line in lines:
        prepared = prepare_text(json.loads(line)["text"], "en")
        assert LexRankRanker().select(prepared, 3) == sumy_lexrank(prepared.sentences, "en", 3)


@pytest.mark.parametrize(
    ("total", "length", "override", "expected"),
    [
        (12, Length.MEDIUM, None, 3),
        (12, Length.SHORT, None, 2),
        (64, Length.MEDIUM, None, 6),
        (400, Length.LONG, None, 14),
        (3, Length.LONG, None, 2),
        (50, Length.SHORT, 9, 9),
        (5, Length.SHORT, 40, 5),
    ],
)
def test_sentence_counts(total: int, length: Length, override: int | None, expected: int) -> None:
    assert sentence_count(total, length, override) == expected
