"""The composition root's factories: every service built from ``Settings`` (models, stores,
readers, limits). ``bot.app`` wires them into the running Application."""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bot.settings import Settings
from handlers import (
    AccessPolicy,
    Limits,
    Quotas,
)
from handlers.access import parse_subjects
from services.core.executor import ModelExecutor
from services.core.protocols import (
    DigestMaker,
    DocumentReader,
    HistorySearch,
    KeywordExtractor,
    Summarizer,
    TextGenerator,
    Transcriber,
)
from services.digest.ask import HistorySearchService
from services.digest.service import DigestService
from services.embeddings.backends import set_minilm_runtime, set_model_threads
from services.embeddings.models import set_derived_models_dir
from services.grounding.align import GroundingMode
from services.ingest.documents import ReaderLimits, SandboxedDocumentReader
from services.ingest.fetch import FetchPolicy
from services.keywords.extractor import KeyBERTExtractor
from services.llm.adapt.serving import AdaptedModels
from services.llm.engines import Engine, GenerationLimits, choose_engine
from services.llm.service import GenerationService
from services.llm.summarizer import LLMAnswerer, LLMSummarizer
from services.speech.service import SpeechService
from services.speech.transcribers import ServerTranscriber, WhisperTranscriber
from services.storage.sql import SQLStore
from services.storage.sqlite import SQLiteStore
from services.summarize.learned.ranker import LearnedModels
from services.summarize.prepared import PreparedText
from services.summarize.seq2seq import GenerationSettings, Seq2SeqSummarizer
from services.summarize.service import build_summary_service

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """The service layer as the bot uses it."""

    summarizer: Summarizer
    keywords: KeywordExtractor
    executor: ModelExecutor | None = None
    generator: TextGenerator | None = None
    generation_executor: ModelExecutor | None = None
    documents: DocumentReader | None = None
    digests: DigestMaker | None = None
    history: HistorySearch | None = None
    speech: SpeechService | None = None

    def warm_up(self) -> None:
        """Load models in the background so first requests are fast (blocking; run off-loop)."""
        started = time.monotonic()
        for service in (self.summarizer, self.keywords, self.digests):
            warm = getattr(service, "warm_up", None)
            if callable(warm):
                try:
                    warm()
                except Exception:  # a missing model is reported when a request needs it
                    logger.warning("warm-up of %s failed", type(service).__name__, exc_info=True)
        # Everything loaded so far lives as long as the process: freezing it keeps the
        # collector from walking it again. A full collection otherwise held the GIL, and with
        # it the event loop, for 130-190 ms during a 10,000-message digest (15 ms frozen).
        gc.collect()
        gc.freeze()
        logger.info(
            "models warm in %.1f s (%d objects frozen)",
            time.monotonic() - started,
            gc.get_freeze_count(),
        )

    def close(self) -> None:
        """Stop the executors."""
        speech = self.speech.executor if self.speech is not None else None
        for executor in (self.executor, self.generation_executor, speech):
            if executor is not None:
                executor.shutdown()


def build_abstractive(settings: Settings) -> Seq2SeqSummarizer:
    """The seq2seq backend with the per-language models and decoding of ``settings``."""
    return Seq2SeqSummarizer(
        models={
            "en": settings.abstractive_model_en,
            "es": settings.abstractive_model_es,
            "*": settings.abstractive_model_other,
        },
        generation=GenerationSettings(
            num_beams=settings.abstractive_num_beams,
            max_new_tokens=settings.abstractive_max_new_tokens,
            min_new_tokens=settings.abstractive_min_new_tokens,
            chunk_tokens=settings.abstractive_chunk_tokens,
        ),
        allow_downloads=settings.model_downloads,
        cache_dir=settings.model_cache_dir,
    )


def build_engine(settings: Settings) -> Engine:
    """The model server when ``LLM_BASE_URL`` is set, else the in-process engine."""
    if settings.llm_base_url:
        # Imported here: the openai client is ~26 MB the bot holds only when it has a server.
        from services.llm.server import ServerConfig, ServerEngine

        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
        return ServerEngine(
            ServerConfig(
                base_url=settings.llm_base_url,
                model=settings.llm_server_model or settings.llm_model,
                api_key=key,
                timeout=settings.llm_timeout_seconds,
                context_tokens=settings.llm_context_tokens,
            )
        )
    return choose_engine(
        settings.llm_engine,
        settings.llm_model,
        settings.llm_cache_dir,
        settings.model_downloads,
        dtype=settings.llm_dtype,
        shipped_weights=settings.llm_shipped_weights,
    )


def generation_limits(settings: Settings) -> GenerationLimits:
    """Token and temperature limits of ``settings``."""
    return GenerationLimits(
        max_new_tokens=settings.llm_max_new_tokens,
        temperature=settings.llm_temperature,
        max_prompt_tokens=settings.llm_max_prompt_tokens,
    )


def build_services(settings: Settings) -> Services:
    """The real services: summarizers and KeyBERT share one bounded executor; generation has
    its own (``LLM_MAX_CONCURRENCY`` at a time), and the LLM engine is loaded on first use."""
    set_minilm_runtime(settings.embeddings_runtime)
    set_model_threads(settings.model_threads)
    set_derived_models_dir(settings.derived_models_dir)
    executor = ModelExecutor(
        workers=settings.model_workers,
        queue=settings.model_queue,
        max_wait=settings.model_max_wait,
    )
    engine = build_engine(settings)
    limits = generation_limits(settings)
    summarizer = build_summary_service(
        executor,
        settings.max_input_chars,
        settings.default_method,
        abstractive=build_abstractive(settings),
        llm=LLMSummarizer(engine, limits),
        adapted=AdaptedModels(settings.llm_cache_dir, limits),
        learned=LearnedModels(settings.llm_cache_dir),
        grounding=GroundingMode(settings.grounding),
    )
    keywords = build_keywords(settings, executor)
    generation_executor = ModelExecutor(settings.llm_max_concurrency, settings.llm_queue)
    generator = GenerationService(engine, generation_executor, limits)
    # A model server writes the digests' narrative; the small in-process model would only
    # paraphrase worse than the messages themselves, so without a server they are quoted.
    writer = LLMSummarizer(engine, limits) if settings.llm_base_url else None
    return Services(
        summarizer=summarizer,
        keywords=keywords,
        executor=executor,
        generator=generator,
        generation_executor=generation_executor,
        documents=build_document_reader(settings),
        speech=build_speech(settings),
        digests=DigestService(
            executor,
            keywords.backend,
            keywords.cache,
            top_n=settings.digest_keyphrases,
            topic_method=settings.digest_topic_method,
            scorer=learned_scorer(),
            writer=writer,
            grounding=GroundingMode(settings.grounding),
            writer_name=settings.llm_server_model or settings.llm_model,
        ),
        history=HistorySearchService(
            executor,
            keywords.backend,
            LLMAnswerer(engine, limits) if settings.llm_base_url else None,
            GroundingMode(settings.grounding),
            settings.llm_server_model or settings.llm_model,
        ),
    )


def learned_scorer() -> Callable[[PreparedText], Any]:
    """Scores of the shipped learned extractive heads (the digest narrative's scorer)."""
    from services.summarize.learned.ranker import LearnedRanker, ShippedHeads

    return LearnedRanker(ShippedHeads()).scores


def build_keywords(settings: Settings, executor: ModelExecutor) -> KeyBERTExtractor:
    """The keyphrase extractor with the per-language models and options of ``settings``."""
    return KeyBERTExtractor(
        executor,
        max_chars=settings.max_input_chars,
        diversity=settings.keywords_diversity,
        models={
            "en": settings.keywords_model_en,
            "es": settings.keywords_model_es,
            "*": settings.keywords_model_other,
        },
        max_candidates=settings.keywords_max_candidates,
        diversification=settings.keywords_diversification,
    )


def fetch_policy(settings: Settings) -> FetchPolicy:
    """The link-fetching rules of ``settings``."""
    return FetchPolicy(
        max_redirects=settings.fetch_max_redirects,
        max_bytes=settings.fetch_max_bytes,
        timeout=settings.fetch_timeout_seconds,
        allow_private=settings.fetch_allow_private,
        allowed_addresses=frozenset(settings.fetch_allowed_addresses),
    )


def documents_limits(settings: Settings) -> ReaderLimits:
    """The time and memory budget of the child process that parses untrusted files."""
    return ReaderLimits(
        timeout=settings.parse_timeout_seconds,
        memory_mb=settings.parse_memory_mb,
        max_chars=settings.max_input_chars,
        hidden=(settings.data_dir,),
        max_ocr_pages=settings.max_ocr_pages,
        max_pixels=settings.max_image_pixels,
    )


def build_document_reader(settings: Settings) -> SandboxedDocumentReader:
    """Documents are parsed in a child process under the time and memory budget of settings."""
    return SandboxedDocumentReader(documents_limits(settings))


def build_speech(settings: Settings) -> SpeechService:
    """Voice notes: a transcription server first when ``STT_BASE_URL`` is set, the offline
    Whisper model next (or alone); recognition has its own one-at-a-time executor."""
    transcribers: list[Transcriber] = []
    if settings.stt_base_url:
        key = settings.stt_api_key.get_secret_value() if settings.stt_api_key else ""
        transcribers.append(
            ServerTranscriber(
                settings.stt_base_url, settings.stt_model, key, settings.stt_timeout_seconds
            )
        )
    transcribers.append(
        WhisperTranscriber(
            settings.whisper_model,
            tuple(code.strip() for code in settings.whisper_languages.split(",") if code.strip()),
            settings.whisper_threads or (os.cpu_count() or 2),
            settings.whisper_beam_size,
        )
    )
    # FFmpeg decodes 20 minutes of Opus in ~2 CPU seconds here: the caps are for hostile files.
    decoding = replace(
        documents_limits(settings),
        timeout=settings.max_audio_seconds / 4 + 30,
        cpu_seconds=int(settings.max_audio_seconds / 10) + 30,
    )
    return SpeechService(
        transcribers,
        ModelExecutor(workers=1, queue=settings.speech_queue),
        decoding,
        settings.max_audio_seconds,
    )


def limits_from(settings: Settings) -> Limits:
    """The chat-facing limits of ``settings``."""
    return Limits(
        auto_summary_min_chars=settings.auto_summary_min_chars,
        forward_batch_seconds=settings.forward_batch_seconds,
        forward_batch_max_messages=settings.forward_batch_max_messages,
        max_input_chars=settings.max_input_chars,
        max_file_bytes=settings.max_file_bytes,
        keywords_top_n=settings.keywords_top_n,
        stream_edit_seconds_private=settings.stream_edit_seconds_private,
        stream_edit_seconds_group=settings.stream_edit_seconds_group,
        digest_retention_days=settings.digest_retention_days,
        digest_max_messages=settings.digest_max_messages,
        ocr_min_confidence=settings.ocr_min_confidence,
        catchup_after_hours=settings.catchup_after_hours,
    )


def access_policy(settings: Settings) -> AccessPolicy:
    """Allow-lists, operators and quotas of ``settings``."""
    return AccessPolicy(
        allowed_users=parse_subjects(settings.allowed_users),
        allowed_chats=parse_subjects(settings.allowed_chats),
        admins=parse_subjects(settings.admin_users),
        quotas=Quotas(
            user_requests=settings.quota_user_requests,
            user_chars=settings.quota_user_chars,
            user_tokens=settings.quota_user_tokens,
            group_requests=settings.quota_group_requests,
            group_chars=settings.quota_group_chars,
            group_tokens=settings.quota_group_tokens,
        ),
    )


async def open_store(settings: Settings) -> SQLStore:
    """The store of ``settings`` (PostgreSQL with ``DATABASE_URL``, else the SQLite file),
    unlocked with ``STORAGE_KEY`` or the key file."""
    key = settings.storage_key.get_secret_value() if settings.storage_key else None
    if settings.database_url:
        from services.storage.postgres import PostgresStore

        return await PostgresStore.open(
            settings.database_url.get_secret_value(),
            storage_key=key,
            key_dir=settings.data_dir,
            command_seconds=settings.database_command_timeout,
            acquire_seconds=settings.database_acquire_timeout,
        )
    return await SQLiteStore.open(
        settings.database_path, storage_key=key, key_dir=settings.data_dir
    )
