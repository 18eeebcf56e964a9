"""Grounded written summaries: alignment with source sentences, unsupported details marked or
dropped, numbered sources in the reply, and the faithfulness figure of ``eval summary``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from handlers.render import render_summary
from services.core.executor import ModelExecutor
from services.core.types import Length, SummaryOptions
from services.grounding.align import GroundingMode, ground, supported_share
from services.summarize.prepared import prepare_text
from services.summarize.rankers.lexrank import LexRankRanker
from services.summarize.service import SummaryService
from tests.conftest import ENGLISH_ARTICLE

SOURCE = prepare_text(ENGLISH_ARTICLE, "en").sentences


def test_each_written_sentence_cites_what_supports_it_and_invented_details_are_listed() -> None:
    written = [
        "The plan adds three tram lines and doubles night buses.",
        "The city will spend 900 million euros on the plan.",
        "Mayor Thompson opened the first line.",
        "Unicorns graze quietly beside purple waterfalls.",
    ]
    grounded = ground(written, SOURCE, "en")
    assert grounded[0].supported and grounded[0].sources[0] == 1, "cites the tram sentence"
    assert "900" in grounded[1].unsupported
    assert "Thompson" in grounded[2].unsupported
    assert not grounded[3].supported and not grounded[3].sources
    assert supported_share(grounded) == 0.25


def test_numbers_and_names_the_source_has_are_supported() -> None:
    grounded = ground(["I think the council approved the plan on Monday."], SOURCE, "en")
    assert grounded[0].supported, grounded[0].unsupported


class FakeWriter:
    """A generator that writes one faithful and one invented sentence."""

    def summarize(self, sentences: Sequence[str], language: str, length: Length) -> list[str]:
        return [
            "The council approved a plan to expand public transport.",
            "The plan was signed by President Lincoln in 1862.",
        ]


def service(mode: GroundingMode) -> SummaryService:
    return SummaryService(
        ModelExecutor(),
        {"lexrank": LexRankRanker()},
        generators={"llm": FakeWriter()},
        grounding=mode,
    )


async def test_mark_keeps_and_flags_drop_leaves_out_off_shows_as_written() -> None:
    options = SummaryOptions(method="llm", language="en")
    marked = await service(GroundingMode.MARK).summarize(ENGLISH_ARTICLE, options)
    assert marked.flagged == [False, True]
    assert marked.citations[0][0] == 0 and marked.quotes[0] == SOURCE[0]
    dropped = await service(GroundingMode.DROP).summarize(ENGLISH_ARTICLE, options)
    assert len(dropped.sentences) == 1 and dropped.dropped == 1
    plain = await service(GroundingMode.OFF).summarize(ENGLISH_ARTICLE, options)
    assert len(plain.sentences) == 2 and not plain.citations and not plain.flagged


async def test_the_reply_numbers_sources_and_explains_the_mark() -> None:
    options = SummaryOptions(method="llm", language="en")
    marked = await service(GroundingMode.MARK).summarize(ENGLISH_ARTICLE, options)
    html = "\n".join(render_summary(marked, "en"))
    assert "public transport. [1]" in html
    assert "⚠️ The plan was signed by President Lincoln in 1862." in html
    assert "<b>Sources</b>\n[1] <i>The city council approved" in html
    assert "⚠️ marks a sentence with names, numbers or words" in html
    dropped = await service(GroundingMode.DROP).summarize(ENGLISH_ARTICLE, options)
    spanish = "\n".join(render_summary(dropped, "es"))
    assert (
        "<b>Fuentes</b>" in spanish and "He omitido 1 frase que la fuente no respalda." in spanish
    )


def test_the_offline_checker_is_scored_by_balanced_accuracy_per_domain(tmp_path: Path) -> None:
    import json

    from services.evaluation.faithfulness import (
        balanced_accuracy,
        evaluate_checker,
        load_faithfulness_examples,
    )
    from services.grounding.checkers import AlignmentChecker

    assert balanced_accuracy([1, 1, 0, 0], [True, False, False, False]) == 75.0
    assert balanced_accuracy([1, 0, 0, 0], [True, True, True, True]) == 50.0, "always 'fine'"
    document = ENGLISH_ARTICLE
    rows = [
        ("news", "The project will cost 450 million euros.", 1),
        ("news", "The project will cost 900 million euros.", 0),
        ("news", "Mayor Smith approved three tram lines.", 0),
        ("other", "Construction of the first tram line will start in the spring.", 1),
        ("other", "Construction of the first tram line will start in 2031.", 0),
    ]
    data = tmp_path / "rows.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": str(n), "domain": d, "document": document, "summary": s, "label": y})
            + "\n"
            for n, (d, s, y) in enumerate(rows)
        )
    )
    examples = load_faithfulness_examples(data)
    report = evaluate_checker(AlignmentChecker(), examples, len(examples))
    assert report["balanced_accuracy"] == {"overall": 100.0, "news": 100.0, "other": 100.0}
    assert report["checker"] == "offline" and report["seconds_per_example"] < 1


NEGATED = (
    "Council members said the expansion would not cut traffic and pollution in the city centre."
)
SHARED_FAITHFULNESS = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "faithfulness"
    / "summedits_dev.jsonl"
)


def test_the_learned_check_marks_an_added_negation_no_rule_sees() -> None:
    from services.grounding.learned import shipped_head

    head = shipped_head()
    assert head is not None and head.languages == ["en"]
    written = [SOURCE[0], NEGATED]
    assert all(g.supported for g in ground(written, SOURCE, "en")), "no name or number is new"
    marked = ground(written, SOURCE, "en", head=head)
    assert marked[0].supported and not marked[1].supported and marked[1].doubted
    assert all(g.supported for g in ground(SOURCE[:6], SOURCE, "en", head=head)), (
        "sentences copied from the source are never doubted"
    )
    assert all(g.supported for g in ground(written, SOURCE, "es", head=head)), (
        "the head judges only the languages it was trained on"
    )


class NegatingWriter:
    def summarize(self, sentences: Sequence[str], language: str, length: Length) -> list[str]:
        return ["The council approved a plan to expand public transport.", NEGATED]


async def test_a_summary_the_learned_check_doubts_is_marked_in_the_reply() -> None:
    from services.grounding.learned import shipped_head

    writer = SummaryService(
        ModelExecutor(),
        {"lexrank": LexRankRanker()},
        generators={"llm": NegatingWriter()},
        consistency_head=shipped_head(),
    )
    summary = await writer.summarize(ENGLISH_ARTICLE, SummaryOptions(method="llm", language="en"))
    assert summary.flagged == [False, True]
    html = "\n".join(render_summary(summary, "en"))
    assert f"⚠️ {NEGATED}" in html and "or that a trained check doubts" in html


def test_a_damaged_or_mismatched_consistency_head_is_refused_with_its_reason(
    tmp_path: Path,
) -> None:
    import json

    from services.grounding.learned import HEAD_PATH, ConsistencyHead, HeadUnusable

    good = json.loads(HEAD_PATH.read_text())
    cases = {
        "missing.json": None,
        "damaged.json": "{not json",
        "short.json": json.dumps({**good, "weights": good["weights"][:-1]}),
        "renamed.json": json.dumps({**good, "features": ["x", *good["features"][1:]]}),
        "no-threshold.json": json.dumps({k: v for k, v in good.items() if k != "threshold"}),
    }
    reasons = {}
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(HeadUnusable) as caught:
            ConsistencyHead.load(tmp_path / name)
        reasons[name] = str(caught.value)
    assert "no consistency head" in reasons["missing.json"]
    assert "damaged" in reasons["damaged.json"] and "damaged" in reasons["no-threshold.json"]
    assert (
        "other features" in reasons["short.json"] and "other features" in reasons["renamed.json"]
    )


def test_training_learns_from_labelled_summaries_and_is_scored_domain_held_out() -> None:
    """Two made-up domains: sentences copied from the source are consistent, the same with an
    added negation or "only" are not. A head trained on one domain judges the other."""
    from services.evaluation import consistency_head
    from services.evaluation.faithfulness import FaithfulnessExample

    rows = []
    for domain, document in (("transport", ENGLISH_ARTICLE), ("more", ENGLISH_ARTICLE * 2)):
        for n, sentence in enumerate(prepare_text(document, "en").sentences[:12]):
            edited = sentence.replace(" will ", " will not ").replace(" the ", " only the ", 1)
            rows.append(FaithfulnessExample(f"{domain}{n}", domain, document, sentence, 1))
            if edited != sentence:
                rows.append(FaithfulnessExample(f"{domain}{n}x", domain, document, edited, 0))
    described = consistency_head.describe(rows)
    report = consistency_head.cross_validate(described)
    assert set(report["balanced_accuracy"]) == {"overall", "transport", "more"}
    assert report["balanced_accuracy"]["overall"] >= 90, report
    head = consistency_head.train(described, "made-up")
    assert head.about["data"] == "made-up" and head.about["rows"] == len(rows)
    assert all(w >= 0 for f, w in zip(head.features, head.weights, strict=True) if "new" in f)
    assert head.doubted_sentence([NEGATED], SOURCE, "en") == 0
    assert head.doubted_sentence([SOURCE[2]], SOURCE, "en") is None


@pytest.mark.skipif(not SHARED_FAITHFULNESS.exists(), reason="../shared/data/faithfulness absent")
def test_eval_grounding_cross_validates_the_learned_check_above_the_rules() -> None:
    """``condensa eval grounding --cross-validate``: each shared domain judged by a head trained
    on the others beats the alignment rules alone on it."""
    import json
    import subprocess
    import sys

    def run(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bot",
                "eval",
                "grounding",
                "--data",
                str(SHARED_FAITHFULNESS),
                "--json",
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        return json.loads(done.stdout)

    learned, rules = run("--cross-validate"), run("--checker", "offline")
    assert learned["checker"] == "learned (domain-held-out)" and rules["checker"] == "offline"
    for domain, value in learned["balanced_accuracy"].items():
        assert value >= 55 and value > rules["balanced_accuracy"][domain], (domain, learned, rules)
