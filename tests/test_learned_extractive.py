"""The learned extractive summarizer: oracle, features, head files, trigram blocking, the shipped
heads through the service, and ``condensa adapt --kind extractive`` end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from services.core.errors import ModelUnavailable
from services.core.executor import ModelExecutor
from services.core.types import SummaryOptions
from services.summarize.learned.features import (
    FEATURES,
    head_inputs,
    is_conversation,
    sentence_features,
    speaker_turns,
)
from services.summarize.learned.head import SentenceHead
from services.summarize.learned.oracle import greedy_oracle
from services.summarize.learned.ranker import SHIPPED_DIR, ShippedHeads, trigram_blocked
from services.summarize.prepared import prepare_text
from services.summarize.service import build_summary_service
from tests.conftest import ENGLISH_ARTICLE

DIALOGUE = (
    "Person1: Hi Sam, I want to buy a pet.\n"
    "Person2: You should go to Rachel's pet store. It has every kind of animal.\n"
    "Person1: Are there any snakes? I would like a snake.\n"
    "Person2: Snakes are not good pets. They can carry diseases.\n"
    "Person1: Then I will get a cat instead."
)


def test_the_oracle_adds_sentences_while_rouge_improves() -> None:
    sentences = [["the", "cat", "sat"], ["dogs", "bark", "loud"], ["a", "cat", "sat", "down"]]
    assert greedy_oracle(sentences, ["the", "cat", "sat", "down"], limit=3) == [0, 2]
    assert greedy_oracle(sentences, ["birds", "sing"], limit=3) == []
    assert greedy_oracle(sentences, ["dogs", "bark", "loud"], limit=1) == [1]


def test_trigram_blocking_skips_repeats_and_fills_when_short() -> None:
    words = [["a", "b", "c", "d"], ["a", "b", "c", "e"], ["x", "y", "z"], ["p", "q"]]
    scores = np.array([0.9, 0.8, 0.5, 0.1])
    assert trigram_blocked(scores, words, 2) == [0, 2]
    assert trigram_blocked(scores, words, 4) == [0, 1, 2, 3]


def test_speakers_and_genre() -> None:
    text = prepare_text(DIALOGUE, "en")
    turns = speaker_turns(text.sentences)
    assert turns.speakers[:3] == ["Person1", "Person2", "Person2"]
    assert turns.starts[:3] == [True, True, False]
    assert is_conversation(text.sentences)
    assert not is_conversation(prepare_text(ENGLISH_ARTICLE, "en").sentences)


def test_features_have_the_documented_columns_and_within_document_scaling() -> None:
    text = prepare_text(ENGLISH_ARTICLE, "en")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(text.sentences), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    matrix = sentence_features(text, vectors)
    column = {name: i for i, name in enumerate(FEATURES)}
    assert matrix.shape == (len(text.sentences), len(FEATURES))
    assert matrix[0, column["first"]] == 1 and matrix[1:, column["first"]].sum() == 0
    assert abs(matrix[:, column["lexrank_z"]].mean()) < 1e-9
    assert matrix[:, column["conversation"]].sum() == 0
    assert head_inputs(text, vectors).shape == (len(text.sentences), len(FEATURES) + 8)


def test_head_files_round_trip_and_bad_ones_are_refused(tmp_path: Path) -> None:
    width = len(FEATURES) + 2
    head = SentenceHead("minilm", 2, [0.0] * width, [1.0] * width, [0.5] * width, -1.0)
    head.save(tmp_path / "ok.json")
    assert SentenceHead.load(tmp_path / "ok.json", "extractive:x") == head
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ModelUnavailable, match="damaged"):
        SentenceHead.load(tmp_path / "broken.json", "extractive:x")
    payload = json.loads((tmp_path / "ok.json").read_text())
    payload["features"] = payload["features"][:-1]
    (tmp_path / "old.json").write_text(json.dumps(payload))
    with pytest.raises(ModelUnavailable, match="other features"):
        SentenceHead.load(tmp_path / "old.json", "extractive:x")
    with pytest.raises(ModelUnavailable, match="no trained head"):
        SentenceHead.load(tmp_path / "missing.json", "extractive:x")


@pytest.mark.parametrize(
    "name", ["news-en", "news-multi", "conversation-en", "conversation-multi"]
)
def test_every_shipped_head_loads(name: str) -> None:
    head = SentenceHead.load(SHIPPED_DIR / f"{name}.json", "extractive:auto")
    assert head.encoder == ("minilm" if name.endswith("-en") else "e5")
    assert head.about["trained_on"]


def test_the_shipped_heads_are_chosen_by_language_and_genre() -> None:
    assert ShippedHeads.name_for("en", False) == "news-en"
    assert ShippedHeads.name_for("es", False) == "news-multi"
    assert ShippedHeads.name_for("en", True) == "conversation-en"
    assert ShippedHeads.name_for("pt", True) == "conversation-multi"


async def test_extractive_auto_summarizes_news_and_conversations() -> None:
    service = build_summary_service(ModelExecutor(), max_chars=100_000)
    assert "extractive:auto" in service.methods()
    for text in (ENGLISH_ARTICLE, DIALOGUE):
        summary = await service.summarize(
            text, SummaryOptions(method="extractive:auto", sentences=2, language="en")
        )
        source = prepare_text(text, "en").sentences
        assert summary.method == "extractive:auto" and not summary.note
        assert len(summary.sentences) == 2 and len(set(summary.sentences)) == 2
        positions = [source.index(s) for s in summary.sentences]
        assert positions == sorted(positions), "document order"


POOL = [s.strip() + "." for s in ENGLISH_ARTICLE.split(". ") if s.strip()]
FACTS = [
    "The project will cost 450 million euros over 6 years.",
    "Construction starts in 2026 with 3 new depots.",
    "Ridership should grow by 25 percent by 2030.",
    "The first 12 trams arrive in March.",
]


def write_pairs(path: Path, count: int = 15) -> Path:
    """Documents whose reference is always their two sentences with figures, placed anywhere:
    a pattern Lead-3 cannot follow and a trained head can."""
    rng = random.Random(0)
    lines = []
    for i in range(count):
        facts = rng.sample(FACTS, 2)
        sentences = rng.sample(POOL, 6) + facts
        rng.shuffle(sentences)
        reference = " ".join(s for s in sentences if s in facts)
        lines.append(json.dumps({"id": str(i), "text": " ".join(sentences), "summary": reference}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_adapt_extractive_learns_cross_validates_saves_and_serves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    data = write_pairs(tmp_path / "pairs.jsonl")
    code = main(
        ["adapt", "--kind", "extractive", "--data", str(data), "--name", "figures", "--folds", "3"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    directory = tmp_path / "data" / "models" / "figures"
    report = json.loads((directory / "report.json").read_text())
    held_out = report["held_out"]
    assert report["documents"] == 15 and report["folds"] == 3
    assert held_out["learned"]["rougeLsum"]["mean"] > held_out["lead"]["rougeLsum"]["mean"] + 5
    assert "| learned |" in (directory / "report.md").read_text()
    assert "extractive:figures" in out

    text = json.loads(data.read_text().splitlines()[0])["text"]
    (tmp_path / "doc.txt").write_text(text)
    code = main(
        [
            "summarize",
            str(tmp_path / "doc.txt"),
            "--method",
            "extractive:figures",
            "--sentences",
            "2",
        ]
    )
    summary = capsys.readouterr().out
    assert code == 0
    assert sum(fact in summary for fact in FACTS) == 2, summary

    (directory / "head.json").write_text("{}")
    code = main(["summarize", str(tmp_path / "doc.txt"), "--method", "extractive:figures"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "extractive:figures unavailable (the saved head is damaged)" in captured.err
    assert captured.out.startswith("extractive:auto ·"), "the default answers instead"


def test_adapt_extractive_refuses_a_reserved_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    data = write_pairs(tmp_path / "pairs.jsonl", 6)
    assert main(["adapt", "--kind", "extractive", "--data", str(data), "--name", "auto"]) == 2
    assert "model name 'auto'" in capsys.readouterr().err


async def test_the_default_falls_back_to_embedding_when_its_shipped_head_is_missing(
    tmp_path: Path,
) -> None:
    """``extractive:auto`` is the default; without its heads the embedding ranker answers and
    the summary says why."""
    from services.core.executor import ModelExecutor
    from services.core.types import SummaryOptions
    from services.summarize.learned.ranker import LearnedRanker, ShippedHeads
    from services.summarize.service import build_summary_service
    from tests.conftest import ENGLISH_ARTICLE

    service = build_summary_service(ModelExecutor(), 100_000)
    assert service.methods()[0] == "extractive:auto"
    working = await service.summarize(ENGLISH_ARTICLE, SummaryOptions(sentences=3))
    assert working.method == "extractive:auto" and not working.note
    service._rankers["extractive:auto"] = LearnedRanker(ShippedHeads(tmp_path))  # noqa: SLF001
    fallback = await service.summarize(ENGLISH_ARTICLE, SummaryOptions(sentences=3))
    assert fallback.method == "embedding"
    assert fallback.requested_method == "extractive:auto" and fallback.note
    assert len(fallback.sentences) == 3
