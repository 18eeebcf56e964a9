"""``/healthz`` and ``/metrics`` (Prometheus text format via ``prometheus-client``).

``/healthz`` answers 200 with every supervised task's state when all are up, 503 when one is
down, restarting, given up or stale. ``/metrics`` exposes updates handled, updates in hand
(the queue depth), task restarts and state, the model server's state, and per command the
latency as a summary with its p50 and p95 over the last 1,000 answers.

Served in every run mode: on ``HEALTH_PORT`` in polling mode and by a worker (0 turns it off),
on the webhook's own port in webhook mode.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from telegram import Update

from bot.delivery.supervisor import Supervisor

logger = logging.getLogger(__name__)

COMMANDS = frozenset(
    {
        "start", "help", "summary", "keywords", "ask", "generate", "cancel", "settings",
        "digest", "digest_on", "digest_off", "schedule", "optout", "optin", "forget",
        "import", "stats", "allow", "deny", "quota",
    }
)  # fmt: skip
"""Commands with their own latency series (anything else is ``other``: labels stay bounded)."""
SAMPLES_KEPT = 1000
"""Latency quantiles are over this many of the latest answers per command."""
QUANTILES = (0.5, 0.95)


def command_label(update: object) -> str:
    """The ``command`` label of an update: a known command, ``document``, ``text``,
    ``button``, ``member`` (joins, leaves, reactions …) or ``other``."""
    if not isinstance(update, Update):
        return "other"
    if update.callback_query is not None:
        return "button"
    message = update.effective_message
    if message is None:
        return "member"
    text = message.text or message.caption or ""
    if text.startswith("/"):
        name = text[1:].split(maxsplit=1)[0].split("@")[0].lower() if len(text) > 1 else ""
        return name if name in COMMANDS else "other"
    if message.document is not None:
        return "document"
    return "text" if text else "other"


class Metrics(Collector):
    """The process's counters, in a registry of its own (several bots may share a process in
    tests).

    Args:
        supervisor: whose tasks are reported.
        in_hand: the number of updates accepted and not yet handled.
        model_server: the model server's circuit state (``closed``/``open``/``half-open``), or
            None without one.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        in_hand: Callable[[], int] = lambda: 0,
        model_server: Callable[[], str] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self._supervisor = supervisor
        self._in_hand = in_hand
        self._model_server = model_server
        self._latencies: dict[str, deque[float]] = {}
        self._sums: dict[str, tuple[int, float]] = {}
        self.updates = Counter(
            "condensa_updates_handled", "Updates handled.", registry=self.registry
        )
        self.restarts = Counter(
            "condensa_task_restarts",
            "Supervised tasks restarted after dying.",
            ["task"],
            registry=self.registry,
        )
        self.registry.register(self)

    def observe(self, update: object, seconds: float) -> None:
        """One update handled in ``seconds``."""
        self.updates.inc()
        label = command_label(update)
        samples = self._latencies.get(label)
        if samples is None:
            samples = self._latencies[label] = deque(maxlen=SAMPLES_KEPT)
        samples.append(seconds)
        count, total = self._sums.get(label, (0, 0.0))
        self._sums[label] = (count + 1, total + seconds)

    def restarted(self, task: str) -> None:
        """A supervised task was restarted."""
        self.restarts.labels(task=task).inc()

    def quantile(self, command: str, q: float) -> float | None:
        """The ``q`` quantile of the latest latencies of ``command`` (None before any)."""
        samples = sorted(self._latencies.get(command, ()))
        if not samples:
            return None
        return samples[min(len(samples) - 1, int(q * len(samples)))]

    def collect(self) -> Iterator[Metric]:
        """The values read at scrape time (for ``prometheus-client``)."""
        depth = GaugeMetricFamily(
            "condensa_updates_in_hand", "Updates accepted and not yet handled (queue depth)."
        )
        depth.add_metric([], self._in_hand())
        yield depth
        up = GaugeMetricFamily(
            "condensa_task_up", "1 when a supervised task runs and beats.", labels=["task"]
        )
        failures = CounterMetricFamily(
            "condensa_job_failures",
            "Runs of a scheduled job (digests, purges) that raised.",
            labels=["job"],
        )
        for name, report in self._supervisor.report().items():
            up.add_metric([name], 1.0 if report["up"] else 0.0)
            if report["state"] == "scheduled" or report["failures"]:
                failures.add_metric([name], report["failures"])
        yield up
        yield failures
        if self._model_server is not None:
            state = self._model_server()
            server = GaugeMetricFamily(
                "condensa_model_server_up",
                "1 while the model server's circuit is closed (in use), 0 when open.",
                labels=["state"],
            )
            server.add_metric([state], 0.0 if state == "open" else 1.0)
            yield server
        latency = SummaryMetricFamily(
            "condensa_command_seconds",
            f"Seconds to answer, per command (quantiles over the last {SAMPLES_KEPT}).",
            labels=["command"],
        )
        for command, (count, total) in sorted(self._sums.items()):
            latency.add_metric([command], count_value=count, sum_value=total)
        yield latency
        quantiles = GaugeMetricFamily(
            "condensa_command_seconds_quantile",
            "p50 and p95 seconds to answer per command, over the latest answers.",
            labels=["command", "quantile"],
        )
        for command in sorted(self._latencies):
            for q in QUANTILES:
                value = self.quantile(command, q)
                if value is not None:
                    quantiles.add_metric([command, str(q)], value)
        yield quantiles


def health_report(supervisor: Supervisor, ready: Callable[[], bool]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of ``/healthz``."""
    ok = ready() and supervisor.healthy()
    return (200 if ok else 503), {"ok": ok, "tasks": supervisor.report()}


def add_health_routes(
    app: web.Application,
    supervisor: Supervisor,
    ready: Callable[[], bool],
    metrics: Metrics | None = None,
) -> None:
    """Serve ``/healthz`` (and ``/metrics`` when given) from ``app``."""

    async def healthz(request: web.Request) -> web.Response:
        status, body = health_report(supervisor, ready)
        return web.json_response(body, status=status)

    async def scrape(request: web.Request) -> web.Response:
        assert metrics is not None
        return web.Response(
            body=generate_latest(metrics.registry),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    app.router.add_get("/healthz", healthz)
    if metrics is not None:
        app.router.add_get("/metrics", scrape)


async def serve_health(
    port: int,
    supervisor: Supervisor,
    ready: Callable[[], bool],
    metrics: Metrics | None = None,
    host: str = "127.0.0.1",
) -> web.AppRunner:
    """Listen on ``host:port`` for ``/healthz`` and ``/metrics``; the runner to clean up."""
    app = web.Application()
    add_health_routes(app, supervisor, ready, metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    logger.info("health and metrics on %s:%d", host, port)
    return runner
