"""Reading documents into text. Plain text for now; other formats plug in here."""

from __future__ import annotations

import codecs
from pathlib import PurePosixPath

from services.errors import UnsupportedFormat

TEXT_EXTENSIONS = frozenset({".txt", ".text", ".log", ".md", ""})


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


def read_text_document(data: bytes, name: str) -> str:
    """Text of a plain-text file named ``name``.

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
