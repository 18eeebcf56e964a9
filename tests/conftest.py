"""Shared fixtures: a clean environment, the Bot API emulator, and bots wired to it."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotRuntime
from bot.factories import Services
from bot.settings import Settings
from playground.api import BotAPIEmulator

SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval"

ENGLISH_ARTICLE = (
    "The city council approved a new plan to expand the public transport network on Monday. "
    "The plan adds three tram lines and doubles the number of night buses. "
    "Council members said the expansion would cut traffic and pollution in the city centre. "
    "The project will cost 450 million euros over the next six years. "
    "Most of the money comes from a regional fund and a new tax on parking. "
    "Local businesses welcomed the tram lines but criticised the parking tax. "
    "The mayor said that public transport is the backbone of a modern city. "
    "Construction of the first tram line will start in the spring. "
    "Residents will be able to comment on the routes during a public consultation. "
    "Environmental groups praised the plan but asked for more cycling lanes. "
    "The opposition voted against the plan, arguing that the costs are underestimated. "
    "A final decision on the second and third lines is expected next year."
)

SPANISH_ARTICLE = (
    "El ayuntamiento aprobó el lunes un nuevo plan para ampliar la red de transporte público. "
    "El plan añade tres líneas de tranvía y duplica el número de autobuses nocturnos. "
    "Los concejales dijeron que la ampliación reducirá el tráfico y la contaminación en el centro. "
    "El proyecto costará 450 millones de euros en los próximos seis años. "
    "La mayor parte del dinero procede de un fondo regional y de un nuevo impuesto al aparcamiento. "
    "Los comercios celebraron las líneas de tranvía pero criticaron el impuesto. "
    "El alcalde afirmó que el transporte público es la columna vertebral de una ciudad moderna. "
    "Las obras de la primera línea empezarán en primavera. "
    "Los vecinos podrán opinar sobre los recorridos en una consulta pública. "
    "Los grupos ecologistas elogiaron el plan, aunque pidieron más carriles bici. "
    "La oposición votó en contra y alegó que los costes están infravalorados. "
    "La decisión final sobre la segunda y la tercera línea se espera el año que viene."
)


def long_article(copies: int) -> str:
    """``copies`` of the English article whose sentences all differ (the embedding cache
    embeds a repeated sentence once, so plain copies would cost no more than one): seconds of
    MiniLM work at 30 copies."""
    return " ".join(ENGLISH_ARTICLE.replace(". ", f" (copy {i}). ") for i in range(copies))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the developer's environment or a ``.env`` file."""
    for name in list(os.environ):
        if name.upper() in {f.upper() for f in Settings.model_fields}:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def emulator() -> AsyncIterator[BotAPIEmulator]:
    """A Bot API emulator on an ephemeral loopback port."""
    emu = BotAPIEmulator()
    await emu.start()
    yield emu
    await emu.stop()
    refused = [(c.method, c.error) for c in emu.calls if c.nonconforming]
    assert not refused, f"calls the real Bot API would refuse: {refused}"


@pytest.fixture
async def raw_emulator() -> AsyncIterator[BotAPIEmulator]:
    """An emulator for tests that send non-conforming calls on purpose (no bot is checked)."""
    emu = BotAPIEmulator()
    await emu.start()
    yield emu
    await emu.stop()


def make_settings(emulator: BotAPIEmulator, data_dir: Path, **overrides: Any) -> Settings:
    """Settings pointing at ``emulator``, with fast batching for tests."""
    values: dict[str, Any] = {
        "telegram_bot_token": emulator.token,
        "telegram_api_url": emulator.url,
        "data_dir": data_dir,
        "forward_batch_seconds": 0.4,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


BotFactory = Callable[..., Awaitable[BotRuntime]]

RUNNING: list[BotRuntime] = []
"""The bots ``make_bot`` started for the current test (for :func:`settled`)."""


async def settled(emulator: BotAPIEmulator, seconds: float = 60) -> None:
    """Wait until every update queued so far was taken by the bot (it confirmed an offset past
    the newest) and finished (nothing in hand, nothing running): after this, no reply to them
    is still coming. The event a "nothing more is sent" check waits for, instead of a sleep."""
    newest = emulator.last_update_id

    def done() -> bool:
        taken = any(
            int(c.params.get("offset") or 0) > newest
            for c in emulator.calls
            if c.method == "getUpdates"
        )
        return taken and all(
            r.intake is not None and r.intake.in_hand == 0 and r.processor.running == 0
            for r in RUNNING
        )

    await emulator.wait_until(done, timeout=seconds)


@pytest.fixture
async def make_bot(emulator: BotAPIEmulator, tmp_path: Path) -> AsyncIterator[BotFactory]:
    """Start real Applications polling the emulator; stops them (updater, app) afterwards."""
    runtimes: list[BotRuntime] = []

    async def factory(
        services: Services | None = None,
        clock: Callable[[], float] | None = None,
        **overrides: Any,
    ) -> BotRuntime:
        settings = make_settings(emulator, tmp_path / "data", **overrides)
        runtime = BotRuntime(settings, services=services, warm_up=False, clock=clock or time.time)
        await runtime.start(polling=True, poll_timeout=1)
        await emulator.polling_started.wait()
        runtimes.append(runtime)
        RUNNING.append(runtime)
        return runtime

    yield factory
    for runtime in runtimes:
        await runtime.stop()
        RUNNING.remove(runtime)


@pytest.fixture(scope="session")
def tiny_bart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer BART with a tokenizer trained on the spot (built once per session)."""
    from tests.tiny_models import build_tiny_bart

    return build_tiny_bart(tmp_path_factory.mktemp("tiny-bart"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 with a tokenizer trained on the spot (built once per session)."""
    from tests.tiny_models import build_tiny_gpt2

    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


# ------------------------------------------------------------------ real PostgreSQL and Redis

POSTGRES_ADMIN_DSN = os.environ.get(
    "CONDENSA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("CONDENSA_TEST_REDIS", "redis://127.0.0.1:6379/0")


def server_absent(what: str, error: BaseException) -> None:
    """Skip when a server the test needs is not running, except under CI, where it fails."""
    message = f"{what} is not reachable ({error}); start it (see the README) to run this test"
    if os.environ.get("CI"):
        pytest.fail(message + " — CI must run the PostgreSQL and Redis tests")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin DSN of the local PostgreSQL server (skips, or fails under CI, when absent)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(POSTGRES_ADMIN_DSN)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 5).close()
    except OSError as exc:
        server_absent("PostgreSQL", exc)
    return POSTGRES_ADMIN_DSN


@pytest.fixture
async def postgres_dsn(postgres_server: str) -> AsyncIterator[str]:
    """A throwaway database on the local server, dropped after the test."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import asyncpg

    name = f"condensa_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(postgres_server)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def redis_url() -> AsyncIterator[tuple[str, str]]:
    """(URL, key prefix) on the local Redis; every key under the prefix is deleted after."""
    import secrets

    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = aioredis.from_url(REDIS_TEST_URL)
    try:
        await client.ping()
    except (OSError, RedisConnectionError) as exc:
        await client.aclose()
        server_absent("Redis", exc)
    prefix = f"condensa-test-{secrets.token_hex(6)}"
    yield REDIS_TEST_URL, prefix
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        await client.delete(key)
    await client.aclose()
