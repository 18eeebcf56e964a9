"""Against a real model server: llama-cpp-python's OpenAI-compatible server with the shipped
SmolLM2 GGUF, on a free loopback port; /ask, /generate with streamed edits, an ``llm`` summary
with its sources, and /cancel, through the Bot API emulator."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import pytest

from bot.factories import Services
from playground.api import BotAPIEmulator
from services.core.executor import ModelExecutor
from services.core.types import SummaryOptions
from services.llm.engines import GenerationLimits
from services.llm.server import ServerConfig, ServerEngine
from services.llm.service import GenerationService
from services.llm.summarizer import LLMSummarizer
from services.summarize.service import build_summary_service
from tests.conftest import ENGLISH_ARTICLE, BotFactory
from tests.llama_server import MODEL
from tests.llama_server import llama_server as start_llama_server
from tests.test_e2e_chat import UnusedKeywords

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
    if os.environ.get("CI"):
        raise RuntimeError(
            "llama-cpp-python[server] is missing: `make test` builds it (make llama)"
        )
    pytest.skip("llama-cpp-python[server] is not installed (make llama)", allow_module_level=True)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server, until the module's tests are done."""
    with start_llama_server(tmp_path_factory.mktemp("llama") / "server.log") as url:
        yield url


def server_engine(url: str) -> ServerEngine:
    return ServerEngine(ServerConfig(base_url=url, model=MODEL, timeout=60, context_tokens=2048))


def bot_services(url: str) -> Services:
    limits = GenerationLimits(max_new_tokens=48, temperature=0.0, max_prompt_tokens=1024)
    executor = ModelExecutor()
    engine = server_engine(url)
    return Services(
        summarizer=build_summary_service(
            executor, 100_000, "lexrank", llm=LLMSummarizer(engine, limits)
        ),
        keywords=UnusedKeywords(),
        executor=executor,
        generator=GenerationService(engine, ModelExecutor(2, 2), limits),
    )


def texts(emulator: BotAPIEmulator, user_id: int) -> list[dict[str, Any]]:
    return [m for m in emulator.bot_messages(user_id) if "text" in m]


def test_the_server_tokenizer_is_used_for_budgets(llama_server: str) -> None:
    engine = server_engine(llama_server)
    tokens = engine.count_tokens("The city council approved a new plan.")
    assert engine.has_tokenizer, "llama-cpp-python's /extras/tokenize was found"
    assert 5 <= tokens <= 15


async def test_generate_streams_a_draft_and_ask_answers(
    llama_server: str, emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    await make_bot(services=bot_services(llama_server))
    user = emulator.add_user(31, "Lia", "en")
    chat = emulator.private_chat(user)
    await emulator.send_text(chat, user, "/generate Once upon a time, in a small town,")
    final = await emulator.wait_until(
        lambda: [m for m in texts(emulator, 31) if not m["text"].startswith("⏳")], timeout=120
    )
    partial = [c.params["text"] for c in emulator.calls_to("sendMessageDraft")][1:]
    assert partial and partial[0].endswith("▌"), "the draft shows the first words"
    assert len(final[-1]["text"]) > len(partial[0]) - 1, "then the whole answer"
    await emulator.send_text(chat, user, "/ask What is the capital of France?")
    answers = await emulator.wait_until(
        lambda: [m for m in texts(emulator, 31)[1:] if not m["text"].startswith("⏳")],
        timeout=120,
    )
    assert answers[-1]["text"].strip()


async def test_an_llm_summary_from_the_server_cites_its_sources(llama_server: str) -> None:
    services = bot_services(llama_server)
    summary = await services.summarizer.summarize(
        ENGLISH_ARTICLE, SummaryOptions(method="llm", language="en")
    )
    assert summary.method == "llm" and summary.sentences
    assert len(summary.citations) == len(summary.sentences) == len(summary.flagged)
    assert summary.quotes, "at least one written sentence is aligned with the article"
    assert all(q in ENGLISH_ARTICLE for q in summary.quotes)
    assert summary.sentences[-1].rstrip()[-1] in ".!?…\"'”", "ends on a complete sentence"


async def test_cancel_stops_the_server_generation(
    llama_server: str, emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    services = bot_services(llama_server)
    assert services.generator is not None
    services.generator.limits = GenerationLimits(max_new_tokens=400, temperature=0.7)
    await make_bot(services=services)
    user = emulator.add_user(32, "Max", "en")
    chat = emulator.private_chat(user)
    await emulator.send_text(chat, user, "/generate Write a very long story about a dragon:")
    await emulator.wait_until(lambda: len(emulator.calls_to("sendMessageDraft")) > 1, timeout=120)
    await emulator.send_text(chat, user, "/cancel")
    stopped = await emulator.wait_until(
        lambda: [m for m in texts(emulator, 32) if "stopped" in m["text"].lower()], timeout=60
    )
    assert stopped


def test_digest_narrative_and_ask_written_by_the_server_are_grounded(llama_server: str) -> None:
    from services.digest.ask import HistorySearchService
    from services.digest.service import DigestService
    from services.keywords.extractor import KeyBERTExtractor
    from services.llm.summarizer import LLMAnswerer
    from tests.test_digest_narrative import with_chatter

    limits = GenerationLimits(max_new_tokens=60, temperature=0.0, max_prompt_tokens=1024)
    engine = server_engine(llama_server)
    executor = ModelExecutor()
    keywords = KeyBERTExtractor(executor)
    messages = with_chatter(40)
    digests = DigestService(
        executor,
        keywords.backend,
        keywords.cache,
        writer=LLMSummarizer(engine, limits),
        writer_name=MODEL,
    )
    digest = digests.digest_sync(messages)
    assert digest.written_by == MODEL
    narrative = digest.narrative()
    assert narrative
    for sentence in narrative:
        assert sentence.flagged or sentence.sources, sentence
        assert all(source in messages for source in sentence.sources)
    search = HistorySearchService(
        executor, keywords.backend, LLMAnswerer(engine, limits), answerer_name=MODEL
    )
    answer = search.ask_sync("When does the chess tournament start?", messages)
    assert answer.written_by == MODEL and answer.messages
    assert any("tournament" in m.text for m in answer.messages[:3])
    for sentence in answer.sentences:
        assert sentence.flagged or set(sentence.sources) <= set(answer.messages)


def test_the_llm_judge_on_faithfulness_data_is_reported(
    llama_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The judge through the real server, on the first rows of each domain of the shared
    SummEdits part (a few hand-made rows without it): accuracy reported, not asserted."""
    import json
    from pathlib import Path

    from services.evaluation.faithfulness import FaithfulnessExample, evaluate_checker
    from services.grounding.checkers import LLMJudge

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "faithfulness"
    rows: list[FaithfulnessExample] = []
    if (shared / "summedits_dev.jsonl").exists():
        per_domain: dict[str, int] = {}
        for line in (shared / "summedits_dev.jsonl").read_text().splitlines():
            record = json.loads(line)
            if per_domain.get(record["domain"], 0) < 8:
                per_domain[record["domain"]] = per_domain.get(record["domain"], 0) + 1
                rows.append(FaithfulnessExample(**{k: record[k] for k in record}))
    else:
        summary = "The project will cost 450 million euros."
        rows = [
            FaithfulnessExample("a", "news", ENGLISH_ARTICLE, summary, 1),
            FaithfulnessExample("b", "news", ENGLISH_ARTICLE, summary.replace("450", "900"), 0),
        ]
    report = evaluate_checker(LLMJudge(server_engine(llama_server)), rows, len(rows))
    assert report["checker"] == "llm" and 0 <= report["balanced_accuracy"]["overall"] <= 100
    with capsys.disabled():
        print(f"\nLLM judge (SmolLM2-135M via llama.cpp's server): {json.dumps(report)}")
