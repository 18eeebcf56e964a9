"""Run one of our own modules in a child Python process (model conversions, built once).

A conversion's transient memory (de-quantized copies, the quantizer's graphs) then never
enters the calling process's heap, where it would stay resident after being freed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


class ChildFailed(Exception):
    """The child could not run or exited with an error; the message ends with its stderr."""


def run_module(module: str, *args: str, timeout: float) -> None:
    """``python -m module args…`` with this interpreter; raises :class:`ChildFailed`."""
    try:
        subprocess.run(  # noqa: S603 - our own interpreter, module and arguments
            [sys.executable, "-m", module, *args],
            check=True,
            capture_output=True,
            timeout=timeout,
            cwd=PROJECT,
        )
    except (OSError, subprocess.SubprocessError) as error:
        detail = (getattr(error, "stderr", b"") or b"").decode(errors="replace")[-300:]
        raise ChildFailed(f"{error} {detail}".strip()) from error
