"""Reading photos, screenshots and scanned PDFs with Tesseract, inside the confined child.

Runs in ``services.ingest.sandbox`` (kinds ``image`` and ``scan``), never in the bot:

- An image's size is read from its header and refused past ``max_pixels`` **before** a pixel
  is decoded (a 30,000 × 30,000 PNG, a decompression bomb); Pillow's own bomb check is set to
  the same cap.
- The photo is turned upright by its EXIF orientation; when the first reading is poor, Tesseract's
  orientation detection (OSD) says whether the page is rotated, and the rotated page is read
  again.
- Scanned PDFs (no text layer) are rendered one page at a time by poppler's ``pdftoppm``, at
  most ``max_pages``, each page deleted once read (the child's private directory is small).
- The text comes with Tesseract's mean word confidence, so the bot can say when a reading is
  doubtful instead of summarizing it silently.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from services.core.errors import DocumentUnreadable
from services.ingest.programs import program

IMAGE_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
)
LANGUAGES = {"en": "eng", "es": "spa"}
"""Chat languages to Tesseract's language data."""
DEFAULT_LANGUAGES = "eng+spa"
RENDER_DPI = 200
RETRY_BELOW_CONFIDENCE = 70.0
"""A first reading under this mean confidence asks OSD whether the page is rotated."""


def is_image(head: bytes) -> bool:
    """Whether ``head`` starts like an image file Pillow reads (PNG, JPEG, GIF, TIFF, BMP,
    WebP)."""
    return head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def tesseract_languages(chat_language: str | None) -> str:
    """The Tesseract languages for a chat: its own when known, English and Spanish otherwise."""
    code = LANGUAGES.get((chat_language or "").split("-")[0].lower())
    return code or DEFAULT_LANGUAGES


@dataclass(frozen=True)
class PageText:
    """What Tesseract read on one page."""

    text: str
    confidence: float
    """Mean word confidence, 0–100, weighted by word length (0 when no words)."""
    words: int


def _lines(data: dict[str, list[Any]]) -> PageText:
    """Text and confidence from ``image_to_data``: words joined into lines, lines into
    paragraphs, paragraphs separated by a blank line."""
    paragraphs: dict[tuple[int, int], list[list[str]]] = {}
    lines: dict[tuple[int, int, int], list[str]] = {}
    weighted = 0.0
    letters = 0
    words = 0
    for index, word in enumerate(data["text"]):
        word = str(word).strip()
        confidence = float(data["conf"][index])
        if not word or confidence < 0:
            continue
        key = (int(data["block_num"][index]), int(data["par_num"][index]))
        line_key = (*key, int(data["line_num"][index]))
        if line_key not in lines:
            lines[line_key] = []
            paragraphs.setdefault(key, []).append(lines[line_key])
        lines[line_key].append(word)
        weighted += confidence * len(word)
        letters += len(word)
        words += 1
    text = "\n\n".join(
        "\n".join(" ".join(line) for line in paragraph) for paragraph in paragraphs.values()
    )
    return PageText(text, weighted / letters if letters else 0.0, words)


def _read(image: Any, languages: str) -> PageText:
    import pytesseract

    data = pytesseract.image_to_data(
        image, lang=languages, config="--psm 3", output_type=pytesseract.Output.DICT
    )
    return _lines(data)


def _rotation(image: Any) -> int:
    """Degrees to rotate ``image`` counter-clockwise to make it upright (0 when OSD cannot
    tell: too little text)."""
    import pytesseract

    try:
        osd = pytesseract.image_to_osd(image, config="--psm 0")
    except pytesseract.TesseractError:
        return 0
    found = re.search(r"Rotate: (\d+)", osd)
    return int(found.group(1)) if found else 0


def read_page(image: Any, languages: str) -> PageText:
    """OCR one upright-or-rotated page image (a Pillow image)."""
    page = _read(image, languages)
    if page.confidence >= RETRY_BELOW_CONFIDENCE and page.words:
        return page
    rotation = _rotation(image)
    if rotation:
        turned = _read(image.rotate(-rotation, expand=True), languages)
        if turned.confidence > page.confidence:
            return turned
    return page


def open_image(data: bytes, max_pixels: int) -> Any:
    """A Pillow image of ``data``, upright by EXIF, in grey.

    Raises:
        DocumentUnreadable: ``image_too_large`` past ``max_pixels`` (checked on the header,
            before decoding), ``damaged`` when Pillow cannot read it.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        image = Image.open(BytesIO(data))  # reads the header only
        width, height = image.size
        if width * height > max_pixels:
            raise DocumentUnreadable("image_too_large", f"{width}x{height}")
        image.load()
    except Image.DecompressionBombError as exc:
        raise DocumentUnreadable("image_too_large", str(exc)[:80]) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DocumentUnreadable("damaged", type(exc).__name__) from exc
    upright = ImageOps.exif_transpose(image) or image
    return upright.convert("L")


def read_image(data: bytes, languages: str, max_pixels: int) -> PageText:
    """OCR an image file (the kind ``image``)."""
    return read_page(open_image(data, max_pixels), languages)


def read_scan(
    data: bytes, workdir: Path, languages: str, max_pages: int, max_pixels: int, timeout: float
) -> tuple[list[PageText], int | None]:
    """OCR a PDF without a text layer: (pages read, pages in the document when known).

    Raises:
        DocumentUnreadable: ``damaged`` when poppler cannot render it.
    """
    from PIL import Image

    source = workdir / "scan.pdf"
    source.write_bytes(data)
    total = _pdf_pages(source, timeout)
    pages: list[PageText] = []
    for number in range(1, max_pages + 1):
        if total is not None and number > total:
            break
        prefix = workdir / "page"
        try:
            done = subprocess.run(  # noqa: S603 - fixed program and options
                [
                    program("pdftoppm"),
                    "-gray",
                    "-r",
                    str(RENDER_DPI),
                    "-f",
                    str(number),
                    "-l",
                    str(number),
                    "-singlefile",
                    str(source),
                    str(prefix),
                ],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DocumentUnreadable("too_complex", "rendering a page ran out of time") from exc
        rendered = workdir / "page.pgm"
        if done.returncode != 0 or not rendered.exists():
            if number == 1:
                raise DocumentUnreadable("damaged", "poppler could not render it")
            break
        try:
            with Image.open(rendered) as image:
                if image.size[0] * image.size[1] > max_pixels:
                    raise DocumentUnreadable("image_too_large", "a page is too large")
                pages.append(read_page(image.convert("L"), languages))
        finally:
            rendered.unlink(missing_ok=True)
    source.unlink(missing_ok=True)
    return pages, total


def _pdf_pages(source: Path, timeout: float) -> int | None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed program
            [program("pdfinfo"), str(source)], capture_output=True, timeout=timeout, check=False
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    found = re.search(rb"^Pages:\s+(\d+)", done.stdout, re.M)
    return int(found.group(1)) if found else None
