"""Voice notes to transcripts: decode in the sandbox, recognize in a bounded executor."""

from __future__ import annotations

import asyncio
import hashlib

from cachetools import TTLCache

from services.core.errors import CondensaError, DocumentUnreadable
from services.core.executor import ModelExecutor
from services.core.protocols import Progress, Transcriber
from services.core.types import Transcript
from services.ingest.audio import SAMPLE_BYTES, SAMPLE_RATE, decode_confined
from services.ingest.documents import ReaderLimits

SILENCE_RMS = 40
"""16-bit RMS under which a whole note counts as silence (no speech to transcribe)."""


def _rms(pcm: bytes) -> float:
    import numpy as np

    values = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(values * values))) if len(values) else 0.0


class SpeechService:
    """The ``SpeechReader``: FFmpeg in the confined child, then a :class:`Transcriber`.

    Args:
        transcribers: tried in order; the next one is used when one is unavailable (the
            server is down, the offline model is refused).
        executor: where recognition runs (its own: a long note must not hold up summaries).
        limits: the decoder child's budget.
        max_seconds: longer audio is refused (the sentence says how long it was).
    """

    def __init__(
        self,
        transcribers: list[Transcriber],
        executor: ModelExecutor,
        limits: ReaderLimits,
        max_seconds: float = 1200.0,
    ) -> None:
        if not transcribers:
            raise ValueError("at least one transcriber is needed")
        self.transcribers = transcribers
        self.executor = executor
        self.limits = limits
        self.max_seconds = max_seconds
        # The same note is often asked for twice in a row (kept for a group's digest, then
        # /summary on it); ten minutes in memory, never on disk.
        self._recent: TTLCache[tuple[str, str | None], Transcript] = TTLCache(64, 600)

    async def transcribe(
        self, data: bytes, language: str | None = None, progress: Progress | None = None
    ) -> Transcript:
        """The transcript of ``data`` (any container FFmpeg reads).

        Raises:
            DocumentUnreadable: damaged, empty, silent, or longer than ``max_seconds``.
            SpeechUnsupported, ModelUnavailable, ModelServerError: no backend could do it.
            Busy: the recognizer's queue is full.
        """
        key = (hashlib.sha256(data).hexdigest(), language)
        if key in self._recent:
            transcript = self._recent[key]
            if progress is not None:
                progress(transcript.seconds, 1.0)
            return transcript
        decoded = await decode_confined(data, self.max_seconds, self.limits)
        if _rms(decoded.pcm) < SILENCE_RMS:
            raise DocumentUnreadable("no_speech", "silence")
        loop = asyncio.get_running_loop()
        seconds = len(decoded.pcm) / (SAMPLE_RATE * SAMPLE_BYTES)

        def advanced(fraction: float) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, seconds, fraction)

        if progress is not None:
            progress(seconds, 0.0)
        failure: CondensaError | None = None
        for transcriber in self.transcribers:
            try:
                transcript = await self.executor.run(
                    transcriber.transcribe, decoded.pcm, language, advanced
                )
            except CondensaError as error:
                failure = error
                continue
            if not transcript.text.strip():
                raise DocumentUnreadable("no_speech", "nothing recognized")
            self._recent[key] = transcript
            return transcript
        assert failure is not None
        raise failure
