"""Decoding voice notes and audio files with FFmpeg, inside the confined child.

The child (``services.ingest.sandbox``, kind ``audio``) writes the bytes to its private
directory, asks ``ffprobe`` for the duration, refuses what is longer than the cap before
decoding a sample, then has ``ffmpeg`` decode at most that many seconds to 16 kHz mono 16-bit
PCM — what every Whisper backend takes. FFmpeg inherits the child's limits (address space, CPU
seconds, no network, no secrets), and is given a single thread and a wall-clock budget.

Both sides use this module: :func:`decode` runs in the child; the bot only ever sees the PCM
samples and a few numbers, never a container it would have to parse.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from services.core.errors import DocumentUnreadable, InputTooLarge
from services.ingest.documents import ReaderLimits, run_confined
from services.ingest.programs import program

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""Hz: what Whisper models are trained on."""
SAMPLE_BYTES = 2
"""16-bit little-endian signed PCM."""


@dataclass(frozen=True)
class DecodedAudio:
    """A voice note as samples.

    Attributes:
        pcm: 16 kHz mono s16le samples.
        seconds: the decoded length.
    """

    pcm: bytes
    seconds: float


def _probe_seconds(path: Path, timeout: float) -> float | None:
    """The container's duration by ffprobe (None when it does not say)."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, a path we wrote
            [
                program("ffprobe"),
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "json",
                str(path),
            ],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise DocumentUnreadable("no_decoder", "ffprobe is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise DocumentUnreadable("too_complex", "ffprobe ran out of time") from exc
    if done.returncode != 0:
        raise DocumentUnreadable("damaged", "not an audio or video file FFmpeg can read")
    try:
        value = json.loads(done.stdout or b"{}").get("format", {}).get("duration")
        return float(value) if value not in (None, "N/A") else None
    except (ValueError, AttributeError):
        return None


def decode(data: bytes, workdir: Path, max_seconds: float, timeout: float) -> DecodedAudio:
    """Decode ``data`` (any container FFmpeg reads) to 16 kHz mono PCM, at most
    ``max_seconds`` of it.

    Raises:
        DocumentUnreadable: ``empty_file`` (no bytes), ``damaged``, ``audio_too_long`` (the detail
            is the duration in seconds), ``no_speech`` (no audio stream or no samples),
            ``no_decoder`` (FFmpeg missing), ``too_complex`` (over the time budget).
    """
    if not data:
        raise DocumentUnreadable("empty_file", "0 bytes")
    source = workdir / "input.media"
    source.write_bytes(data)
    declared = _probe_seconds(source, timeout / 4)
    if declared is not None and declared > max_seconds + 1:
        raise DocumentUnreadable("audio_too_long", str(round(declared)))
    command = [
        program("ffmpeg"),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-threads",
        "1",
        "-i",
        str(source),
        "-t",
        str(max_seconds),
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(SAMPLE_RATE),
        "-f",
        "s16le",
        "pipe:1",
    ]
    try:
        done = subprocess.run(  # noqa: S603 - fixed program and options
            command, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise DocumentUnreadable("no_decoder", "ffmpeg is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise DocumentUnreadable("too_complex", "ffmpeg ran out of time") from exc
    finally:
        source.unlink(missing_ok=True)
    pcm = done.stdout
    if done.returncode != 0 and not pcm:
        stderr = done.stderr.decode(errors="replace")
        if "does not contain any stream" in stderr or "matches no streams" in stderr:
            raise DocumentUnreadable("no_speech", "no audio stream")
        raise DocumentUnreadable("damaged", "FFmpeg could not decode it")
    seconds = len(pcm) / (SAMPLE_RATE * SAMPLE_BYTES)
    if seconds < 0.1:
        raise DocumentUnreadable("no_speech", "no samples")
    if declared is None and seconds >= max_seconds:
        raise DocumentUnreadable("audio_too_long", f"{round(seconds)}+")
    return DecodedAudio(pcm, seconds)


def is_audio(head: bytes) -> bool:
    """Whether ``head`` starts like an audio or video container (Ogg, MP3, WAV, FLAC, MP4/M4A,
    WebM/Matroska, AMR)."""
    return (
        head.startswith((b"OggS", b"ID3", b"fLaC", b"\x1aE\xdf\xa3", b"#!AMR"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WAVE")
        or head[4:8] == b"ftyp"
        or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # an MPEG frame
    )


async def decode_confined(data: bytes, max_seconds: float, limits: ReaderLimits) -> DecodedAudio:
    """Decode ``data`` in a confined child (see :func:`decode`).

    Raises:
        InputTooLarge: longer than ``max_seconds`` (in minutes, for the sentence).
        DocumentUnreadable: as :func:`decode`, or ``too_complex`` when the child died or ran
            past ``limits.timeout``.
    """
    header = {"kind": "audio", "max_seconds": max_seconds}
    returncode, stdout = await run_confined("services.ingest.sandbox", header, data, limits)
    line, _, pcm = stdout.partition(b"\n")
    try:
        result = json.loads(line or b"{}")
    except ValueError:
        result = {}
    if returncode != 0 or not isinstance(result, dict):
        logger.warning("sandboxed audio decoder failed (exit %s)", returncode)
        result = {}
    if result.get("error") == "audio_too_long":
        seconds = int(str(result.get("detail", "0")).rstrip("+") or 0)
        raise InputTooLarge(-(-seconds // 60), int(max_seconds // 60), unit="minutes")
    if "error" in result:
        raise DocumentUnreadable(str(result["error"]), str(result.get("detail", "")))
    if "seconds" not in result:
        raise DocumentUnreadable("too_complex", "over the memory budget or crashed")
    return DecodedAudio(pcm, float(result["seconds"]))
