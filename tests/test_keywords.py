"""The keyword service: candidate selection (exact) and properties of the ranked output."""

from __future__ import annotations

import numpy as np

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
    from services.embeddings.onnx import OnnxMiniLMBackend

    sentences = [
        "The city council approved a new tram line through the old town.",
        "Los vecinos celebraron la apertura del nuevo mercado municipal.",
        "Short.",
        " ".join(["A very long sentence about budgets and councils"] * 40),  # > 256 tokens
    ]
    onnx = np.asarray(OnnxMiniLMBackend().embed(sentences))
    full = np.asarray(MiniLMBackend().embed(sentences))
    assert onnx.shape == full.shape == (4, 384)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-4)
    assert (onnx * full).sum(axis=1).min() > 0.99
    assert onnx[0] @ onnx[1] < 0.5  # unrelated sentences stay apart
