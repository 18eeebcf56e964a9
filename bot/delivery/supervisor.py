"""One supervisor for every long-lived task: nothing dies quietly.

A task that raises is logged with its traceback and started again after a back-off (0.5 s,
doubling to 30 s); one that keeps dying (more than ``max_failures`` times within ``window``
seconds) is given up and :attr:`Supervisor.failed` is set, so the run mode exits non-zero and
systemd or the orchestrator restarts the process instead of it limping on. A task may report
heartbeats (:meth:`Supervisor.beat`); one silent for longer than its ``stale_after`` counts as
down. Jobs of PTB's job queue (schedules, purges) are not tasks of ours: the supervisor is told
what to expect of them (:meth:`Supervisor.expect`) and how each run ended (:meth:`Supervisor.ran`);
one that has not run to its end within its ``stale_after`` counts as down, so a purge that fails
every time, or a job queue that stopped firing, turns ``/healthz`` to 503.
``/healthz`` and ``/metrics`` (``bot.delivery.health``) read :meth:`Supervisor.report`.

Hand-written rather than taken from a library: it is a loop of a dozen lines around
``asyncio`` tasks, and what matters is how it reports (heartbeats, the give-up signal), which
is ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class TaskState:
    """What the supervisor knows of one task."""

    name: str
    stale_after: float | None
    state: str = "starting"
    """``running``, ``restarting`` (waiting out its back-off), ``failed`` or ``stopped``; a
    job is ``scheduled`` until it stops."""
    restarts: int = 0
    failures: int = 0
    """Jobs only: runs that raised."""
    runs: int = 0
    """Jobs only: runs that ended well."""
    last_beat: float = field(default_factory=time.monotonic)
    last_error: str = ""

    def up(self, now: float) -> bool:
        """Running, and (when it beats) heard from recently."""
        if self.state not in ("running", "scheduled"):
            return False
        return self.stale_after is None or now - self.last_beat <= self.stale_after


class Supervisor:
    """Runs long-lived tasks, restarts them when they die, reports their health.

    Args:
        max_failures: failures tolerated within ``window`` seconds before giving up.
        window: see ``max_failures``.
        first_delay / max_delay: the restart back-off (doubling).
        on_restart: called with a task's name each time it is restarted (metrics).
    """

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 300.0,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        self._max_failures = max_failures
        self._window = window
        self.first_delay = first_delay
        self._max_delay = max_delay
        self._on_restart = on_restart
        self._states: dict[str, TaskState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._retiring: set[str] = set()
        self.failed = asyncio.Event()
        """Set when a task was given up: the process should exit non-zero."""

    def run(
        self,
        name: str,
        work: Callable[[], Awaitable[Any]],
        stale_after: float | None = None,
    ) -> None:
        """Run ``work()`` as the task ``name``, again whenever it raises (or returns).

        Args:
            name: unique; shown by ``/healthz`` and ``/metrics``.
            work: makes the task's coroutine (called again for each restart).
            stale_after: with heartbeats, seconds of silence after which the task is down.
        """
        if name in self._tasks and not self._tasks[name].done():
            raise ValueError(f"task {name} is already supervised")
        state = self._states[name] = TaskState(name, stale_after)
        self._tasks[name] = asyncio.create_task(self._keep(state, work), name=name)

    def beat(self, name: str) -> None:
        """``name`` is alive and making progress."""
        state = self._states.get(name)
        if state is not None:
            state.last_beat = time.monotonic()

    def expect(self, name: str, stale_after: float | None) -> None:
        """A job the job queue runs: down when no run of it ended well for ``stale_after``
        seconds (counted from now, so a job has that long for its first run); None: its runs
        are only reported (a daily digest per group fires at its own times)."""
        self._states[name] = TaskState(name, stale_after, state="scheduled")

    def ran(self, name: str, error: BaseException | None = None) -> None:
        """A run of the job ``name`` ended: well (a heartbeat) or with ``error``."""
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = TaskState(name, None, state="scheduled")
        if error is None:
            state.last_beat = time.monotonic()
            state.runs += 1
            return
        state.failures += 1
        state.last_error = f"{type(error).__name__}: {error}"[:300]

    def report(self) -> dict[str, dict[str, Any]]:
        """Every task's state, restarts (jobs: runs that ended well and that failed), seconds
        since its last heartbeat, and whether it is up."""
        now = time.monotonic()
        return {
            name: {
                "state": state.state,
                "up": state.up(now),
                "restarts": state.restarts,
                "failures": state.failures,
                "runs": state.runs,
                "seconds_since_beat": round(now - state.last_beat, 1),
                "last_error": state.last_error,
            }
            for name, state in self._states.items()
        }

    def healthy(self) -> bool:
        """Every supervised task is up."""
        now = time.monotonic()
        return not self.failed.is_set() and all(s.up(now) for s in self._states.values())

    async def stop(self, seconds: float = 5.0) -> None:
        """Cancel every task and wait for them, ``seconds`` at most (a task inside a command
        that must run to its end, such as a shielded Redis call, is left to finish alone)."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await _wait_cancelled(tasks, seconds)
        for state in self._states.values():
            if state.state != "failed":
                state.state = "stopped"

    async def finish(self, name: str, seconds: float) -> None:
        """Let ``name`` end on its own (returning is then no failure); cancel it after
        ``seconds``."""
        task = self._tasks.get(name)
        if task is None:
            return
        self._retiring.add(name)
        done, _ = await asyncio.wait([task], timeout=seconds)
        if not done:
            await self.cancel(name)
            return
        self._tasks.pop(name, None)
        state = self._states.pop(name, None)
        if state is not None and state.state != "failed":
            state.state = "stopped"
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def cancel(self, name: str) -> None:
        """Stop supervising ``name`` (its task is cancelled and awaited)."""
        task = self._tasks.pop(name, None)
        state = self._states.pop(name, None)
        if task is not None:
            task.cancel()
            await _wait_cancelled([task], 5.0)
        if state is not None:
            state.state = "stopped"

    async def _keep(self, state: TaskState, work: Callable[[], Awaitable[Any]]) -> None:
        failures: deque[float] = deque()
        delay: float | None = None
        while True:
            state.state = "running"
            state.last_beat = started = time.monotonic()
            try:
                await work()
            except asyncio.CancelledError:
                state.state = "stopped"
                raise
            except Exception as exc:
                state.last_error = f"{type(exc).__name__}: {exc}"[:300]
                logger.exception("task %s died", state.name)
            else:
                if self._stopping or state.name in self._retiring:
                    state.state = "stopped"
                    return
                state.last_error = "returned"
                logger.error("task %s ended on its own", state.name)
            now = time.monotonic()
            if delay is None or now - started > 2 * self._max_delay:
                delay = self.first_delay  # first failure, or it had been running well
            failures.append(now)
            while failures and now - failures[0] > self._window:
                failures.popleft()
            if len(failures) > self._max_failures:
                state.state = "failed"
                logger.critical(
                    "task %s died %d times in %.0f s: giving up (the process exits so that "
                    "its supervisor restarts it)",
                    state.name,
                    len(failures),
                    self._window,
                )
                self.failed.set()
                return
            state.state = "restarting"
            state.restarts += 1
            if self._on_restart is not None:
                self._on_restart(state.name)
            logger.warning("restarting task %s in %.1f s", state.name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_delay)


async def _wait_cancelled(tasks: list[asyncio.Task[None]], seconds: float) -> None:
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in done:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
    for task in pending:
        logger.warning(
            "task %s did not stop within %.0f s; left to finish", task.get_name(), seconds
        )
