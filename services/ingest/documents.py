"""Reading documents into text: type detection by content, one maintained library per format,
and parsing in a separate process with a wall-clock timeout and a memory limit.

Formats: plain text and Markdown (any common encoding), HTML (main text by trafilatura), PDF
(pypdf), DOCX with tables (python-docx), ODT (odfpy), RTF (striprtf), EPUB (ebooklib); photos,
screenshots and scanned PDFs by OCR (Tesseract, :mod:`services.ingest.ocr`). CSV and other
archives are refused politely. ZIP-based formats are read in memory, never extracted, and
refused when their members would expand past a limit (zip bombs).

The parsing itself happens in :mod:`services.ingest.sandbox`, a child process started per
document with ``RLIMIT_AS`` set and killed when the time budget runs out: a PDF with an endless
page tree or a DOCX that expands to gigabytes costs at most that budget.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import zipfile
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any

from services.core.errors import DocumentUnreadable, UnsupportedFormat
from services.core.types import DocumentText
from services.ingest.ocr import is_image, tesseract_languages

logger = logging.getLogger(__name__)
TEXT_EXTENSIONS = frozenset({".txt", ".text", ".log", ".md", ".markdown", ""})
REFUSED_EXTENSIONS = {".csv": "CSV", ".tsv": "TSV", ".xlsx": "spreadsheet", ".xls": "spreadsheet"}
SUPPORTED = ("txt", "md", "html", "pdf", "docx", "odt", "rtf", "epub", "image")


_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)


MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_MEMBER_BYTES = 100 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200


def decode_text(data: bytes) -> str:
    """Decode a text file: BOM-marked UTF-8/UTF-16, else UTF-8, else Windows-1252/Latin-1."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _zip_kind(data: bytes) -> str:
    """The container type from the ZIP directory alone: nothing is decompressed here (a
    hostile member may inflate to gigabytes). ODF and EPUB store ``mimetype`` uncompressed
    first, so reading it is a copy of at most 100 bytes, not an inflation."""
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            names = set(archive.namelist())
            info = archive.getinfo("mimetype") if "mimetype" in names else None
            if info is not None and info.compress_type == zipfile.ZIP_STORED:
                with archive.open(info) as member:
                    mimetype = member.read(100).strip()
                if mimetype == b"application/vnd.oasis.opendocument.text":
                    return "odt"
                if mimetype == b"application/epub+zip":
                    return "epub"
            if "word/document.xml" in names:
                return "docx"
            if "content.xml" in names and "META-INF/manifest.xml" in names:
                return "odt"  # a compressed mimetype: the sandbox checks the rest
            if "META-INF/container.xml" in names:
                return "epub"
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError):
        return "damaged-zip"
    return "zip"


def detect_kind(data: bytes, name: str) -> str:
    """The document type by its content (magic bytes), the name only breaking ties.

    Raises:
        UnsupportedFormat: CSV, spreadsheets, archives, images and other binary files.
    """
    suffix = PurePosixPath(name).suffix.lower()
    head = data[:2048]
    if head.startswith(b"%PDF-") or b"%PDF-" in head[:1024]:
        return "pdf"
    if is_image(head):
        return "image"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith(b"PK\x03\x04"):
        kind = _zip_kind(data)
        if kind in ("docx", "odt", "epub"):
            return kind
        if kind == "damaged-zip":
            raise DocumentUnreadable("damaged", "not a valid ZIP container")
        raise UnsupportedFormat(suffix or "zip")
    if suffix in REFUSED_EXTENSIONS:
        raise UnsupportedFormat(suffix)
    is_utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in head and not is_utf16:
        raise UnsupportedFormat(suffix or "binary")
    text_head = head if not is_utf16 else decode_text(head).encode("utf-8", "replace")
    if _HTML_START.match(text_head.lstrip(codecs.BOM_UTF8)) or suffix in (".html", ".htm"):
        return "html"
    return "md" if suffix in (".md", ".markdown") else "txt"


def check_zip(data: bytes) -> None:
    """Refuse ZIP containers whose members would expand too far (a zip bomb)."""
    total = 0
    with zipfile.ZipFile(BytesIO(data)) as archive:
        for info in archive.infolist():
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if (
                info.file_size > MAX_MEMBER_BYTES
                or total > MAX_UNCOMPRESSED_BYTES
                or (ratio > MAX_COMPRESSION_RATIO and info.file_size > 10 * 1024 * 1024)
            ):
                raise DocumentUnreadable("too_complex", "the archive expands too far")


def read_text_document(data: bytes, name: str) -> str:
    """Text of a plain-text file named ``name`` (no subprocess needed).

    Raises:
        UnsupportedFormat: the name says another format, or the bytes are binary.
    """
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in TEXT_EXTENSIONS:
        raise UnsupportedFormat(suffix)
    is_utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in data[:4096] and not is_utf16:
        raise UnsupportedFormat("binary")
    return decode_text(data)


@dataclass(frozen=True)
class ReaderLimits:
    """The budget of one document.

    Attributes:
        timeout: wall-clock seconds for the child process.
        memory_mb: address-space limit of the child process.
        max_chars: text beyond this is cut (the document is then "truncated").
    """

    timeout: float = 20.0
    memory_mb: int = 1024
    max_chars: int = 100_000
    hidden: tuple[Path, ...] = ()
    """Directories the child must not see (the bot's data directory)."""
    max_ocr_pages: int = 10
    """Pages of a scanned PDF read by OCR; the rest are left out (and said so)."""
    max_pixels: int = 40_000_000
    """An image (or a rendered page) larger than this is refused before it is decoded."""
    ocr_seconds_per_page: float = 15.0
    """The time budget of OCR grows with the pages it reads."""
    cpu_seconds: int | None = None
    """CPU seconds of the child and what it runs (None: only the wall-clock budget)."""


async def run_sandboxed(
    header: dict[str, object], data: bytes, limits: ReaderLimits
) -> dict[str, Any]:
    """Run ``python -m services.ingest.sandbox`` on ``data`` under ``limits``; its JSON answer
    ({} when it died: killed by the memory cap, or crashed on hostile input).

    Raises:
        DocumentUnreadable: over the time budget.
    """
    # Imported here: the child imports this module too, and asyncio is a quarter of its
    # start-up (~25 ms of every document's parse).

    returncode, stdout = await run_confined("services.ingest.sandbox", header, data, limits)
    try:
        result = json.loads(stdout.decode() or "{}")
    except ValueError:
        result = {}
    if returncode != 0:
        logger.warning("sandboxed parser failed (exit %s)", returncode)
    return result if isinstance(result, dict) and returncode == 0 else {}


async def run_confined(
    module: str, header: dict[str, object], data: bytes, limits: ReaderLimits
) -> tuple[int, bytes]:
    """Run ``python -m module`` confined (``services.ingest.confinement``: no secrets, no
    network, a read-only view without the data directory) with the header line and ``data``
    on its stdin; (exit status, stdout).

    Raises:
        DocumentUnreadable: over the time budget.
    """
    import asyncio
    import shutil
    import tempfile

    from services.ingest.confinement import confined_child

    private = Path(tempfile.mkdtemp(prefix="condensa-parse-"))
    try:
        own = {"CONDENSA_MEMORY_MB": str(limits.memory_mb), "OMP_THREAD_LIMIT": "1"}
        if limits.cpu_seconds:
            own["CONDENSA_CPU_SECONDS"] = str(limits.cpu_seconds)
        command, env = await asyncio.to_thread(confined_child, module, private, limits.hidden, own)
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=private,
        )
        try:
            stdout, _ = await asyncio.wait_for(
                process.communicate(json.dumps(header).encode() + b"\n" + data), limits.timeout
            )
        except TimeoutError as exc:
            process.kill()
            await process.wait()
            raise DocumentUnreadable("too_complex", "over the time budget") from exc
        return process.returncode or 0, stdout
    finally:
        shutil.rmtree(private, ignore_errors=True)


class SandboxedDocumentReader:
    """Reads documents in a child process under :class:`ReaderLimits` (the DocumentReader)."""

    def __init__(self, limits: ReaderLimits | None = None) -> None:
        self.limits = limits or ReaderLimits()

    async def read(self, data: bytes, name: str, language: str | None = None) -> DocumentText:
        """Text of ``data`` (a file called ``name``); photos and scanned PDFs by OCR in
        ``language`` (English and Spanish when None).

        Raises:
            UnsupportedFormat: refused formats (CSV, archives, binaries).
            DocumentUnreadable: encrypted, damaged, no text even by OCR, or over the budget.
        """
        kind = detect_kind(data, name)
        if kind in ("docx", "odt", "epub"):
            try:
                check_zip(data)
            except zipfile.BadZipFile as exc:
                raise DocumentUnreadable("damaged", "broken ZIP container") from exc
        if kind == "image":
            return await self._ocr("image", data, language, pages=1)
        try:
            return await self._parse({"kind": kind}, data, self.limits)
        except DocumentUnreadable as error:
            if kind != "pdf" or error.reason != "no_text":
                raise
        return await self._ocr("scan", data, language, pages=self.limits.max_ocr_pages)

    async def _ocr(self, kind: str, data: bytes, language: str | None, pages: int) -> DocumentText:
        header = {
            "kind": kind,
            "languages": tesseract_languages(language),
            "max_pages": pages,
            "max_pixels": self.limits.max_pixels,
        }
        budget = self.limits.timeout + self.limits.ocr_seconds_per_page * pages
        return await self._parse(header, data, replace(self.limits, timeout=budget))

    async def _parse(
        self, header: dict[str, object], data: bytes, limits: ReaderLimits
    ) -> DocumentText:
        result = await run_sandboxed({**header, "max_chars": self.limits.max_chars}, data, limits)
        if "error" in result:
            raise DocumentUnreadable(result["error"], result.get("detail", ""))
        if "text" not in result:
            # Killed by the memory limit or crashed on hostile input.
            raise DocumentUnreadable("too_complex", "over the memory budget or crashed")
        return DocumentText(**result)
