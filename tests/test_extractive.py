"""Every extractive backend on tiny documents with exact expected output."""

from __future__ import annotations

import pytest

from services.executor import ModelExecutor
from services.extractive import LeadRanker, TextTeaserRanker, looks_like_title, sumy_rankers
from services.protocols import SummaryOptions
from services.summarization import PreparedText, build_summary_service, prepare_text
from services.text import tokenize_words
from tests.conftest import ENGLISH_ARTICLE, SPANISH_ARTICLE

TINY = [
    "Cats purr when cats are happy.",
    "Dogs bark at cats.",
    "Cats sleep most of the day, cats dream.",
    "The stock market fell sharply.",
    "Cats hunt mice at night.",
]


def prepared(sentences: list[str], language: str = "en") -> PreparedText:
    return PreparedText(language, sentences, [tokenize_words(s) for s in sentences], 100)


@pytest.mark.parametrize(
    ("method", "expected"),
    # sumy's own algorithms decide these; the pins catch a broken document adapter.
    [
        ("textrank", [0, 2]),
        ("lsa", [3, 4]),
        ("luhn", [0, 1]),
        ("kl", [0, 2]),
        ("sumbasic", [0, 3]),
        ("edmundson", [0, 2]),
    ],
)
def test_sumy_backends_on_a_tiny_document(method: str, expected: list[int]) -> None:
    assert sumy_rankers()[method].select(prepared(TINY), 2) == expected


def test_textteaser_prefers_keyword_dense_sentences_of_ideal_length() -> None:
    ranker = TextTeaserRanker()
    scores = ranker.scores(prepared(TINY))
    # The ten keywords are "cat" (6 times) and the first nine one-off terms, so the last
    # sentence — short, late, with one keyword — scores lowest, and the cat-dense ones win.
    assert scores.index(min(scores)) == 4
    assert ranker.select(prepared(TINY), 2) == [0, 2]


def test_textteaser_uses_a_headline_as_title() -> None:
    sentences = ["Stock market news", *TINY]
    scores = TextTeaserRanker().scores(prepared(sentences))
    assert scores[4] > scores[2], "title words lift the market sentence above a cat one"


def test_lead_takes_the_first_sentences() -> None:
    assert LeadRanker().select(prepared(TINY), 3) == [0, 1, 2]


def test_title_detection() -> None:
    assert looks_like_title("Stock market news")
    assert not looks_like_title("The stock market fell sharply.")


@pytest.mark.parametrize("text", [ENGLISH_ARTICLE, SPANISH_ARTICLE])
async def test_every_method_runs_through_the_service(text: str) -> None:
    service = build_summary_service(ModelExecutor(), max_chars=100_000)
    assert set(service.methods()) >= {
        "lexrank",
        "textrank",
        "lsa",
        "luhn",
        "edmundson",
        "kl",
        "sumbasic",
        "textteaser",
    }
    sentences = prepare_text(text).sentences
    for method in service.methods():
        summary = await service.summarize(text, SummaryOptions(method=method, sentences=3))
        assert summary.method == method and len(summary.sentences) == 3
        positions = [sentences.index(s) for s in summary.sentences]
        assert positions == sorted(positions), f"{method} keeps document order"
