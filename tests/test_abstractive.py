"""The seq2seq path on a tiny BART built in a fixture, and its pure pre/post-processing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.core.executor import ModelExecutor
from services.core.types import Length, SummaryOptions
from services.summarize.mapreduce import chunk_sentences, tidy_generated
from services.summarize.prepared import prepare_text
from services.summarize.seq2seq import GenerationSettings, Seq2SeqSummarizer
from services.summarize.service import build_summary_service
from tests.conftest import ENGLISH_ARTICLE


def test_chunks_pack_whole_sentences_under_the_window() -> None:
    sentences = ["a b c", "d e", "f g h i", "j"]
    assert chunk_sentences(sentences, lambda s: len(s.split()), 5) == ["a b c d e", "f g h i j"]
    assert chunk_sentences(["one two three four five six"], lambda s: len(s.split()), 3) == [
        "one two three four five six"
    ], "an over-long sentence is its own chunk, never split or dropped"


def test_generated_text_is_tidied_into_sentences() -> None:
    raw = "The council approved a plan .<n>It costs 450 million euros , officials said ."
    assert tidy_generated(raw, "en") == [
        "The council approved a plan.",
        "It costs 450 million euros, officials said.",
    ]


def test_a_summary_cut_by_the_token_limit_ends_on_a_complete_sentence() -> None:
    cut = "The council approved a plan. It costs 450 million euros. He added that there"
    assert tidy_generated(cut, "en") == [
        "The council approved a plan.",
        "It costs 450 million euros.",
    ]
    assert tidy_generated("The council approved a plan to", "en") == [
        "The council approved a plan to…"
    ]


def test_lengths_scale_with_the_request() -> None:
    settings = GenerationSettings(max_new_tokens=100, min_new_tokens=40)
    assert settings.lengths(Length.SHORT) == (18, 45)
    assert settings.lengths(Length.MEDIUM) == (40, 100)
    assert settings.lengths(Length.LONG) == (72, 180)


class CountingSummarizer(Seq2SeqSummarizer):
    """Counts real ``generate`` calls to show the map-reduce shape."""

    calls: list[str]

    def _generate(
        self, tokenizer: Any, model: Any, text: str, window: int, low: int, high: int
    ) -> str:
        self.calls.append(text)
        return super()._generate(tokenizer, model, text, window, low, high)


def test_tiny_bart_generates_with_map_reduce_over_chunks(tiny_bart: Path) -> None:
    backend = CountingSummarizer(
        models={"en": str(tiny_bart)},
        generation=GenerationSettings(
            num_beams=2, max_new_tokens=10, min_new_tokens=4, chunk_tokens=60
        ),
    )
    backend.calls = []
    sentences = prepare_text(ENGLISH_ARTICLE, "en").sentences
    summary = backend.summarize(sentences, "en", Length.MEDIUM)
    chunks = backend.calls[:-1]
    assert len(chunks) >= 3, "the article is split into several chunks (map)"
    assert " ".join(chunks) == " ".join(sentences), "every sentence is read exactly once"
    assert len(backend.calls) == len(chunks) + 1, (
        "one more call over the partial summaries (reduce)"
    )
    assert summary and all(isinstance(s, str) and s.strip() for s in summary)


def test_greedy_decoding_is_deterministic(tiny_bart: Path) -> None:
    backend = Seq2SeqSummarizer(
        models={"*": str(tiny_bart)},
        generation=GenerationSettings(num_beams=1, max_new_tokens=8, min_new_tokens=3),
    )
    sentences = prepare_text(ENGLISH_ARTICLE, "en").sentences
    first = backend.summarize(sentences, "es", Length.SHORT)
    assert first == backend.summarize(sentences, "es", Length.SHORT)


async def test_service_runs_abstractive_and_falls_back_when_the_model_is_missing(
    tiny_bart: Path,
) -> None:
    generation = GenerationSettings(num_beams=1, max_new_tokens=8, min_new_tokens=3)
    working = build_summary_service(
        ModelExecutor(), 100_000, abstractive=Seq2SeqSummarizer({"en": str(tiny_bart)}, generation)
    )
    assert "abstractive" in working.methods()
    summary = await working.summarize(ENGLISH_ARTICLE, SummaryOptions(method="abstractive"))
    assert summary.method == "abstractive" and summary.sentences and not summary.requested_method

    missing = build_summary_service(
        ModelExecutor(), 100_000, abstractive=Seq2SeqSummarizer({"en": "no-such/model"})
    )
    fallback = await missing.summarize(ENGLISH_ARTICLE, SummaryOptions(method="abstractive"))
    assert fallback.method == "extractive:auto", "the default answers instead"
    assert fallback.requested_method == "abstractive"
    assert "not downloaded" in fallback.note
    assert len(fallback.sentences) == 3
