"""Progress of a long loop: a tqdm bar on a terminal, one line per 10 % in a log.

A bar redrawn into a file or a CI log becomes hundreds of lines of carriage returns; when
stderr is not a terminal the same loop prints ``eval lexrank: 30 % (30/100 doc, 12 s)`` at
every tenth, eleven lines at most.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TextIO, TypeVar

T = TypeVar("T")


def progress(
    items: Iterable[T],
    desc: str,
    unit: str = "it",
    enabled: bool = True,
    stream: TextIO | None = None,
) -> Iterator[T]:
    """Iterate ``items`` showing progress on ``stream`` (stderr by default)."""
    out = stream or sys.stderr
    if not enabled:
        yield from items
        return
    if out.isatty():
        from tqdm import tqdm

        yield from tqdm(items, desc=desc, unit=unit, file=out)
        return
    total = len(items) if isinstance(items, Sized) else 0
    started = time.monotonic()
    shown = -1
    done = 0
    for item in items:
        yield item
        done += 1
        if not total:
            continue
        tenth = done * 10 // total
        if tenth > shown:
            shown = tenth
            elapsed = time.monotonic() - started
            print(
                f"{desc}: {tenth * 10} % ({done}/{total} {unit}, {elapsed:.0f} s)",
                file=out,
                flush=True,
            )
    if not total:
        print(f"{desc}: {done} {unit} in {time.monotonic() - started:.0f} s", file=out)
