"""The model-server engine against a real HTTP server on loopback that misbehaves on purpose:
refused, slow, 401, unknown model, 429 and 503 with Retry-After, a stream cut mid-answer,
garbage SSE data, a circuit breaker, cancel closing the stream, and /ask through the bot."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.factories import Services
from playground.api import BotAPIEmulator
from services.core.errors import ModelServerError
from services.core.executor import ModelExecutor
from services.core.types import Prompt
from services.llm.engines import GenerationLimits
from services.llm.server import ServerConfig, ServerEngine
from services.llm.service import GenerationService
from services.summarize.service import build_summary_service
from tests.conftest import BotFactory
from tests.test_e2e_chat import UnusedKeywords

WORDS = ["Hello", " world", ", this", " is", " a", " streamed", " answer", "."]


def chunk(text: str) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class FaultyServer:
    """An OpenAI-compatible server whose behaviour is chosen by the requested model name."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.sent_before_disconnect: int | None = None
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_post("/tokenize", self.tokenize)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def tokenize(self, request: web.Request) -> web.Response:
        content = (await request.json())["content"]
        return web.json_response({"tokens": list(range(len(content.split())))})

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body["model"]
        self.requests.append(model)
        if request.headers.get("Authorization") != "Bearer secret" and model == "auth":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        if model == "unknown":
            return web.json_response({"error": {"message": "no such model"}}, status=404)
        if model == "ratelimit":
            return web.json_response(
                {"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "7"}
            )
        if model == "busy":
            return web.json_response(
                {"error": {"message": "busy"}}, status=503, headers={"Retry-After": "3"}
            )
        if model == "slow":
            await asyncio.sleep(3)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if model == "garbage":
            await response.write(b"data: {this is not json\n\n")
            return response
        words = WORDS * (10 if model == "long" else 1)
        for sent, word in enumerate(words):
            if model == "cut" and sent == 2:
                assert request.transport is not None
                request.transport.close()  # the connection dies mid-answer
                return response
            try:
                await response.write(chunk(word))
            except (ConnectionResetError, RuntimeError):
                self.sent_before_disconnect = sent
                return response
            await asyncio.sleep(0.05 if model == "long" else 0)
        await response.write(b"data: [DONE]\n\n")
        return response


@pytest.fixture
async def server() -> AsyncIterator[FaultyServer]:
    faulty = FaultyServer()
    await faulty.start()
    yield faulty
    await faulty.stop()


def engine(url: str, model: str, **options: Any) -> ServerEngine:
    return ServerEngine(ServerConfig(base_url=url, model=model, timeout=1.0, **options))


async def collect(
    target: ServerEngine, cancel: threading.Event | None = None, stop_after: int = 0
) -> tuple[list[str], BaseException | None]:
    """Run the blocking stream in a thread; returns the pieces and the error, if any."""
    pieces: list[str] = []
    cancel = cancel or threading.Event()

    def run() -> BaseException | None:
        try:
            for piece in target.stream(Prompt("Say hello"), 64, 0.0, cancel):
                pieces.append(piece)
                if stop_after and len(pieces) == stop_after:
                    cancel.set()
        except ModelServerError as error:
            return error
        return None

    return pieces, await asyncio.to_thread(run)


async def test_a_normal_answer_streams_piece_by_piece(server: FaultyServer) -> None:
    pieces, error = await collect(engine(server.url, "ok"))
    assert error is None and "".join(pieces) == "".join(WORDS)
    counted = await asyncio.to_thread(engine(server.url, "ok").count_tokens, "one two three")
    assert counted == 3, "the server's /tokenize"


@pytest.mark.parametrize(
    ("model", "kind", "retry_after"),
    [
        ("unknown", "unknown_model", None),
        ("auth", "unauthorized", None),
        ("ratelimit", "rate_limited", 7),
        ("busy", "overloaded", 3),
        ("slow", "timeout", None),
        ("garbage", "bad_response", None),
    ],
)
async def test_every_fault_becomes_one_kind(
    server: FaultyServer, model: str, kind: str, retry_after: int | None
) -> None:
    pieces, error = await collect(engine(server.url, model))
    assert isinstance(error, ModelServerError), error
    assert (error.kind, error.retry_after) == (kind, retry_after)
    assert not pieces


async def test_a_refused_connection_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _, error = await collect(engine(f"http://127.0.0.1:{port}/v1", "ok"))
    assert isinstance(error, ModelServerError) and error.kind == "unreachable"


async def test_a_server_down_at_start_is_used_once_it_is_up() -> None:
    """The first calls find nothing listening; the server then starts on that port and the
    same engine uses it (its answers and its tokenizer) after the breaker's pause, with no
    restart."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = engine(f"http://127.0.0.1:{port}/v1", "ok", failures_to_open=1, reset_seconds=0.5)
    _, error = await collect(target)
    assert isinstance(error, ModelServerError) and error.kind in ("unreachable", "down")
    assert not target.has_tokenizer, "nothing answered the probe"
    late = FaultyServer()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", late.completions)
    app.router.add_post("/tokenize", late.tokenize)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.sleep(0.6)  # the breaker's reset_seconds: the next call is its probe
        pieces, error = await collect(target)
        assert error is None and "".join(pieces) == "".join(WORDS)
        assert late.requests == ["ok"]
        assert await asyncio.to_thread(target.count_tokens, "one two three") == 3
        assert target.has_tokenizer, "the tokenizer is probed again, not cached as missing"
    finally:
        await runner.cleanup()


async def test_a_stream_cut_mid_answer_keeps_what_arrived(server: FaultyServer) -> None:
    pieces, error = await collect(engine(server.url, "cut"))
    assert pieces == WORDS[:2]
    assert isinstance(error, ModelServerError) and error.kind == "cut"


async def test_the_circuit_opens_after_repeated_failures_then_probes(
    server: FaultyServer,
) -> None:
    target = engine(server.url, "busy", failures_to_open=2, reset_seconds=0.5)
    kinds = []
    for _ in range(3):
        _, error = await collect(target)
        assert isinstance(error, ModelServerError)
        kinds.append(error.kind)
    # pybreaker reports the failure that trips the circuit as the open circuit itself.
    assert kinds == ["overloaded", "down", "down"]
    assert server.requests.count("busy") == 2, "an open circuit does not call the server"
    await asyncio.sleep(0.6)
    _, error = await collect(target)
    assert server.requests.count("busy") == 3, "after the pause one probe goes through"


async def test_cancel_closes_the_stream_so_the_server_stops(server: FaultyServer) -> None:
    pieces, error = await collect(engine(server.url, "long"), stop_after=3)
    assert error is None and len(pieces) == 3
    for _ in range(40):
        if server.sent_before_disconnect is not None:
            break
        await asyncio.sleep(0.05)
    assert server.sent_before_disconnect is not None
    assert server.sent_before_disconnect < len(WORDS) * 10


async def test_ask_through_the_bot_streams_and_explains_a_rate_limit(
    server: FaultyServer, emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    limits = GenerationLimits(max_new_tokens=64)
    executor = ModelExecutor()
    services = Services(
        summarizer=build_summary_service(executor, 100_000, "lexrank"),
        keywords=UnusedKeywords(),
        executor=executor,
        generator=GenerationService(engine(server.url, "ok"), ModelExecutor(1, 2), limits),
    )
    await make_bot(services=services)
    user = emulator.add_user(5, "Eve", "en")
    chat = emulator.private_chat(user)
    await emulator.send_text(chat, user, "/ask Say hello")
    final = await emulator.wait_until(
        lambda: [m for m in emulator.bot_messages(5) if m["text"] == "".join(WORDS)], timeout=30
    )
    assert final


async def test_a_rate_limited_ask_says_when_to_retry(
    server: FaultyServer, emulator: BotAPIEmulator, make_bot: BotFactory
) -> None:
    executor = ModelExecutor()
    services = Services(
        summarizer=build_summary_service(executor, 100_000, "lexrank"),
        keywords=UnusedKeywords(),
        executor=executor,
        generator=GenerationService(
            engine(server.url, "ratelimit"), ModelExecutor(1, 2), GenerationLimits()
        ),
    )
    await make_bot(services=services)
    user = emulator.add_user(6, "Eva", "es")
    await emulator.send_text(emulator.private_chat(user), user, "/ask Hola")
    reply = await emulator.wait_until(
        lambda: [m for m in emulator.bot_messages(6) if "limitando" in m["text"]], timeout=30
    )
    assert reply[0]["text"] == (
        "El servidor del modelo de lenguaje está limitando a este bot. "
        "Inténtalo de nuevo dentro de 7 s."
    )
