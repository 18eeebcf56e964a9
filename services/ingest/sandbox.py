"""The child process that parses one document (``python -m services.ingest.sandbox``).

Protocol: stdin is one JSON header line (``kind``, ``max_chars``) followed by the file's bytes;
stdout is one JSON object, either the fields of ``DocumentText`` or ``{"error", "detail"}``.
Kind ``export`` (with ``max_bytes``) parses a Telegram Desktop chat export (``/import``) and
answers ``{"export": ChatExport fields}``. Kinds ``image`` and ``scan`` (with ``languages``,
``max_pages``, ``max_pixels``) are read by OCR (:mod:`services.ingest.ocr`). Kind ``audio``
(with ``max_seconds``) is decoded by FFmpeg (:mod:`services.ingest.audio`) and answers
``{"seconds": s}``, a newline and the PCM samples.
The address space is capped from ``CONDENSA_MEMORY_MB``, CPU time from ``CONDENSA_CPU_SECONDS``,
before anything is parsed; programs the child runs (FFmpeg, Tesseract, poppler) inherit both.
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import sys
from collections.abc import Iterator
from dataclasses import asdict
from io import BytesIO
from pathlib import Path
from typing import Any

from services.core.errors import DocumentUnreadable
from services.core.types import DocumentText
from services.ingest.confinement import enter_confinement
from services.ingest.documents import decode_text

_WORD = re.compile(r"\w+")


def _limit_memory() -> None:
    megabytes = int(os.environ.get("CONDENSA_MEMORY_MB", "1024"))
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu = os.environ.get("CONDENSA_CPU_SECONDS")
    if cpu:
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 1))


def _peak_near_the_limit() -> bool:
    """Whether this process's address space came within a quarter of its limit.

    Running out of address space does not always surface as ``MemoryError``: a parser's C code
    may report a failed allocation as a syntax error ("unknown error" from libxml2), an
    import half-done as ``SystemError``, a directory listing as ``OSError``. When a parse fails
    that way near the limit, the budget is the likelier cause than the bytes; a quarter leaves
    room for the buffer that was being doubled when it failed.
    """
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit == resource.RLIM_INFINITY:
        return False
    try:
        with open("/proc/self/status", "rb") as status:  # bytes: decoding may import a codec
            for line in status:
                if line.startswith(b"VmPeak:"):
                    return int(line.split()[1]) * 1024 > limit * 3 // 4
    except MemoryError:
        return True
    except OSError:
        pass
    return False


def _out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` (from parsing under the memory limit) means the budget ran out."""
    if isinstance(error, (MemoryError, ImportError)):  # a library may fail to load, too
        return True
    if isinstance(error, OSError) and error.errno == errno.ENOMEM:
        return True
    return _peak_near_the_limit()


def _pdf_pages(data: bytes) -> tuple[Iterator[str], int]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentUnreadable("encrypted")
        count = len(reader.pages)
    except DocumentUnreadable:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if "decrypt" in str(exc).lower() or "encrypt" in str(exc).lower():
            raise DocumentUnreadable("encrypted") from exc
        raise DocumentUnreadable("damaged", type(exc).__name__) from exc
    return ((page.extract_text() or "") for page in reader.pages), count


def _docx_parts(data: bytes) -> Iterator[str]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(BytesIO(data))
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            yield Paragraph(block, document).text
        elif tag == "tbl":
            for row in Table(block, document).rows:
                cells: list[str] = []
                for cell in row.cells:
                    value = cell.text.strip()
                    if value and (not cells or cells[-1] != value):  # merged cells repeat
                        cells.append(value)
                yield " | ".join(cells)


def _odt_ordered(data: bytes) -> Iterator[str]:
    """ODT headings and paragraphs in document order."""
    from odf import teletype
    from odf.namespaces import TEXTNS
    from odf.opendocument import load

    document = load(BytesIO(data))

    def walk(node: Any) -> Iterator[str]:
        for child in node.childNodes:
            qname = getattr(child, "qname", None)
            if qname in ((TEXTNS, "p"), (TEXTNS, "h")):
                yield teletype.extractText(child)
            elif getattr(child, "childNodes", None):
                yield from walk(child)

    yield from walk(document.text)


def _html_text(markup: str) -> str:
    import trafilatura

    text = trafilatura.extract(
        markup, include_comments=False, include_tables=True, favor_recall=True
    )
    if text:
        return str(text)
    import lxml.html

    return str(lxml.html.fromstring(markup).text_content()) if markup.strip() else ""


def _epub_chapters(data: bytes) -> list[str]:
    import ebooklib
    from ebooklib import epub

    book = epub.read_epub(BytesIO(data), options={"ignore_ncx": True})
    chapters = []
    for item in book.get_items_of_type(ebooklib.ITEM_DOCUMENT):
        content = item.get_content().decode("utf-8", "replace")
        text = _html_text(content)
        if text.strip():
            chapters.append(text)
    return chapters


def _collect(parts: Iterator[str], max_chars: int) -> tuple[str, int, int, bool]:
    """Join parts until ``max_chars``; (text, words of all parts, parts read, truncated)."""
    kept: list[str] = []
    used = 0
    words = 0
    read = 0
    truncated = False
    for part in parts:
        part = part.strip()
        words += len(_WORD.findall(part))
        if truncated:
            continue
        if used + len(part) > max_chars:
            truncated = True
            continue
        if part:
            kept.append(part)
        used += len(part) + 2
        read += 1
    return "\n\n".join(kept), words, read, truncated


def parse(kind: str, data: bytes, max_chars: int) -> DocumentText:
    """Parse ``data`` of type ``kind`` (runs inside the limited child process)."""
    pages: int | None = None
    if kind == "pdf":
        page_texts, pages = _pdf_pages(data)
        text, words, read, truncated = _collect(page_texts, max_chars)
        if pages and not text.strip() and not truncated:
            raise DocumentUnreadable("no_text")
        return DocumentText(text, kind, pages, words, read if truncated else None, truncated)
    if kind == "epub":
        chapters = _epub_chapters(data)
        text, words, read, truncated = _collect(iter(chapters), max_chars)
        return DocumentText(
            text, kind, len(chapters), words, read if truncated else None, truncated
        )
    if kind == "docx":
        parts: Iterator[str] = _docx_parts(data)
    elif kind == "odt":
        parts = _odt_ordered(data)
    elif kind == "rtf":
        from striprtf.striprtf import rtf_to_text

        parts = iter(rtf_to_text(decode_text(data), errors="ignore").split("\n"))
    elif kind == "html":
        parts = iter(_html_text(decode_text(data)).split("\n"))
    else:
        parts = iter(decode_text(data).split("\n\n"))
    text, words, _, truncated = _collect(parts, max_chars)
    return DocumentText(text, kind, pages, words, None, truncated)


def _export(data: bytes, max_bytes: int) -> dict[str, Any]:
    """A Telegram Desktop export as ``{"export": ChatExport fields}``, or an error."""
    from services.core.errors import InputTooLarge, NotAnExport
    from services.ingest.chat_export import parse_export

    try:
        return {"export": asdict(parse_export(data, max_bytes))}
    except NotAnExport as error:
        return {"error": "not_export", "detail": str(error)}
    except InputTooLarge as error:
        return {"error": "too_large", "detail": str(error.size)}


def _ocr(header: dict[str, Any], data: bytes) -> dict[str, Any]:
    """An image or a scanned PDF as ``DocumentText`` fields, with the OCR confidence."""
    from services.ingest import ocr

    languages = str(header["languages"])
    max_pixels = int(header["max_pixels"])
    if header["kind"] == "image":
        pages = [ocr.read_image(data, languages, max_pixels)]
        total: int | None = 1
    else:
        pages, total = ocr.read_scan(
            data, Path.cwd(), languages, int(header["max_pages"]), max_pixels, 60.0
        )
    text, words, read, truncated = _collect(
        (page.text for page in pages), int(header["max_chars"])
    )
    if not text.strip():
        raise DocumentUnreadable("no_text_in_image")
    letters = sum(len(page.text) for page in pages) or 1
    confidence = sum(page.confidence * len(page.text) for page in pages) / letters
    cut = truncated or (total is not None and len(pages) < total)
    document = DocumentText(
        text,
        "image" if header["kind"] == "image" else "pdf",
        total,
        words,
        (read if truncated else len(pages)) if cut else None,
        cut,
        round(confidence, 1),
    )
    return asdict(document)


def _audio(header: dict[str, Any], data: bytes) -> bytes:
    """A voice note decoded: the JSON line and the samples (or the error line alone)."""
    from services.ingest import audio

    try:
        decoded = audio.decode(data, Path.cwd(), float(header["max_seconds"]), 600.0)
    except DocumentUnreadable as error:
        return json.dumps({"error": error.reason, "detail": error.detail}).encode()
    except Exception as exc:  # noqa: BLE001 - hostile input may break the decoder any way
        reason = "too_complex" if _out_of_memory(exc) else "damaged"
        return json.dumps({"error": reason, "detail": type(exc).__name__}).encode()
    return json.dumps({"seconds": decoded.seconds}).encode() + b"\n" + decoded.pcm


def main() -> int:
    """Confine this process, then read the request from stdin and answer on stdout."""
    enter_confinement()
    header = json.loads(sys.stdin.buffer.readline())
    data = sys.stdin.buffer.read()  # the bot bounds its size; the budget is for parsing it
    _limit_memory()
    if header["kind"] == "audio":
        sys.stdout.buffer.write(_audio(header, data))
        return 0
    try:
        if header["kind"] == "export":
            result: dict[str, Any] = _export(data, int(header["max_bytes"]))
        elif header["kind"] in ("image", "scan"):
            result = _ocr(header, data)
        else:
            result = asdict(parse(header["kind"], data, int(header["max_chars"])))
    except DocumentUnreadable as error:
        result = {"error": error.reason, "detail": error.detail}
    except RecursionError:
        result = {"error": "too_complex", "detail": "nested too deeply"}
    except Exception as exc:  # noqa: BLE001 - hostile input may break any parser in any way
        if _out_of_memory(exc):
            result = {"error": "too_complex", "detail": "over the memory budget"}
        else:
            result = {"error": "damaged", "detail": type(exc).__name__}
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
