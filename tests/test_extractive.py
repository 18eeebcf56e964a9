"""Every extractive backend on tiny documents with exact expected output."""

from __future__ import annotations

import pytest

from services.core.executor import ModelExecutor
from services.core.types import SummaryOptions
from services.summarize.prepared import PreparedText, prepare_text
from services.summarize.rankers.lead import LeadRanker
from services.summarize.rankers.sumy_family import looks_like_title, sumy_rankers
from services.summarize.rankers.textteaser import TextTeaserRanker
from services.summarize.service import build_summary_service
from services.text.splitting import tokenize_words
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


def test_embedding_ranker_prefers_early_central_sentences_and_avoids_repeats() -> None:
    from services.summarize.rankers.embedding import EmbeddingRanker

    sentences = [
        "The council approved a tram network for the city.",
        "The council approved a tram network for the city today.",
        "Tram lines will connect the city centre with the suburbs.",
        "A local bakery won a prize for its bread.",
        "The tram network will cost 450 million euros.",
    ]
    picked = EmbeddingRanker().select(prepared(sentences), 2)
    assert 0 in picked, "the lead statement others elaborate on is central"
    assert 1 not in picked, "its near-copy is dropped by MMR"


def test_embedding_ranker_falls_back_to_tf_idf_without_a_model() -> None:
    from services.core.errors import ModelUnavailable
    from services.summarize.rankers.embedding import EmbeddingRanker

    def missing() -> None:
        raise ModelUnavailable("all-MiniLM-L6-v2", "not installed")

    picked = EmbeddingRanker(backend=missing).select(prepared(TINY), 2)
    assert len(picked) == 2 and 3 not in picked


def test_pacsum_and_mmr_on_a_hand_built_matrix() -> None:
    import numpy as np

    from services.summarize.rankers.centrality import mmr_select, pacsum_scores

    similarity = np.array(
        [
            [1.0, 0.9, 0.8, 0.1],
            [0.9, 1.0, 0.7, 0.1],
            [0.8, 0.7, 1.0, 0.2],
            [0.1, 0.1, 0.2, 1.0],
        ]
    )
    scores = pacsum_scores(similarity, forward=1.0, backward=-1.0, beta=0.0)
    # Edges are similarity − 0.1 (the off-diagonal minimum): forward minus backward sums.
    assert scores == pytest.approx(
        [0.8 + 0.7 + 0.0, 0.6 + 0.0 - 0.8, 0.1 - 0.7 - 0.6, -0.0 - 0.0 - 0.1]
    )
    assert mmr_select(scores, similarity, 3, diversity=0.0) == [0, 1, 3]
    # With a strong diversity weight, sentence 1 (0.9 like sentence 0) gives way to 2.
    assert mmr_select(scores, similarity, 3, diversity=0.9) == [0, 2, 3]
