"""Grounded written summaries: alignment with source sentences, unsupported details marked or
dropped, numbered sources in the reply, and the faithfulness figure of ``eval summary``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
