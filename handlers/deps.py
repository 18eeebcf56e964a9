"""What the handlers are given: the services they call and the limits they enforce."""

from __future__ import annotations

from dataclasses import dataclass

from services.core.protocols import (
    DigestMaker,
    DocumentReader,
    ExportReader,
    KeywordExtractor,
    LinkReader,
    MessageArchive,
    Store,
    Summarizer,
    TextGenerator,
)


@dataclass(frozen=True)
class Limits:
    """Chat-facing limits (copied from Settings by the composition root)."""

    auto_summary_min_chars: int = 600
    forward_batch_seconds: float = 2.0
    max_input_chars: int = 100_000
    max_file_bytes: int = 20 * 1024 * 1024
    keywords_top_n: int = 10
    stream_edit_seconds_private: float = 1.0
    stream_edit_seconds_group: float = 3.0
    digest_retention_days: int = 7
    digest_max_messages: int = 20_000


@dataclass(frozen=True)
class HandlerDeps:
    """Services handed to every handler module explicitly (no globals)."""

    summarizer: Summarizer
    keywords: KeywordExtractor
    store: Store
    limits: Limits
    documents: DocumentReader
    links: LinkReader
    generator: TextGenerator | None = None
    archive: MessageArchive | None = None
    digests: DigestMaker | None = None
    exports: ExportReader | None = None
