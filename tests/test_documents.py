"""Documents: every format from real files made on the spot, hostile files, and fuzzing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.errors import CondensaError, UnsupportedFormat
from services.ingest.documents import (
    DocumentUnreadable,
    ReaderLimits,
    SandboxedDocumentReader,
    detect_kind,
)
from tests import document_files as files

REPO = str(Path(__file__).resolve().parents[1])
READER = SandboxedDocumentReader(ReaderLimits(timeout=15, memory_mb=1024, max_chars=100_000))


def read(data: bytes, name: str, reader: SandboxedDocumentReader = READER):  # type: ignore[no-untyped-def]
    return asyncio.run(reader.read(data, name))


def test_pdf_with_a_text_layer() -> None:
    document = read(files.pdf_with_text(3), "report.pdf")
    assert (document.kind, document.pages) == ("pdf", 3)
    assert "Page 3." in document.text and "450 million euros" in document.text
    assert document.page_unit == "pages" and document.words > 0


def test_docx_keeps_paragraph_order_and_tables() -> None:
    document = read(files.docx_with_table(), "plan.docx")
    lines = document.text.split("\n\n")
    assert lines[0] == "Tram plan"
    assert "Line | Cost" in lines and "T1 | 150 million" in lines
    assert lines.index("T1 | 150 million") < lines.index(files.PARAGRAPHS[2])


def test_odt_rtf_epub_and_latin1(tmp_path: Path) -> None:
    odt = read(files.odt_document(), "plan.odt")
    assert odt.kind == "odt" and odt.text.split("\n\n")[:2] == ["Tram plan", files.PARAGRAPHS[0]]
    rtf = read(files.rtf_document(), "plan.rtf")
    assert rtf.kind == "rtf" and files.PARAGRAPHS[3] in rtf.text
    epub = read(files.epub_document(tmp_path), "plan.epub")
    assert epub.kind == "epub" and files.PARAGRAPHS[3] in epub.text
    latin1 = read(files.latin1_text(), "noticia.txt")
    assert "aprobó" in latin1.text and "Costará" in latin1.text


def test_html_main_text_without_navigation() -> None:
    document = read(files.html_with_navigation(), "page.html")
    assert files.PARAGRAPHS[0] in document.text
    for noise in ("Sport", "Weather", "cookies", "Privacy policy"):
        assert noise not in document.text


def test_type_comes_from_content_not_name() -> None:
    assert detect_kind(files.pdf_with_text(1), "notes.txt") == "pdf"
    assert detect_kind(files.docx_with_table(), "report.pdf") == "docx"
    assert detect_kind(files.html_with_navigation(), "page") == "html"
    assert read(files.docx_with_table(), "renamed.txt").kind == "docx"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"name,age\nAna,30\n", "people.csv"),
        (b"PK\x03\x04" + b"\x00" * 60, "archive.zip"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "photo.png"),
    ],
)
def test_refused_formats(data: bytes, name: str) -> None:
    with pytest.raises((UnsupportedFormat, DocumentUnreadable)):
        read(data, name)


@pytest.mark.parametrize(
    ("make", "reason"),
    # A scan is read by OCR now: drawings alone hold no text to find.
    [(files.encrypted_pdf, "encrypted"), (files.scanned_pdf, "no_text_in_image")],
)
def test_encrypted_and_scanned_pdfs_are_recognised(make, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DocumentUnreadable) as caught:
        read(make(), "file.pdf")
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "make", [files.docx_zip_bomb, files.pdf_with_cyclic_page_tree, files.pdf_deeply_nested]
)
def test_bombs_are_refused_within_the_budget(make) -> None:  # type: ignore[no-untyped-def]
    data = make()
    assert len(data) < 1_000_000, "a few hundred KB at most"
    started = time.monotonic()
    with pytest.raises(DocumentUnreadable) as caught:
        read(
            data,
            "hostile.docx" if data.startswith(b"PK") else "hostile.pdf",
            SandboxedDocumentReader(ReaderLimits(timeout=5, memory_mb=512)),
        )
    assert time.monotonic() - started < 6
    assert caught.value.reason in ("too_complex", "damaged")


def test_time_budget_kills_a_slow_parse() -> None:
    slow = SandboxedDocumentReader(ReaderLimits(timeout=0.3, memory_mb=1024))
    data = files.pdf_with_text(400)
    started = time.monotonic()
    with pytest.raises(DocumentUnreadable) as caught:
        read(data, "big.pdf", slow)
    assert caught.value.reason == "too_complex"
    assert time.monotonic() - started < 2


def test_memory_budget_stops_a_parse() -> None:
    tiny = SandboxedDocumentReader(ReaderLimits(timeout=15, memory_mb=16))
    with pytest.raises(DocumentUnreadable) as caught:
        read(files.docx_with_table(), "plan.docx", tiny)
    assert caught.value.reason == "too_complex"


@pytest.mark.parametrize("memory_mb", range(16, 52, 4))
def test_an_intact_document_under_any_budget_is_read_or_too_complex_never_damaged(
    memory_mb: int,
) -> None:
    # Running out of address space shows up as many exceptions (MemoryError, an import's
    # SystemError, OSError ENOMEM, a libxml2 "syntax error"), at budgets that depend on the
    # interpreter's own footprint; an intact file must never be called damaged because of it.
    limited = SandboxedDocumentReader(ReaderLimits(timeout=15, memory_mb=memory_mb))
    reason = "read"
    try:
        document = read(files.docx_with_table(), "plan.docx", limited)
    except DocumentUnreadable as error:
        reason = error.reason
    else:
        assert "Tram plan" in document.text
    assert reason in ("read", "too_complex"), (memory_mb, reason)


def test_long_documents_are_cut_and_say_how_much_was_read() -> None:
    short = SandboxedDocumentReader(ReaderLimits(max_chars=2000))
    document = read(files.pdf_with_text(20), "long.pdf", short)
    assert document.truncated and document.pages == 20
    assert document.pages_read is not None and 1 <= document.pages_read < 20
    assert len(document.text) <= 2000


MAGIC = [
    b"%PDF-1.7\n",
    b"{\\rtf1 ",
    b"PK\x03\x04",
    b"<!DOCTYPE html><html>",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    magic=st.sampled_from(MAGIC),
    body=st.binary(max_size=3000),
    name=st.sampled_from(["a.pdf", "a.docx", "a.txt", "a.html", "a.odt", "a"]),
)
def test_fuzzed_files_give_text_or_a_clean_error(magic: bytes, body: bytes, name: str) -> None:
    reader = SandboxedDocumentReader(ReaderLimits(timeout=5, memory_mb=512))
    started = time.monotonic()
    try:
        document = asyncio.run(reader.read(magic + body, name))
    except CondensaError:
        pass
    else:
        assert isinstance(document.text, str)
    assert time.monotonic() - started < 6


def odt_mimetype_bomb(inflated: int = 512 * 1024 * 1024) -> bytes:
    """An ODT whose ``mimetype`` member is deflated and inflates to ``inflated`` bytes."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("mimetype")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            chunk = b"application/vnd.oasis.opendocument.text" + bytes(8 * 1024 * 1024 - 39)
            for _ in range(inflated // len(chunk)):
                member.write(chunk)
        archive.writestr("content.xml", "<office:document-content/>")
        archive.writestr("META-INF/manifest.xml", "<manifest/>")
    return buffer.getvalue()


def test_an_odt_mimetype_bomb_is_never_inflated_in_the_bot_process() -> None:
    import tracemalloc

    bomb = odt_mimetype_bomb()
    assert len(bomb) < 2 * 1024 * 1024
    tracemalloc.start()
    try:
        assert detect_kind(bomb, "report.odt") == "odt"  # from the ZIP directory alone
        with pytest.raises(CondensaError):
            asyncio.run(SandboxedDocumentReader().read(bomb, "report.odt"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, f"the bot process allocated {peak:,} bytes"


async def test_a_parsed_file_cannot_reach_secrets_the_data_directory_or_the_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The confined child runs a probe in the parser's place, with the parser's set-up."""
    import json
    import secrets
    import socket

    from services.ingest.confinement import namespaces_available
    from services.ingest.documents import run_confined

    data = tmp_path / "data"
    data.mkdir()
    (data / "condensa.sqlite3").write_bytes(b"SQLite format 3\x00 sealed rows")
    secret = f"s3cret-{secrets.token_hex(8)}"
    for name in ("STORAGE_KEY", "DATABASE_URL", "REDIS_URL", "LLM_API_KEY", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.setenv(name, f"{name}-{secret}")
    monkeypatch.setenv("PYTHONPATH", REPO)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        header = {
            "secret": secret,
            "hidden": str(data),
            "port": listener.getsockname()[1],
            "outside": str(tmp_path / "planted.txt"),
        }
        code, out = await run_confined(
            "tests.sandbox_probe", header, b"", ReaderLimits(timeout=30, hidden=(data,))
        )
    assert code == 0, out
    report = json.loads(out)
    assert report["env_secrets"] == [], "no secret in the child's environment"
    assert report["socket"].startswith("refused"), report["socket"]
    assert report["write_private"].startswith("ok")
    assert namespaces_available() or not os.environ.get("CI"), "CI runs on Linux with unshare"
    if namespaces_available():
        assert report["proc_environ_leaks"] == 0, "the bot's /proc/PID/environ is out of reach"
        assert report["data_dir"] == "ok: []", "the data directory is an empty tmpfs"
        assert report["database"].startswith("refused")
        assert report["write_outside"].startswith("refused")
        assert not (tmp_path / "planted.txt").exists()
