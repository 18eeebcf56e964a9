"""A bounded executor for CPU-bound model calls.

Model work never runs on the event loop. Work is admitted by the wait it would face, not by a
fixed number of slots: with ``max_wait`` set, a call is refused with :class:`Busy` only when the
calls ahead of it would take longer than ``max_wait`` seconds, estimated from measured service
times (an exponentially weighted mean), so a burst of quick summaries all get an answer while a
pile-up behind a slow model is still refused at once. ``queue`` stays a hard cap.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
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
        max_wait: when set, also refuse a call whose expected wait is longer (seconds).
        first_estimate: the service time assumed before any call was measured (seconds).
            Given, admission uses it from the start; left out, a guess of 1 s is only shown
            (the placeholder's "about N s") and nobody is refused by expected wait before a
            call was measured: a cold bot meeting a burst does not turn people away on a guess.
    """

    def __init__(
        self,
        workers: int = 1,
        queue: int = 4,
        max_wait: float | None = None,
        first_estimate: float | None = None,
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.workers = workers
        self.capacity = workers + queue
        self.max_wait = max_wait
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="model")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._service_seconds = 1.0 if first_estimate is None else first_estimate
        self._measured = first_estimate is not None

    def expected_wait(self) -> tuple[int, float]:
        """(calls ahead of a new one, seconds until it would start)."""
        with self._lock:
            ahead = self._in_flight
            service = self._service_seconds
        waiting = max(0, ahead - self.workers + 1)
        return ahead, waiting * service / self.workers

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
            waiting = max(0, self._in_flight - self.workers + 1)
            wait = waiting * self._service_seconds / self.workers
            if self.max_wait is not None and self._measured and wait > self.max_wait:
                raise Busy(f"about {wait:.0f} s of work is queued")
            self._in_flight += 1
        future = loop.run_in_executor(
            self._pool, functools.partial(self._timed, fn, *args, **kwargs)
        )
        future.add_done_callback(self._release)
        return future

    def _timed(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            took = time.perf_counter() - started
            with self._lock:
                self._service_seconds = 0.8 * self._service_seconds + 0.2 * took
                self._measured = True

    def _release(self, _: object) -> None:
        with self._lock:
            self._in_flight -= 1

    def shutdown(self) -> None:
        """Stop accepting work; running calls finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)
