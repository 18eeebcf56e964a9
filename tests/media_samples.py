"""Recordings and pictures made here, from known text: speech by espeak-ng encoded by FFmpeg,
pages drawn by Pillow (and a PDF of them by img2pdf), and hostile files built byte by byte."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

ENGLISH = (
    "Scientists at the university have developed a new battery that charges in a few minutes. "
    "The team says the battery could make electric cars cheaper and more practical for long "
    "journeys. Production is expected to begin in the spring, after safety tests are complete."
)
SPANISH = (
    "El festival del río empieza el viernes por la mañana en el puerto viejo. Los panaderos "
    "venderán pan fresco y pasteles de miel junto al puente. Los organizadores piden a los "
    "visitantes que dejen el coche en casa y que vengan en tren."
)
PAGE_ENGLISH = (
    "The city council met on Tuesday to discuss the new budget for public transport.\n"
    "Members agreed to open three new libraries next year and to repair the old bridges.\n"
    "The mayor said the plan would help families across the whole region."
)
PAGE_SPANISH = (
    "El ayuntamiento se reunió el martes para hablar del presupuesto de transporte.\n"
    "Los concejales acordaron abrir tres bibliotecas nuevas el año que viene.\n"
    "La alcaldesa dijo que el plan ayudará a las familias de toda la región."
)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def need(*programs: str) -> None:
    """Skip the test when a system program the README's set-up installs is missing here;
    under CI (where ``make setup`` installed them) fail instead."""
    missing = [name for name in programs if shutil.which(name) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (make setup installs them)"
        if os.environ.get("CI"):
            pytest.fail(message + " — CI must run the voice and OCR tests")
        pytest.skip(message)


def spoken(text: str, voice: str, workdir: Path, codec: str = "libopus") -> bytes:
    """``text`` spoken by espeak-ng, as an OGG/Opus voice note (the format Telegram uses)."""
    need("espeak-ng", "ffmpeg")
    wav = workdir / f"{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
    return encoded(wav, workdir / f"{voice}.ogg", codec)


def encoded(source: Path, target: Path, codec: str = "libopus", *options: str) -> bytes:
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            *options,
            "-i",
            str(source),
            "-c:a",
            codec,
            "-b:a",
            "24k",
            str(target),
        ],
        check=True,
    )
    return target.read_bytes()


def silence(seconds: int, workdir: Path, codec: str = "libopus") -> bytes:
    """``seconds`` of silence, as OGG/Opus or ``codec`` "flac" (fast to make for hours)."""
    need("ffmpeg")
    target = workdir / f"silence{seconds}.{'flac' if codec == 'flac' else 'ogg'}"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=8000:cl=mono",
            "-t",
            str(seconds),
            "-c:a",
            codec,
            str(target),
        ],
        check=True,
    )
    return target.read_bytes()


def page(text: str, *, rotate: int = 0, contrast: tuple[int, int] = (0, 255)) -> bytes:
    """``text`` drawn black on white (or ``contrast`` = (ink, paper)) as a PNG."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, 30)
    ink, paper = contrast
    image = Image.new("L", (1500, 80 + 60 * (text.count("\n") + 1)), paper)
    ImageDraw.Draw(image).multiline_text((40, 40), text, fill=ink, font=font, spacing=24)
    if rotate:
        image = image.rotate(rotate, expand=True, fillcolor=paper)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def image_only_pdf(*pages: bytes) -> bytes:
    """A PDF whose pages are pictures (no text layer), like a scan."""
    import img2pdf

    return bytes(img2pdf.convert(list(pages)))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of ``width`` × ``height`` white pixels (compressed, it is small;
    decoded it is width × height bytes)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\xff" * width
    packer = zlib.compressobj(9)
    parts = [packer.compress(row * 64) for _ in range(height // 64)]
    parts.append(packer.compress(row * (height % 64)))
    parts.append(packer.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def png_bomb() -> bytes:
    """A PNG that claims 100,000 × 100,000 pixels in a few bytes (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * 4096)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def normalized_wer(reference: str, hypothesis: str) -> float:
    """Word error rate after lower-casing and dropping punctuation (jiwer)."""
    import jiwer

    clean = jiwer.Compose(
        [
            jiwer.ToLowerCase(),
            jiwer.RemovePunctuation(),
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
            jiwer.ReduceToListOfListOfWords(),
        ]
    )
    reference, hypothesis = " ".join(reference.split()), " ".join(hypothesis.split())
    return float(
        jiwer.wer(reference, hypothesis, reference_transform=clean, hypothesis_transform=clean)
    )


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, whitespace runs made single spaces."""
    import jiwer

    return float(jiwer.cer(" ".join(reference.split()), " ".join(hypothesis.split())))
