"""Link fetching against page servers on loopback: redirects, caps, and the private-address rule.

Server "public" listens on 127.0.0.2 and the policy names it in ``allowed_addresses``, standing
in for a public site; server "private" listens on 127.0.0.1, which must stay unreachable.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver

from bot.factories import Services
from playground.api import BotAPIEmulator
from services.core.errors import FetchBlocked, UnsupportedFormat
from services.core.executor import ModelExecutor
from services.ingest.documents import ReaderLimits, SandboxedDocumentReader
from services.ingest.fetch import FetchPolicy, WebReader, fetch_url, find_link
from services.summarize.service import build_summary_service
from tests import document_files as files
from tests.conftest import BotFactory

PUBLIC = "127.0.0.2"
PRIVATE = "127.0.0.1"


async def serve(host: str, routes: list[web.RouteDef]) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = next(iter(runner.addresses))[1]
    return runner, int(port)


def respond(body: bytes, content_type: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type)

    return handler


def redirect(location: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPFound(location)

    return handler


async def huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    for _ in range(200):
        await response.write(b"word " * 20_000)
    return response


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="late")


@pytest.fixture
async def sites() -> AsyncIterator[dict[str, Any]]:
    private_runner, private_port = await serve(
        PRIVATE, [web.get("/secret", respond(b"internal admin page", "text/html"))]
    )
    routes = [
        web.get("/article", respond(files.html_with_navigation(), "text/html")),
        web.get("/report.pdf", respond(files.pdf_with_text(2), "application/pdf")),
        web.get("/image", respond(b"\x89PNG", "image/png")),
        web.get("/huge", huge),
        web.get("/slow", slow),
        web.get("/go", redirect("/article")),
        web.get("/loop", redirect("/loop")),
        web.get("/to-private", redirect(f"http://localhost:{private_port}/secret")),
        web.get("/to-private-ip", redirect(f"http://{PRIVATE}:{private_port}/secret")),
    ]
    public_runner, public_port = await serve(PUBLIC, routes)
    yield {"public": f"http://{PUBLIC}:{public_port}", "private_port": private_port}
    await public_runner.cleanup()
    await private_runner.cleanup()


def policy(**changes: Any) -> FetchPolicy:
    values: dict[str, Any] = {"allowed_addresses": frozenset({PUBLIC}), "timeout": 3.0}
    values.update(changes)
    return FetchPolicy(**values)


async def test_article_and_redirect(sites: dict[str, Any]) -> None:
    page = await fetch_url(f"{sites['public']}/go", policy())
    assert page.kind == "html" and page.url.endswith("/article") and not page.truncated
    assert b"Council approves tram plan" in page.data


@pytest.mark.parametrize(
    ("path", "error", "words"),
    [
        ("/to-private", FetchBlocked, "private"),
        ("/to-private-ip", FetchBlocked, "private"),
        ("/loop", FetchBlocked, "redirects"),
        ("/image", UnsupportedFormat, "image/png"),
        ("/slow", FetchBlocked, "did not arrive"),
    ],
)
async def test_refusals(
    sites: dict[str, Any], path: str, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        await fetch_url(f"{sites['public']}{path}", policy(max_redirects=3, timeout=1.5))


async def test_direct_private_targets_are_refused_before_connecting(sites: dict[str, Any]) -> None:
    port = sites["private_port"]
    for url in (
        f"http://{PRIVATE}:{port}/secret",
        f"http://localhost:{port}/secret",
        f"http://[::1]:{port}/",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "gopher://example.org/",
    ):
        with pytest.raises(FetchBlocked):
            await fetch_url(url, policy())


async def test_allow_private_lets_self_hosters_fetch_their_own_pages(
    sites: dict[str, Any],
) -> None:
    page = await fetch_url(
        f"http://localhost:{sites['private_port']}/secret", policy(allow_private=True)
    )
    assert page.data == b"internal admin page"


async def test_body_is_capped(sites: dict[str, Any]) -> None:
    page = await fetch_url(f"{sites['public']}/huge", policy(max_bytes=100_000))
    assert page.truncated and len(page.data) == 100_000


class RebindingResolver(AbstractResolver):
    """Answers the allowed address first, then a private one (DNS rebinding)."""

    def __init__(self, port: int) -> None:
        self.answers = [PUBLIC, PRIVATE]

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[Any]:
        address = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


async def test_dns_rebinding_cannot_reach_the_private_address(sites: dict[str, Any]) -> None:
    port = int(sites["public"].rsplit(":", 1)[1])
    resolver = RebindingResolver(port)
    url = f"http://news.test:{port}/go"  # the redirect to /article resolves the name again
    with pytest.raises(FetchBlocked, match="private"):
        await fetch_url(url, policy(), resolver_factory=lambda: resolver)


def test_find_link() -> None:
    assert find_link("https://example.org/a.html") == "https://example.org/a.html"
    assert find_link("Look: www.example.org/news.") == "https://www.example.org/news"
    assert find_link("word " * 100 + "https://example.org") is None, "long text stays text"
    assert find_link("no link here") is None


async def test_a_link_in_private_is_fetched_and_summarized(
    sites: dict[str, Any],
    emulator: BotAPIEmulator,
    make_bot: BotFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executor = ModelExecutor(1, 4)
    summarizer = build_summary_service(executor, 100_000, default_method="lexrank")
    await make_bot(
        services=Services(summarizer=summarizer, keywords=None, executor=executor),  # type: ignore[arg-type]
        fetch_allowed_addresses=[PUBLIC],
    )
    user = emulator.add_user(50, "Ivy", "en")
    chat = emulator.private_chat(user)
    await emulator.send_text(chat, user, f"{sites['public']}/article")
    reply = await emulator.wait_until(
        lambda: next(
            (m for m in emulator.bot_messages(chat["id"]) if "LexRank" in m["text"]), None
        ),
        timeout=30,
    )
    assert reply["text"].startswith(f"{PUBLIC}/article · ")
    assert "tram" in reply["text"] and "cookies" not in reply["text"]
    await emulator.send_text(
        chat, user, f"/summary http://localhost:{sites['private_port']}/secret"
    )
    refused = await emulator.wait_until(
        lambda: next(
            (m for m in emulator.bot_messages(chat["id"]) if "didn't fetch" in m["text"]), None
        ),
        timeout=30,
    )
    assert "private" in refused["text"]


async def test_web_reader_reads_a_pdf_link(sites: dict[str, Any]) -> None:
    reader = WebReader(policy(), SandboxedDocumentReader(ReaderLimits()))
    name, document = await reader.read_link(f"{sites['public']}/report.pdf")
    assert name == f"{PUBLIC}/report.pdf" and document.kind == "pdf" and document.pages == 2
    async with aiohttp.ClientSession():
        pass
