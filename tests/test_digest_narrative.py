"""The digest's narrative, merged key phrases, word budgets and /ask's retrieval (real MiniLM)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from services.core.executor import ModelExecutor
from services.core.types import ChatMessage, Length, SummaryOptions
from services.digest.ask import HistorySearchService
from services.digest.narrative import conversation_units
from services.digest.phrases import MergedPhrases, calendar_words, specificity
from services.digest.service import DigestService
from services.grounding.align import GroundingMode
from services.keywords.extractor import KeyBERTExtractor
from services.summarize.budget import pick_within_budget, word_budget
from services.summarize.learned.ranker import LearnedRanker, ShippedHeads
from services.summarize.service import build_summary_service
from services.text.lexicon import keyword_stop_words, stemmer
from services.text.splitting import tokenize_words
from tests.chat_samples import ALLOTMENT, alternating, two_topic_chat

CHATTER = ("hi all!", "ok thanks", "lol", "yes", "good morning everyone")
TRAMS = (
    "The tram plan for the city centre was approved on Thursday.",
    "Trams will run every six minutes once the new line opens.",
    "I read the tram plan, the depot moves next to the river.",
    "Will the trams stop at the university campus?",
    "The tram plan says the campus stop opens in March.",
    "Bring your questions about the trams to the council meeting on Thursday.",
    "The council meeting about the tram plan is in the town hall.",
    "New trams are quieter than the old buses on this street.",
)


def chat(lines: Sequence[tuple[str, str]], chat_id: int = -100123) -> list[ChatMessage]:
    return [
        ChatMessage(chat_id, number, 0, author, 1_700_000_000 + 60 * number, text)
        for number, (author, text) in enumerate(lines, start=1)
    ]


def with_chatter(count: int = 60) -> list[ChatMessage]:
    lines = two_topic_chat(count)
    chatty = itertools.cycle(CHATTER)
    mixed: list[tuple[str, str]] = []
    for number, line in enumerate(lines):
        mixed.append(line)
        if number % 4 == 0:
            mixed.append(("Bob", next(chatty)))
    return chat(mixed)


@pytest.fixture(scope="module")
def digests() -> DigestService:
    executor = ModelExecutor(1, 8)
    keywords = KeyBERTExtractor(executor)
    return DigestService(
        executor, keywords.backend, keywords.cache, scorer=LearnedRanker(ShippedHeads()).scores
    )


def test_word_budgets_grow_slowly_with_the_conversation() -> None:
    assert 20 <= word_budget(100) <= 30
    assert 100 <= word_budget(9000) <= 160
    assert word_budget(1000, Length.SHORT) < word_budget(1000) < word_budget(1000, Length.LONG)


def test_picks_fit_the_budget_skip_repeats_and_never_come_back_empty() -> None:
    words = [["a"] * 10, ["b"] * 4, ["a"] * 10, ["c"] * 30, ["d"] * 5]
    scores = [0.9, 0.5, 0.8, 0.95, 0.4]
    # The best (30 words) is over the budget alone: it is still taken when nothing else is.
    assert pick_within_budget(scores, words, 12) == [3]
    assert pick_within_budget(scores, words, 12, overflow=False) == [0]
    # Index 2 repeats index 0's trigrams; 1 and 4 fill what is left.
    assert pick_within_budget(scores, words, 20, allowed=[True, True, True, False, True]) == [
        0,
        1,
        4,
    ]
    assert pick_within_budget(scores, words, 100, chosen=[3], most=1) == [0]


def test_units_carry_their_author_and_chatter_is_not_informative() -> None:
    messages = chat(
        [("Ana", "Hi all! The tomato plants need water every morning."), ("Bob", "ok")]
    )
    units = conversation_units(messages, "en")
    assert units.prepared.sentences[0].startswith("Ana: ")
    assert units.owners == [0, 0, 1]
    assert units.informative == [False, True, False]


def test_the_narrative_has_a_tldr_and_sentences_per_topic_from_real_messages(
    digests: DigestService,
) -> None:
    messages = with_chatter()
    digest = digests.digest_sync(messages)
    assert digest.tldr
    assert len(digest.topics) >= 2
    chatter = set(CHATTER)
    total_words = sum(len(tokenize_words(m.text)) for m in messages)
    for topic in digest.topics:
        assert 1 <= len(topic.sentences) <= 3
        assert topic.people and set(topic.people) <= {"Ana", "Bob", "Carla"}
    narrative = digest.narrative()
    for sentence in narrative:
        (source,) = sentence.sources
        assert sentence.text in source.text and source in messages
        assert source.text not in chatter
        assert not sentence.flagged
        assert sentence.plain() == f"{source.author}: {sentence.text}"
    assert len({s.text for s in narrative}) == len(narrative)
    longest = max(len(tokenize_words(m.text)) for m in messages)
    spoken = sum(len(tokenize_words(s.plain())) for s in narrative)
    assert spoken <= word_budget(total_words) + len(digest.topics) * longest
    topic_words = {w for topic in digest.topics for w in topic.words}
    assert {"chess", "tomato"} & topic_words


def test_key_phrases_merge_inflections_and_drop_generic_words(digests: DigestService) -> None:
    messages = chat([(("Ana", "Bob", "Carla")[i % 3], text) for i, text in enumerate(TRAMS * 2)])
    digest = digests.digest_sync(messages)
    phrases = [p for p, _ in digest.keyphrases]
    stem = stemmer("en")
    stems = [{stem(w) for w in p.split()} for p in phrases]
    for a, b in itertools.combinations(range(len(phrases)), 2):
        assert not stems[a] & stems[b], (phrases[a], phrases[b])
    assert sum("tram" in p for p in phrases) == 1
    assert "thursday" not in phrases and "bring" not in phrases
    merged = MergedPhrases([m.text for m in messages], keyword_stop_words("en"), "en")
    (tram,) = [p for p, stems in merged.stems.items() if stems == {"tram"}]
    assert tram == "tram"  # "tram" and "trams" are equally common: the shorter is shown
    assert merged.counts[tram] == sum("tram" in m.text.lower() for m in messages)


def test_generic_words_by_language() -> None:
    assert {"thursday", "jueves", "march"} <= calendar_words("en") | calendar_words("es")
    assert "lunes" in calendar_words("es")
    assert specificity("tram", "en") == 1.0
    assert specificity("people", "en") == 0.0 and specificity("gente", "es") == 0.0
    assert 0 < specificity("bring", "en") < specificity("tranvía", "es")
    assert specificity("tram plan", "en") == 1.0


class QuotingWriter:
    """A writer that repeats one message and invents one claim, like a careless model."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def summarize(self, sentences: Sequence[str], language: str, length: Length) -> list[str]:
        self.seen.append(list(sentences))
        first = sentences[0].split(": ", 1)[-1]
        return [first, "The mayor of Paris cancelled everything on 12 May 1999."]


@pytest.mark.parametrize("mode", [GroundingMode.MARK, GroundingMode.DROP])
def test_a_written_narrative_links_its_sources_and_flags_inventions(mode: GroundingMode) -> None:
    executor = ModelExecutor(1, 4)
    keywords = KeyBERTExtractor(executor)
    writer = QuotingWriter()
    service = DigestService(
        executor, keywords.backend, keywords.cache, writer=writer, grounding=mode, writer_name="m"
    )
    messages = with_chatter()
    digest = service.digest_sync(messages)
    assert digest.written_by == "m" and writer.seen
    assert all(line.split(": ", 1)[0] in {"Ana", "Bob", "Carla"} for line in writer.seen[0][:3])
    narrative = digest.narrative()
    supported = [s for s in narrative if not s.flagged]
    assert supported and all(s.sources and s.sources[0] in messages for s in supported)
    invented = [s for s in narrative if "Paris" in s.text]
    if mode == GroundingMode.DROP:
        assert not invented
    else:
        assert invented and all(s.flagged for s in invented)


def test_the_digest_warm_up_loads_its_models_without_asking_the_writer() -> None:
    """Start-up digests a small chat in each language (so the first real digest loads nothing
    after the start-up objects are frozen) and never spends a model-server call on it."""
    import sys

    executor = ModelExecutor(1, 4)
    keywords = KeyBERTExtractor(executor)
    writer = QuotingWriter()
    service = DigestService(executor, keywords.backend, keywords.cache, writer=writer)
    service.warm_up()
    assert writer.seen == []
    assert {"sklearn.decomposition", "wordcloud"} <= set(sys.modules)
    assert service.digest_sync(with_chatter()).written_by == "llm" and writer.seen


def test_ask_finds_the_messages_about_a_question_or_says_nothing() -> None:
    executor = ModelExecutor(1, 4)
    keywords = KeyBERTExtractor(executor)
    search = HistorySearchService(executor, keywords.backend)
    messages = with_chatter()
    answer = search.ask_sync("When does the chess tournament start?", messages)
    assert answer.messages and answer.sentences
    assert "Friday" in answer.messages[0].text and "tournament" in answer.messages[0].text
    assert all(s.sources[0] in messages and s.text == s.sources[0].text for s in answer.sentences)
    dates = [s.sources[0].date for s in answer.sentences]
    assert dates == sorted(dates)
    assert search.ask_sync("compost?", messages).messages[0].text.lower().count("compost")
    nothing = search.ask_sync("What is the capital of Mongolia?", messages)
    assert nothing.messages == [] and nothing.sentences == []
    assert search.ask_sync("   ", messages).sentences == []


async def test_a_forwarded_conversation_summary_is_budgeted_in_words() -> None:
    service = build_summary_service(ModelExecutor(1, 4), 100_000, "lexrank")
    lines = [f"{a}: {t}" for a, t in two_topic_chat(40)]
    text = "\n".join(lines)
    summary = await service.summarize(text, SummaryOptions(method="lexrank"))
    words = sum(len(tokenize_words(s)) for s in summary.sentences)
    total = sum(len(tokenize_words(line)) for line in lines)
    assert words <= 1.3 * word_budget(total) + max(len(tokenize_words(x)) for x in lines)
    exact = await service.summarize(text, SummaryOptions(method="lexrank", sentences=5))
    assert len(exact.sentences) == 5


def test_the_command_line_digests_a_jsonl_conversation(tmp_path: Path) -> None:
    conversation = tmp_path / "chat.jsonl"
    conversation.write_text(
        "".join(json.dumps({"author": a, "text": t}) + "\n" for a, t in two_topic_chat(30)),
        "utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot", "digest", str(conversation)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Digest: 30 messages from 3 people" in done.stdout
    assert "In short:" in done.stdout and "(#" in done.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"author": "Ana"}\n', "utf-8")
    refused = subprocess.run(
        [sys.executable, "-m", "bot", "digest", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "bad.jsonl:1" in refused.stderr


def test_eval_digest_scores_the_narrative_beside_both_baselines(tmp_path: Path) -> None:
    data = tmp_path / "conversations.jsonl"
    rows = [
        {
            "id": f"c{n}",
            "messages": [{"author": a, "text": t} for a, t in two_topic_chat(12 + n)],
            "summary": "They talk about the chess tournament and the tomato plants.",
        }
        for n in range(3)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    out = tmp_path / "predictions.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "eval",
            "digest",
            "--data",
            str(data),
            "--json",
            "--predictions-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["conversations"] == 3 and report["refused"] == 0
    assert set(report["systems"]) == {"narrative", "lead-3", "longest-3"}
    for system in report["systems"].values():
        assert set(system) == {"rouge1", "rouge2", "rougeLsum"}
        assert 0 < system["rouge1"]["mean"] <= 100
    predictions = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [p["id"] for p in predictions] == ["c0", "c1", "c2"]
    assert all(p["prediction"] for p in predictions)
    assert np.isfinite(report["systems"]["narrative"]["rougeLsum"]["mean"])


def test_reactions_replies_and_pins_move_a_message_up_the_digest(digests: DigestService) -> None:
    """The same conversation twice: a message the digest leaves out is in it once the group
    reacted to it; a reply tree and a pin lift a message as well."""
    from dataclasses import replace

    from services.digest.narrative import signal_strength

    messages = chat([*alternating(TRAMS, ALLOTMENT), ("Bob", "ok thanks")])
    quoted = {s.sources[0].message_id for s in digests.digest_sync(messages).narrative()}
    left_out = [m for m in messages if m.message_id not in quoted and m.text not in CHATTER]
    assert left_out, "the digest quotes every substantial message: nothing to lift"
    for signals in ({"reactions": 12}, {"pinned": True, "reactions": 6}):
        lifted = [replace(m, **signals) if m is left_out[0] else m for m in messages]  # type: ignore[arg-type]
        chosen = {s.sources[0].message_id for s in digests.digest_sync(lifted).narrative()}
        assert left_out[0].message_id in chosen, signals

    tree = chat([("Ana", "Root question?"), ("Bob", "a"), ("Carla", "b"), ("Ana", "c")])
    tree = [
        tree[0],
        replace(tree[1], reply_to=1),
        replace(tree[2], reply_to=2),
        replace(tree[3], shared_document=True),
    ]
    strength = signal_strength(tree)
    assert strength[0] == pytest.approx(np.log1p(2)) and strength[1] == pytest.approx(np.log1p(1))
    assert strength[2] == 0 and strength[3] == pytest.approx(np.log1p(3)), "a shared document"


async def test_eval_catchup_lists_every_reply_to_a_random_member(digests: DigestService) -> None:
    """``condensa eval digest --catchup``: each conversation as a group where every turn
    answers the one before, a member chosen at random; the catch-up lists every reply to them
    and is shorter than what the others wrote."""
    import random

    from services.digest.catchup import catch_up
    from services.evaluation.data import ConversationExample
    from services.evaluation.digests import as_member_chat, evaluate_catchups

    examples = [ConversationExample(str(n), two_topic_chat(14 + n), "", "en") for n in range(6)]
    messages, member, left = as_member_chat(examples[0], random.Random(3))
    assert messages[left].user_id == member.user_id and left < len(messages) - 1
    assert all(m.reply_to == m.message_id - 1 for m in messages[1:]), "three people take turns"
    report = await evaluate_catchups(digests, examples, catch_up, seed=3)
    assert report["conversations"] == 6 and report["replies_to_member"] >= 6
    assert report["complete_share"] == 100.0
    assert 0 < report["catchup_words_mean"] < report["window_words_mean"]
