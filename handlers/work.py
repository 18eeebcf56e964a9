"""Which update the running handler serves (set by the bot's update processor).

A context variable, so tasks a handler starts (a forward batch's timer) carry it along: what
they send is recorded for that update, and a handler can keep its update pending until work it
started later is done.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass
class UpdateWork:
    """The update being handled in this task (a context variable follows it into tasks the
    handler starts)."""

    update_id: int
    sends: int = 0
    deferred: bool = False


current_work: contextvars.ContextVar[UpdateWork | None] = contextvars.ContextVar(
    "condensa_update_work", default=None
)


def defer_current_update() -> int | None:
    """Keep the update being handled pending after its handler returns (it is finished later,
    e.g. by a forward batch, through ``HandlerDeps.finish_updates``); returns its id, None
    outside the update processor."""
    work = current_work.get()
    if work is None:
        return None
    work.deferred = True
    return work.update_id
