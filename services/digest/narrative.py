"""What a conversation was about, in sentences: the digest's TL;DR and each topic's lines.

The units are the messages' sentences, the first of each message prefixed with its author
("Ana: we move it to Thursday"), the form the conversation heads of the learned extractive
ranker were trained on. A scorer (by default that ranker) scores every unit; greetings and
one-word replies are never picked; the whole narrative fits a word budget that grows with the
conversation (``services.summarize.budget``). Each topic first gets its best unit, then the
best remaining units fill the budget, at most three per topic; the TL;DR is the best unit
overall plus whatever belongs to no topic.

With a writer (an LLM behind a model server), each block is written instead from its best
units, then grounded: every written sentence links to the messages that support it, and one
they do not support is flagged (or dropped, as the summary grounding setting says).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from services.core.errors import ModelUnavailable
from services.core.types import ChatMessage, DigestSentence, Length
from services.digest.topics import FoundTopic, content_tokens
from services.grounding.align import GroundingMode, ground
from services.summarize.budget import pick_within_budget, word_budget
from services.summarize.prepared import PreparedText
from services.text.lexicon import keyword_stop_words
from services.text.splitting import clean_text, split_sentences, tokenize_words

logger = logging.getLogger(__name__)

MIN_CONTENT_WORDS = 3
"""A unit with fewer content words ("ok thanks", "hi all!") is never part of the narrative."""
MAX_UNIT_WORDS = 60
"""A longer "sentence" (a pasted article, a wall of text) is not a line a digest can quote."""
MAX_PER_TOPIC = 3
SIGNAL_WEIGHT = 1.0
"""How far the group's own signals lift a message: this many standard deviations of the
scores per unit of ``log1p(reactions) + log1p(replies below it) + pinned·log1p(3)``. Two
reactions lift a message by about one standard deviation, ten by two and a half: a message
most of a small group reacted to is in the digest. A pin counts as three reactions. No public
conversation set carries reactions or reply trees; with simulated reactions
(``bench/digest_signals.py``) a larger weight gains more from reactions that track importance
and loses more to noise, and 1 keeps most of the gain for little loss."""
PIN_WORTH = 3
"""Reactions a pin (or a document forwarded into the group) counts as."""
MAX_SCORED = 200
"""Units the learned scorer reads at most (the most substantial ones) in a long window."""
WRITER_CONTEXT = 40
"""Units a writer reads per block, best first (then put back in conversation order)."""

Scorer = Callable[[PreparedText], np.ndarray]


class Writer(Protocol):
    """A model that writes narrative sentences (the LLM summarizer)."""

    def summarize(self, sentences: Sequence[str], language: str, length: Length) -> list[str]:
        """Sentences summarizing ``sentences`` (blocking); raises ``ModelUnavailable``."""
        ...


@dataclass(frozen=True)
class Units:
    """A conversation split into scoreable units."""

    prepared: PreparedText
    owners: list[int]
    """Which message each unit comes from (an index into the window)."""
    informative: list[bool]


def conversation_units(messages: Sequence[ChatMessage], language: str) -> Units:
    """Split each message into sentences; the first carries its author's name."""
    stop_words = keyword_stop_words(language)
    sentences: list[str] = []
    owners: list[int] = []
    informative: list[bool] = []
    for index, message in enumerate(messages):
        parts = [s for s in split_sentences(clean_text(message.text), language) if s.strip()]
        for number, part in enumerate(parts):
            if not tokenize_words(part):
                continue
            author = message.author.strip()
            sentences.append(f"{author}: {part}" if number == 0 and author else part)
            owners.append(index)
            informative.append(
                len(content_tokens(part, stop_words)) >= MIN_CONTENT_WORDS
                and len(tokenize_words(part)) <= MAX_UNIT_WORDS
            )
    words = [tokenize_words(s) for s in sentences]
    prepared = PreparedText(language, sentences, words, sum(len(s) for s in sentences))
    return Units(prepared, owners, informative)


def fallback_scores(units: Units) -> np.ndarray:
    """Without a learned scorer: content words, so that substance beats chatter."""
    stop_words = keyword_stop_words(units.prepared.language)
    return np.array(
        [np.log1p(len(content_tokens(s, stop_words))) for s in units.prepared.sentences]
    )


@dataclass(frozen=True)
class Narrative:
    """The TL;DR and, per topic (same order as given), its sentences and people."""

    tldr: list[DigestSentence]
    topics: list[list[DigestSentence]]
    people: list[list[str]]
    written_by: str = ""


def build_narrative(
    messages: Sequence[ChatMessage],
    topics: Sequence[FoundTopic],
    language: str,
    scorer: Scorer | None = None,
    writer: Writer | None = None,
    grounding: GroundingMode = GroundingMode.MARK,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    length: Length = Length.MEDIUM,
    writer_name: str = "llm",
) -> Narrative:
    """The narrative of ``messages`` (oldest first) with ``topics`` found over them.

    Args:
        messages: the window.
        topics: its topics (member indices into ``messages``).
        language: the window's language.
        scorer: unit scores (the learned ranker's); content-word counts when None or failing.
        writer: writes each block instead of quoting it (grounded afterwards).
        writer_name: what the digest says wrote it.
        grounding: what happens to a written sentence the messages do not support.
        embed: the sentence encoder grounding may use.
        length: scales the word budget.
    """
    units = conversation_units(messages, language)
    people = [_people(messages, topic.members) for topic in topics]
    if not units.prepared.sentences:
        return Narrative([], [[] for _ in topics], people)
    scores = _scores(units, scorer)
    scores = scores + signal_lift(messages, units.owners, scores)
    words = units.prepared.words
    allowed = units.informative if any(units.informative) else [True] * len(words)
    total_words = sum(len(tokenize_words(m.text)) for m in messages)
    budget = word_budget(total_words, length)
    topic_of = {member: number for number, topic in enumerate(topics) for member in topic.members}
    unit_topic = [topic_of.get(owner, -1) for owner in units.owners]

    chosen: list[int] = []
    for number in range(len(topics)):
        # Every topic's best sentence, even one sharing a phrase with another topic's.
        in_topic = [a and t == number for a, t in zip(allowed, unit_topic, strict=True)]
        chosen += pick_within_budget(scores, words, 0, in_topic, chosen, most=1, block=False)
    spent = sum(len(words[i]) for i in chosen)
    more = pick_within_budget(scores, words, budget - spent, allowed, chosen, overflow=not chosen)
    per_topic = Counter(unit_topic[i] for i in chosen)
    for index in sorted(more, key=lambda i: -scores[i]):
        topic = unit_topic[index]
        if topic < 0 or per_topic[topic] < MAX_PER_TOPIC:
            chosen.append(index)
            per_topic[topic] += 1
    if not chosen:
        return Narrative([], [[] for _ in topics], people)
    # The TL;DR leads with the best sentence that its topic can spare: one outside any topic,
    # one from a topic with more, or one whose topic has another to take its place.
    lead = -1
    for index in sorted(chosen, key=lambda i: (-scores[i], i)):
        topic = unit_topic[index]
        if topic < 0 or per_topic[topic] > 1:
            lead = index
            break
        in_topic = [a and t == topic for a, t in zip(allowed, unit_topic, strict=True)]
        stand_in = pick_within_budget(scores, words, 0, in_topic, chosen, most=1, block=False)
        if stand_in:
            chosen += stand_in
            lead = index
            break
    if lead < 0:  # every topic has exactly its one sentence: the TL;DR repeats none of them
        lead = max(chosen, key=lambda i: (scores[i], -i))
    blocks: list[list[int]] = [[] for _ in range(len(topics) + 1)]
    for index in sorted(chosen):
        block = 0 if index == lead or unit_topic[index] < 0 else unit_topic[index] + 1
        blocks[block].append(index)
    if writer is not None:
        try:
            written = _written(
                writer, units, scores, blocks, unit_topic, messages, grounding, embed
            )
            return Narrative(written[0], written[1:], people, writer_name)
        except ModelUnavailable as error:
            logger.warning("digest narrative quoted instead of written: %s", error)
    quoted = [[_quoted(units, i, messages) for i in block] for block in blocks]
    return Narrative(quoted[0], quoted[1:], people)


def signal_strength(messages: Sequence[ChatMessage]) -> np.ndarray:
    """What the group made of each message: ``log1p`` of its reactions, of the replies below
    it in the window (the whole reply tree, not only direct replies), and a pin or a document
    forwarded in (each worth :data:`PIN_WORTH` reactions)."""
    index_of = {m.message_id: i for i, m in enumerate(messages)}
    below = [0] * len(messages)
    for message in messages:
        seen: set[int] = set()
        parent = index_of.get(message.reply_to) if message.reply_to else None
        while parent is not None and parent not in seen:  # every ancestor counts the reply
            seen.add(parent)
            below[parent] += 1
            up = messages[parent].reply_to
            parent = index_of.get(up) if up else None
    return np.array(
        [
            np.log1p(max(0, m.reactions))
            + np.log1p(below[i])
            + (m.pinned + m.shared_document) * np.log1p(PIN_WORTH)
            for i, m in enumerate(messages)
        ],
        dtype=np.float64,
    )


def signal_lift(
    messages: Sequence[ChatMessage], owners: Sequence[int], scores: np.ndarray
) -> np.ndarray:
    """How much each unit's score rises for its message's signals (zero without any)."""
    strength = signal_strength(messages)
    if not len(owners) or not strength.any():
        return np.zeros(len(owners))
    spread = float(np.std(scores)) or 1.0
    return np.asarray(SIGNAL_WEIGHT * spread * strength[list(owners)])


def _scores(units: Units, scorer: Scorer | None) -> np.ndarray:
    """The scorer's scores; in a long window only the :data:`MAX_SCORED` units with the most
    content words are scored (the encoder would otherwise read every message), the rest rank
    below them."""
    cheap = fallback_scores(units)
    if scorer is None:
        return cheap
    total = len(units.prepared.sentences)
    keep = sorted(np.argsort(-cheap, kind="stable")[:MAX_SCORED]) if total > MAX_SCORED else None
    prepared = units.prepared
    if keep is not None:
        prepared = PreparedText(
            prepared.language,
            [prepared.sentences[i] for i in keep],
            [prepared.words[i] for i in keep],
            prepared.chars,
        )
    try:
        scored = np.asarray(scorer(prepared), dtype=np.float64)
    except ModelUnavailable as error:
        logger.warning("digest narrative without the learned scorer: %s", error)
        return cheap
    if scored.shape != (len(prepared.sentences),):
        return cheap
    if keep is None:
        return scored
    # Unscored units rank below every scored one, among themselves by content words.
    scores: np.ndarray = cheap + (scored.min() - 1.0 - cheap.max())
    scores[keep] = scored
    return scores


def _quoted(units: Units, index: int, messages: Sequence[ChatMessage]) -> DigestSentence:
    message = messages[units.owners[index]]
    text = units.prepared.sentences[index]
    prefix = f"{message.author.strip()}: "
    return DigestSentence(text.removeprefix(prefix) if message.author.strip() else text, [message])


def _people(messages: Sequence[ChatMessage], members: Sequence[int], most: int = 4) -> list[str]:
    counts = Counter(messages[i].author for i in members if messages[i].author)
    return [name for name, _ in counts.most_common(most)]


def _written(
    writer: Writer,
    units: Units,
    scores: np.ndarray,
    blocks: list[list[int]],
    unit_topic: list[int],
    messages: Sequence[ChatMessage],
    grounding: GroundingMode,
    embed: Callable[[list[str]], np.ndarray] | None,
) -> list[list[DigestSentence]]:
    """Each block written by ``writer`` from its best units, then grounded in them."""
    written: list[list[DigestSentence]] = []
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    for number, block in enumerate(blocks):
        if not block:
            written.append([])
            continue
        topic = number - 1
        pool = [i for i in order if topic < 0 or unit_topic[i] == topic]
        context = sorted(set(pool[:WRITER_CONTEXT]) | set(block))
        source = [units.prepared.sentences[i] for i in context]
        length = Length.SHORT if len(block) <= 2 else Length.MEDIUM
        sentences = writer.summarize(source, units.prepared.language, length)
        grounded = ground(sentences, source, units.prepared.language, embed)
        lines: list[DigestSentence] = []
        for item in grounded:
            if not item.supported and grounding == GroundingMode.DROP:
                continue
            cited = sorted({units.owners[context[s]] for s in item.sources})
            lines.append(
                DigestSentence(
                    item.text,
                    [messages[i] for i in cited],
                    flagged=not item.supported and grounding != GroundingMode.OFF,
                )
            )
        written.append(lines)
    return written
