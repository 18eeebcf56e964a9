"""The system programs a confined child runs on untrusted files (FFmpeg, Tesseract, poppler)."""

from __future__ import annotations

import shutil

from services.core.errors import DocumentUnreadable


def program(name: str) -> str:
    """The full path of a system program the child runs.

    Raises:
        DocumentUnreadable: ``no_decoder`` when it is not installed (the README's set-up
            installs FFmpeg, Tesseract and poppler).
    """
    found = shutil.which(name)
    if found is None:
        raise DocumentUnreadable("no_decoder", f"{name} is not installed")
    return found
