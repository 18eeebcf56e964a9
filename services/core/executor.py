"""A bounded executor for CPU-bound model calls.

Model work never runs on the event loop. When every worker is busy and the waiting queue is
full, ``run`` raises :class:`Busy` at once, so a flood of requests is refused quickly instead of
piling up behind a slow model.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from services.core.errors import Busy

P = ParamSpec("P")
R = TypeVar("R")


class ModelExecutor:
    """Runs blocking callables in a fixed thread pool with a bounded backlog.

    Args:
        workers: threads that run model calls at the same time.
        queue: calls allowed to wait for a free worker before new ones get ``Busy``.
    """

    def __init__(self, workers: int = 1, queue: int = 4) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.workers = workers
        self.capacity = workers + queue
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="model")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Calls running or waiting now."""
        return self._in_flight

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn`` in the pool; raise :class:`Busy` at once when the backlog is full."""
        return await self.submit(fn, *args, **kwargs)

    def submit(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[R]:
        """Start ``fn`` in the pool and return its future; raise :class:`Busy` right here
        (not when awaited) when the backlog is full. Needs a running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._in_flight >= self.capacity:
                raise Busy("model queue is full")
            self._in_flight += 1
        future = loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
        future.add_done_callback(self._release)
        return future

    def _release(self, _: object) -> None:
        with self._lock:
            self._in_flight -= 1

    def shutdown(self) -> None:
        """Stop accepting work; running calls finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)
