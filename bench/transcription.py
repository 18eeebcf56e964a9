"""Word error rate and speed of the speech backends on synthesized voice notes.

Clips: the first sentences (without digits, so number formatting is not what is scored) of
news articles in the shared evaluation sets — CNN/DailyMail in English, BASSE in Spanish —
spoken by espeak-ng with two voices and two speeds per language, encoded as OGG/Opus as
Telegram sends voice notes. Every clip goes through the bot's own path: decoded by FFmpeg in
the confined child, then recognized. WER is normalized (lower case, no punctuation; jiwer).
RTF = recognition seconds / audio seconds, warm (the model loaded; its load time is reported
apart as "cold"). With ``--server URL`` an OpenAI-compatible transcription server is measured
on the same clips.

    .venv/bin/python bench/transcription.py [--clips 32] [--server http://127.0.0.1:8000/v1]

Prints a table and writes bench/results/transcription.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.core.executor import ModelExecutor  # noqa: E402
from services.core.protocols import Transcriber  # noqa: E402
from services.ingest.audio import decode_confined  # noqa: E402
from services.ingest.documents import ReaderLimits  # noqa: E402
from services.speech.transcribers import ServerTranscriber, WhisperTranscriber  # noqa: E402
from tests import media_samples as samples  # noqa: E402

EVAL = REPO.parent / "shared" / "data" / "eval"
SETS = {"en": "summ_en_cnndm_summeval100.jsonl", "es": "summ_es_basse_dev22.jsonl"}
VOICES = {"en": ("en-us", "en-gb"), "es": ("es", "es-419")}
SPEEDS = (150, 175)


def detokenized(text: str) -> str:
    text = re.sub(r"\s+([,.;:!?%)\]'])", r"\1", text)
    return re.sub(r"([(\[])\s+", r"\1", text).replace(" n't", "n't").replace("`` ", '"')


def clip_texts(language: str, count: int) -> list[str]:
    """``count`` passages of 25-60 words: leading sentences without digits, one per article."""
    texts = []
    with (EVAL / SETS[language]).open(encoding="utf-8") as rows:
        for line in rows:
            text = detokenized(json.loads(line)["text"])
            sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if not re.search(r"\d", s)]
            passage: list[str] = []
            for sentence in sentences:
                if sum(len(s.split()) for s in passage) >= 25:
                    break
                if len(sentence.split()) <= 40 and "@" not in sentence:
                    passage.append(sentence)
            words = sum(len(s.split()) for s in passage)
            if 25 <= words <= 60:
                texts.append(" ".join(passage))
            if len(texts) == count:
                break
    return texts


def synthesize(text: str, voice: str, speed: int, workdir: Path) -> bytes:
    import subprocess

    wav = workdir / "clip.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    return samples.encoded(wav, workdir / "clip.ogg")


async def measure(backend: Transcriber, clips: list[tuple[str, str, bytes]]) -> dict[str, object]:
    limits = ReaderLimits(timeout=120)
    executor = ModelExecutor(1, 1)
    rows: dict[str, list[tuple[float, float, float]]] = {"en": [], "es": []}
    for language, text, ogg in clips:
        decoded = await decode_confined(ogg, 1200, limits)
        started = time.perf_counter()
        transcript = await executor.run(backend.transcribe, decoded.pcm, None)
        took = time.perf_counter() - started
        wer = samples.normalized_wer(text, transcript.text)
        rows[language].append((wer, took / decoded.seconds, decoded.seconds))
    executor.shutdown()
    result: dict[str, object] = {"backend": backend.name}
    for language, values in rows.items():
        if not values:
            continue
        wers = [v[0] for v in values]
        result[language] = {
            "clips": len(values),
            "audio_seconds": round(sum(v[2] for v in values), 1),
            "wer_mean": round(statistics.fmean(wers), 4),
            "wer_median": round(statistics.median(wers), 4),
            "rtf_median": round(statistics.median(v[1] for v in values), 3),
            "rtf_p90": round(sorted(v[1] for v in values)[int(0.9 * (len(values) - 1))], 3),
        }
    return result


async def long_note_seconds(
    clips: list[tuple[str, str, bytes]], minutes: float, whisper: WhisperTranscriber
) -> dict[str, float]:
    """One long voice note through the bot's path: decode (child), transcribe, summarize."""
    import subprocess

    from services.core.types import SummaryOptions
    from services.summarize.service import build_summary_service

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        english = [ogg for language, _, ogg in clips if language == "en"]
        listing = []
        for index, ogg in enumerate(english):
            (folder / f"{index}.ogg").write_bytes(ogg)
            listing.append(f"file '{index}.ogg'")
        (folder / "list.txt").write_text("\n".join(listing * 20) + "\n")
        subprocess.run(  # noqa: ASYNC221 - a bench's set-up, before anything is timed
            [
                "ffmpeg",
                "-y",
                "-loglevel",
                "error",
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                str(folder / "list.txt"),
                "-t",
                str(minutes * 60),
                "-c:a",
                "libopus",
                "-b:a",
                "24k",
                str(folder / "long.ogg"),
            ],
            check=True,
        )
        note = (folder / "long.ogg").read_bytes()
    started = time.perf_counter()
    decoded = await decode_confined(note, 1200, ReaderLimits(timeout=600))
    decoded_at = time.perf_counter()
    transcript = await asyncio.to_thread(whisper.transcribe, decoded.pcm, None)
    transcribed_at = time.perf_counter()
    executor = ModelExecutor(1, 1)
    summarizer = build_summary_service(executor, 100_000)
    await summarizer.summarize(transcript.text, SummaryOptions())
    done = time.perf_counter()
    executor.shutdown()
    return {
        "audio_seconds": round(decoded.seconds, 1),
        "decode_seconds": round(decoded_at - started, 2),
        "transcribe_seconds": round(transcribed_at - decoded_at, 2),
        "summary_seconds": round(done - transcribed_at, 2),
        "total_seconds": round(done - started, 2),
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=32, help="clips in all (half per language)")
    parser.add_argument("--server", help="also measure this OpenAI-compatible server (/v1 root)")
    parser.add_argument("--server-model", default="whisper-1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--long-minutes",
        type=float,
        default=10.0,
        help="also time one note this long (the English clips in a row, repeated), end to end: "
        "decoding in the child, recognition, then the default summary (0 = skip)",
    )
    args = parser.parse_args()
    samples.need("espeak-ng", "ffmpeg")
    per_language = args.clips // 2
    clips: list[tuple[str, str, bytes]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for language in ("en", "es"):
            for index, text in enumerate(clip_texts(language, per_language)):
                voice = VOICES[language][index % 2]
                speed = SPEEDS[(index // 2) % 2]
                clips.append((language, text, synthesize(text, voice, speed, Path(scratch))))
    whisper = WhisperTranscriber(threads=args.threads)
    started = time.perf_counter()
    whisper._load()
    cold = time.perf_counter() - started
    backends: list[Transcriber] = [whisper]
    if args.server:
        backends.append(ServerTranscriber(args.server, args.server_model))
    results = []
    for backend in backends:
        await measure(backend, clips[:1])  # warm: the first call pays one-off set-up
        results.append(await measure(backend, clips))
    long_note = (
        await long_note_seconds(clips, args.long_minutes, whisper) if args.long_minutes else None
    )
    report = {
        "long_note": long_note,
        "date": date.today().isoformat(),
        "cpu": cpu_model(),
        "threads": args.threads,
        "whisper_load_seconds_cold": round(cold, 2),
        "results": results,
    }
    print(f"{report['date']} · {report['cpu']} · {args.threads} threads")
    print(f"whisper-base load (cold): {cold:.2f} s")
    print(
        f"{'backend':<14} {'lang':<4} {'clips':>5} {'audio s':>8} {'WER mean':>9} "
        f"{'WER med':>8} {'RTF med':>8} {'RTF p90':>8}"
    )
    for result in results:
        for language in ("en", "es"):
            row = result[language]
            assert isinstance(row, dict)
            print(
                f"{result['backend']:<14} {language:<4} {row['clips']:>5} "
                f"{row['audio_seconds']:>8} {row['wer_mean']:>9.3f} {row['wer_median']:>8.3f} "
                f"{row['rtf_median']:>8.3f} {row['rtf_p90']:>8.3f}"
            )
    if long_note:
        print(
            f"a {long_note['audio_seconds'] / 60:.1f}-minute note: decoded in "
            f"{long_note['decode_seconds']:.1f} s, transcribed in "
            f"{long_note['transcribe_seconds']:.1f} s, summarized in "
            f"{long_note['summary_seconds']:.1f} s: {long_note['total_seconds']:.1f} s in all"
        )
    out = REPO / "bench" / "results" / "transcription.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
