"""Run one of our own modules in a child Python process (model conversions, built once).

A conversion's transient memory (de-quantized copies, the quantizer's graphs) then never
enters the calling process's heap, where it would stay resident after being freed.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

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


def build_once(
    target: Path,
    module: str,
    source: Path,
    *options: str,
    timeout: float,
    what: str,
    ready: Callable[[Path], bool] = Path.exists,
) -> Path:
    """``target``, made the first time by ``python -m module SOURCE PARTIAL options…``.

    The child writes a partial file or directory beside ``target`` that is renamed into place
    when whole, so workers building at once each install a complete result, or find the one
    another installed (``ready``). ``what`` names the result in the log line.

    Raises:
        ChildFailed, OSError: it could not be built (nothing partial is left behind).
    """
    if ready(target):
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        logger.info("building %s once into %s", what, target)
        run_module(module, str(source), str(partial), *options, timeout=timeout)
        partial.replace(target)
    except (OSError, ChildFailed):
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
        if ready(target):  # another process built it meanwhile
            return target
        raise
    return target
