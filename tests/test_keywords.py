"""The keyword service: candidate selection (exact) and properties of the ranked output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.core.executor import ModelExecutor
from services.keywords.candidates import candidate_counts
from services.keywords.extractor import KeyBERTExtractor
from services.text.lexicon import keyword_stop_words
from tests.conftest import ENGLISH_ARTICLE, SPANISH_ARTICLE


def test_candidates_are_runs_of_content_words() -> None:
    text = "The new tram network of the city, and the parking tax. Night buses double!"
    assert list(candidate_counts(text, keyword_stop_words("en"))) == [
        "tram network",
        "tram",
        "network",
        "city",
        "parking tax",
        "parking",
        "tax",
        "night buses double",
        "night",
        "buses",
        "double",
    ]


def test_long_runs_give_trigrams_and_numbers_break_runs() -> None:
    text = "quantum dot laser diode array module costs 450 euros"
    assert list(candidate_counts(text, frozenset())) == [
        "quantum dot laser",
        "dot laser diode",
        "laser diode array",
        "diode array module",
        "array module costs",
        "quantum",
        "dot",
        "laser",
        "diode",
        "array",
        "module",
        "costs",
        "euros",
    ]


async def test_keyphrases_are_ranked_unique_and_free_of_stop_words() -> None:
    extractor = KeyBERTExtractor(ModelExecutor())
    for text, language in ((ENGLISH_ARTICLE, "en"), (SPANISH_ARTICLE, "es")):
        result = await extractor.extract(text, top_n=8)
        phrases = [k.phrase for k in result.keyphrases]
        assert result.language == language
        assert len(phrases) == 8 and len(set(phrases)) == 8
        stops = keyword_stop_words(language)
        assert not any(word in stops for phrase in phrases for word in phrase.split())
        assert all(phrase.lower() in text.lower() for phrase in phrases), "extracted, not invented"
    english = await extractor.extract(ENGLISH_ARTICLE, top_n=3)
    assert any("tram" in k.phrase or "transport" in k.phrase for k in english.keyphrases)


def test_int8_onnx_minilm_agrees_with_the_full_precision_model() -> None:
    from services.embeddings.backends import MiniLMBackend
    from services.embeddings.onnx import OnnxMiniLMBackend, onnx_model_path

    sentences = [
        "The city council approved a new tram line through the old town.",
        "Los vecinos celebraron la apertura del nuevo mercado municipal.",
        "Short.",
        " ".join(["A very long sentence about budgets and councils"] * 40),  # > 256 tokens
    ]
    full = np.asarray(MiniLMBackend().embed(sentences))
    shipped = np.asarray(OnnxMiniLMBackend(model=onnx_model_path()).embed(sentences))
    # int8 products (the default) trade a little agreement for speed: 0.98-0.99 here ("Short."
    # is the lowest), 0.99 mean on news sentences; the gate that matters is ROUGE (README).
    int8 = np.asarray(OnnxMiniLMBackend().embed(sentences))
    for onnx, closest in ((shipped, 0.99), (int8, 0.97)):
        assert onnx.shape == full.shape == (4, 384)
        assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-4)
        assert (onnx * full).sum(axis=1).min() > closest
        assert onnx[0] @ onnx[1] < 0.5  # unrelated sentences stay apart


def test_the_int8_compute_minilm_is_built_once_and_falls_back_when_it_cannot_be(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The shipped export multiplies in fp32; the model built from it runs int8 kernels, is
    cached by content, and a source that cannot be converted is used as it is, with a warning."""
    import onnx

    from services.embeddings.onnx import int8_compute_model, onnx_model_path

    built = int8_compute_model(cache=tmp_path)
    assert built.parent == tmp_path and built != onnx_model_path()
    kernels = {node.op_type for node in onnx.load(str(built)).graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= kernels
    assert "MatMulInteger" not in {n.op_type for n in onnx.load(str(onnx_model_path())).graph.node}
    stamp = built.stat().st_mtime_ns
    assert int8_compute_model(cache=tmp_path) == built and built.stat().st_mtime_ns == stamp
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with caplog.at_level("WARNING"):
        assert int8_compute_model(broken, cache=tmp_path) == broken
    assert "could not build the int8 MiniLM" in caplog.text
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


class CountingEncoder:
    """The real MiniLM, counting the texts it is asked to embed."""

    name = "minilm"

    def __init__(self) -> None:
        from services.embeddings.backends import keyword_backend

        self._inner = keyword_backend("minilm")
        self.embedded: list[str] = []

    def embed(self, documents: list[str], verbose: bool = False) -> np.ndarray:
        self.embedded += documents
        return np.asarray(self._inner.embed(documents))

    def embed_phrases(self, phrases: list[str]) -> np.ndarray:
        self.embedded += phrases
        return np.asarray(self._inner.embed_phrases(phrases))


def test_the_embedding_cache_keeps_vectors_not_text_and_tells_passages_from_phrases() -> None:
    from services.embeddings.cache import EmbeddingCache

    encoder, cache = CountingEncoder(), EmbeddingCache(capacity=4)
    first = cache.embed(encoder, ["The tram opens in May.", "Buses run at night."])
    again = cache.embed(encoder, ["Buses run at night.", "The tram opens in May."])
    assert np.array_equal(first[::-1], again) and len(encoder.embedded) == 2
    cache.embed_phrases(encoder, ["The tram opens in May."])  # a query is another entry
    assert len(encoder.embedded) == 3 and len(cache) == 3
    assert not any("tram" in repr(key) for key in cache._vectors), "only digests are kept"  # noqa: SLF001
    cache.embed(encoder, ["one", "two", "three"])
    assert len(cache) == 4, "bounded"
    assert cache.embed(encoder, []).shape[0] == 0


def test_a_second_summary_of_the_same_text_does_not_run_the_encoder_again() -> None:
    from services.embeddings.cache import embedding_cache
    from services.summarize.learned.ranker import LearnedRanker, ShippedHeads
    from services.summarize.prepared import prepare_text
    from services.summarize.rankers.embedding import EmbeddingRanker

    encoder = CountingEncoder()
    embedding_cache().clear()
    prepared = prepare_text(ENGLISH_ARTICLE, "en")
    chosen = EmbeddingRanker(backend=lambda: encoder).select(prepared, 3)
    assert sorted(encoder.embedded) == sorted(set(prepared.sentences))
    assert EmbeddingRanker(backend=lambda: encoder).select(prepared, 3) == chosen
    learned = LearnedRanker(ShippedHeads(), backends=lambda name: encoder)
    assert len(learned.select(prepared, 3)) == 3
    assert sorted(encoder.embedded) == sorted(set(prepared.sentences)), "embedded once in all"
