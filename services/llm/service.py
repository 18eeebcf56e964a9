"""The generation service: one engine behind the bounded executor, streamed to the caller."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

from services.core.executor import ModelExecutor
from services.core.types import Prompt
from services.llm.engines import Engine, GenerationLimits

SECONDS_GUESS = 10.0
"""The estimated length of one generation before any was measured."""


class GenerationService:
    """Streams generations off the event loop, at most ``executor.workers`` at a time.

    Args:
        engine: the loaded-on-demand engine.
        executor: its own bounded executor (default: one generation, a short queue).
        limits: token and temperature limits.
    """

    def __init__(self, engine: Engine, executor: ModelExecutor, limits: GenerationLimits) -> None:
        self.engine = engine
        self._executor = executor
        self.limits = limits
        self._seconds = SECONDS_GUESS  # moving average of one generation, measured as they end

    def expected_wait(self) -> tuple[int, float]:
        """How many generations are ahead of a new one, and the estimated wait in seconds
        (requests start in arrival order: the executor's queue is first in, first out)."""
        ahead = max(0, self._executor.in_flight - self._executor.workers + 1)
        return ahead, ahead * self._seconds / self._executor.workers

    def _measured(self, seconds: float) -> None:
        self._seconds = 0.7 * self._seconds + 0.3 * seconds

    def _truncate(self, prompt: Prompt) -> Prompt:
        budget = self.limits.max_prompt_tokens
        if not prompt.context or self.engine.count_tokens(prompt.context) <= budget:
            return prompt
        words = prompt.context.split()
        low, high = 0, len(words)
        while low < high:  # the longest prefix of the context that fits, with its marker
            middle = (low + high + 1) // 2
            if self.engine.count_tokens(" ".join(words[:middle]) + " …") <= budget:
                low = middle
            else:
                high = middle - 1
        return Prompt(prompt.text, prompt.instruct, " ".join(words[:low]) + " …", prompt.system)

    async def stream(
        self, prompt: Prompt, cancel: threading.Event, max_new_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Yield text pieces as the model writes them.

        Raises:
            Busy: at once, when every generation slot and queue place is taken.
            ModelUnavailable: the model cannot be loaded.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        tokens = min(max_new_tokens or self.limits.max_new_tokens, self.limits.max_new_tokens)

        def produce() -> None:
            started = time.monotonic()
            try:
                for piece in self.engine.stream(
                    self._truncate(prompt), tokens, self.limits.temperature, cancel
                ):
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                self._measured(time.monotonic() - started)
                loop.call_soon_threadsafe(queue.put_nowait, None)

        future = self._executor.submit(produce)
        finished = False
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
            finished = True
        finally:
            if not finished:
                cancel.set()  # the consumer left early: stop the model too
            await asyncio.shield(future)

    async def complete(self, prompt: Prompt, max_new_tokens: int | None = None) -> str:
        """The whole generation as one string."""
        parts = [piece async for piece in self.stream(prompt, threading.Event(), max_new_tokens)]
        return "".join(parts).strip()
