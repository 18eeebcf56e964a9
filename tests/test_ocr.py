"""Photos, screenshots and scanned PDFs read by Tesseract in the sandbox: pages drawn here
with Pillow, hostile images built byte by byte."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from services.core.errors import DocumentUnreadable
from services.ingest.documents import ReaderLimits, SandboxedDocumentReader
from tests import media_samples as samples


@pytest.fixture(autouse=True)
def tesseract() -> None:
    samples.need("tesseract", "pdftoppm")


def read(data: bytes, name: str, language: str | None = None, **limits: object):  # type: ignore[no-untyped-def]
    reader = SandboxedDocumentReader(ReaderLimits(**limits))  # type: ignore[arg-type]
    return asyncio.run(reader.read(data, name, language))


@pytest.mark.parametrize(
    ("text", "language"),
    [(samples.PAGE_ENGLISH, "en"), (samples.PAGE_SPANISH, "es"), (samples.PAGE_SPANISH, None)],
)
def test_a_clean_page_is_read_with_few_errors(text: str, language: str | None) -> None:
    document = read(samples.page(text), "screenshot.png", language)
    assert document.kind == "image" and document.pages == 1
    assert samples.cer(text, document.text) <= 0.05
    assert document.ocr_confidence is not None and document.ocr_confidence > 80


def test_a_page_photographed_sideways_is_turned_and_read() -> None:
    document = read(samples.page(samples.PAGE_ENGLISH, rotate=90), "photo.jpg", "en")
    assert samples.cer(samples.PAGE_ENGLISH, document.text) <= 0.05


def test_a_low_contrast_page_is_read() -> None:
    faint = samples.page(samples.PAGE_ENGLISH, contrast=(150, 205))
    document = read(faint, "photo.png", "en")
    assert samples.cer(samples.PAGE_ENGLISH, document.text) <= 0.05


def test_a_scanned_pdf_is_read_page_by_page() -> None:
    scan = samples.image_only_pdf(
        samples.page(samples.PAGE_ENGLISH), samples.page(samples.PAGE_SPANISH)
    )
    document = read(scan, "scan.pdf")
    assert document.kind == "pdf" and document.pages == 2 and not document.truncated
    expected = samples.PAGE_ENGLISH + "\n\n" + samples.PAGE_SPANISH
    assert samples.cer(expected, document.text) <= 0.05
    assert document.ocr_confidence is not None


def test_a_long_scan_is_read_up_to_the_page_cap_and_says_so() -> None:
    scan = samples.image_only_pdf(*[samples.page(samples.PAGE_ENGLISH)] * 3)
    document = read(scan, "scan.pdf", "en", max_ocr_pages=2)
    assert (document.pages, document.pages_read, document.truncated) == (3, 2, True)


def test_a_picture_without_text_is_one_reason() -> None:
    with pytest.raises(DocumentUnreadable) as refused:
        read(samples.page(""), "blank.png")
    assert refused.value.reason == "no_text_in_image"


@pytest.mark.parametrize("kind", ["30000x30000", "bomb"])
def test_huge_images_are_refused_without_the_bot_allocating_them(kind: str) -> None:
    data = samples.huge_png(30_000, 30_000) if kind != "bomb" else samples.png_bomb()
    tracemalloc.start()
    try:
        with pytest.raises(DocumentUnreadable) as refused:
            read(data, "huge.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.reason == "image_too_large"
    assert peak < 64 * 1024 * 1024
