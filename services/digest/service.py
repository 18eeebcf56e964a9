"""Digests of group conversations: a narrative (TL;DR and per-topic sentences with their
sources), keyphrases with counts, topics with their people and quotes, and a word cloud."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from services.core.errors import EmptyInput, ModelUnavailable
from services.core.executor import ModelExecutor
from services.core.protocols import EmbeddingBackend
from services.core.types import CatchUp, ChatDigest, ChatMessage, Length, Member, Topic
from services.digest.catchup import catch_up
from services.digest.narrative import Scorer, Writer, build_narrative
from services.digest.phrases import MergedPhrases, calendar_words, specificity
from services.digest.topics import find_topics
from services.digest.wordcloud import render_word_cloud
from services.embeddings.cache import EmbeddingCache, embedding_cache
from services.grounding.align import GroundingMode
from services.keywords.candidates import prior_weight
from services.summarize.rankers.centrality import mmr_select
from services.text.language import detect_language
from services.text.lexicon import keyword_stop_words
from services.text.splitting import clean_text

logger = logging.getLogger(__name__)
MIN_MESSAGES = 3
MIN_TOPIC_MESSAGES = 12
"""Fewer messages are one conversation: topics of a handful of lines are noise."""
_LANGUAGE_SAMPLE_CHARS = 20_000
_WARM_UP_CHATS = {
    "en": (
        "The council meets on Monday to vote on the new tram line.",
        "Will the tram line go through the old town or along the river?",
        "Along the river, the plan says, with six new stops.",
        "The budget for the tram is forty million euros.",
        "Shops in the old town worry about the building works.",
        "The works should take two years and start in spring.",
    ),
    "es": (
        "El ayuntamiento vota el lunes la nueva línea de tranvía.",
        "¿El tranvía pasará por el casco antiguo o junto al río?",
        "Junto al río, según el plan, con seis paradas nuevas.",
        "El presupuesto del tranvía es de cuarenta millones de euros.",
        "Las tiendas del casco antiguo temen las obras.",
        "Las obras durarán dos años y empezarán en primavera.",
    ),
}


class DigestService:
    """The :class:`services.core.protocols.DigestMaker`: KeyBERT-style phrases over a whole window.

    Every message contributes each 1–3-gram of its content-word runs once; the most frequent
    candidates are embedded (cached across digests); the window's centre is their
    frequency-weighted mean; phrases are ranked by closeness to it times log frequency and
    diversified by MMR. This embeds a few hundred phrases instead of every message, which
    keeps a 10,000-message digest within seconds on two cores.

    Args:
        executor: the bounded executor the work runs in.
        backends: the embedding backend for a language (the keyword extractor's choice).
        cache: phrase embeddings shared with the keyword extractor (a fresh one when None).
        top_n: keyphrases per digest.
        max_candidates: phrases embedded per digest.
        topic_method: "nmf" or "lda" (:mod:`services.digest.topics`).
        diversity: MMR diversity of the keyphrases.
        scorer: scores the narrative's candidate sentences (the learned extractive ranker's
            scores in production; content-word counts when None).
        writer: an LLM that writes the narrative instead of quoting it (grounded after).
        grounding: what happens to a written sentence the messages do not support.
        writer_name: the model named under a written narrative.
    """

    def __init__(
        self,
        executor: ModelExecutor,
        backends: Callable[[str], EmbeddingBackend],
        cache: EmbeddingCache | None = None,
        top_n: int = 10,
        max_candidates: int = 300,
        topic_method: str = "nmf",
        diversity: float = 0.3,
        scorer: Scorer | None = None,
        writer: Writer | None = None,
        grounding: GroundingMode = GroundingMode.MARK,
        writer_name: str = "llm",
    ) -> None:
        self._executor = executor
        self._backends = backends
        self._cache = cache if cache is not None else embedding_cache()
        self._top_n = top_n
        self._max_candidates = max_candidates
        self._topic_method = topic_method
        self._diversity = diversity
        self._scorer = scorer
        self._writer = writer
        self._grounding = grounding
        self._writer_name = writer_name

    async def catch_up(
        self,
        window: list[ChatMessage],
        member: Member,
        authors: dict[int, int] | None = None,
        language: str = "",
    ) -> CatchUp:
        """A member's catch-up (:mod:`services.digest.catchup`), the rest told by this
        service's narrative."""
        return await catch_up(window, member, self, authors, language)

    async def digest(self, messages: list[ChatMessage], language: str = "") -> ChatDigest:
        """Digest ``messages`` (oldest first); raise ``EmptyInput`` when there is too little."""
        return await self._executor.run(self.digest_sync, messages, language)

    async def word_cloud(self, digest: ChatDigest) -> bytes:
        """A PNG of the digest's keyphrases sized by how often they came up."""
        return await self._executor.run(render_word_cloud, dict(digest.keyphrases))

    def warm_up(self) -> None:
        """Digest a small English and Spanish chat and draw its word cloud (blocking): the topic
        model, calendar words, embeddings and fonts the first digest would load are loaded at
        start-up, before the start-up objects are frozen out of garbage collection."""
        for language, lines in _WARM_UP_CHATS.items():
            messages = [
                ChatMessage(0, number + 1, number % 3 + 1, f"User{number % 3}", 60 * number, text)
                for number, text in enumerate(lines * 2)
            ]
            digest = self.digest_sync(messages, language, write=False)
            render_word_cloud(dict(digest.keyphrases) or {language: 1})

    def digest_sync(
        self,
        messages: list[ChatMessage],
        language: str = "",
        length: Length = Length.MEDIUM,
        write: bool = True,
    ) -> ChatDigest:
        """:meth:`digest` on the calling thread (``write``: let the writer, if any, write the
        narrative; otherwise it is extractive)."""
        kept = [(m, clean_text(m.text)) for m in messages]
        kept = [(m, text) for m, text in kept if text.strip()]
        if len(kept) < MIN_MESSAGES:
            raise EmptyInput("too few messages")
        texts = [text for _, text in kept]
        window = [m for m, _ in kept]
        lang = language or detect_language(_language_sample(texts))
        stop_words = keyword_stop_words(lang)
        keyphrases = self._keyphrases(MergedPhrases(texts, stop_words, lang), lang)
        found = (
            # Days and months are when things happen, not what they are about.
            find_topics(texts, stop_words | calendar_words(lang), self._topic_method)
            if len(texts) >= MIN_TOPIC_MESSAGES
            else []
        )
        writer = self._writer if write else None
        embed = None
        if writer is not None:
            try:
                embed = self._backends(lang).embed
            except ModelUnavailable as error:
                logger.warning("grounding the digest without embeddings: %s", error)
        story = build_narrative(
            window,
            found,
            lang,
            self._scorer,
            writer,
            self._grounding,
            embed,
            length,
            self._writer_name,
        )
        topics = [
            Topic(
                topic.words,
                len(topic.members),
                window[topic.representative] if topic.representative is not None else None,
                sentences,
                people,
            )
            for topic, sentences, people in zip(found, story.topics, story.people, strict=True)
        ]
        return ChatDigest(
            language=lang,
            message_count=len(window),
            participants=len({m.user_id or m.author for m in window}),
            first_date=min(m.date for m in window),
            last_date=max(m.date for m in window),
            keyphrases=keyphrases,
            topics=topics,
            tldr=story.tldr,
            written_by=story.written_by,
        )

    def _keyphrases(self, phrases: MergedPhrases, language: str) -> list[tuple[str, int]]:
        frequency = {p: n for p, n in phrases.counts.items() if specificity(p, language) > 0}
        repeated = {p: n for p, n in frequency.items() if n >= 2} or frequency
        repeated = drop_enclosed(repeated)
        weight = {
            p: prior_weight(p, n) * (0.5 + specificity(p, language)) for p, n in repeated.items()
        }
        pool = sorted(repeated, key=lambda p: (-weight[p], p))[: self._max_candidates]
        if not pool:
            return []
        vectors = self._cache.embed_phrases(self._backends(language), pool)
        counts = np.array([repeated[p] for p in pool], dtype=np.float64)
        centre = (vectors * counts[:, None]).sum(axis=0)
        centre /= np.linalg.norm(centre) or 1.0
        relevance = vectors @ centre
        specific = np.array([specificity(p, language) for p in pool])
        scores = np.clip(relevance, 0.0, None) * np.log1p(counts) * (0.5 + 0.5 * specific)
        similarity = vectors @ vectors.T
        ranked = mmr_select(scores, similarity, min(len(pool), 3 * self._top_n), self._diversity)
        chosen: list[int] = []
        for index in ranked:
            # One entry per stem: "tram" and "tram plan" would read as the same thing twice.
            if all(not (phrases.stems[pool[index]] & phrases.stems[pool[c]]) for c in chosen):
                chosen.append(index)
            if len(chosen) == self._top_n:
                break
        chosen.sort(key=lambda i: (-scores[i], i))
        return [(pool[i], int(counts[i])) for i in chosen]


def drop_enclosed(frequency: dict[str, int], share: float = 0.7) -> dict[str, int]:
    """Drop phrases that mostly occur inside a longer candidate: "sicilian" and "defence"
    when nearly every message with them says "sicilian defence"."""
    longer = [p for p in frequency if " " in p]
    enclosed: set[str] = set()
    for phrase in longer:
        words = phrase.split()
        parts = {
            " ".join(words[i : i + size])
            for size in range(1, len(words))
            for i in range(len(words) - size + 1)
        }
        for part in parts:
            count = frequency.get(part)
            if count and frequency[phrase] >= share * count:
                enclosed.add(part)
    return {p: n for p, n in frequency.items() if p not in enclosed}


def _language_sample(texts: list[str]) -> str:
    sample: list[str] = []
    size = 0
    step = max(1, math.ceil(len(texts) / 400))
    for text in texts[::step]:
        sample.append(text)
        size += len(text)
        if size > _LANGUAGE_SAMPLE_CHARS:
            break
    return "\n".join(sample)
