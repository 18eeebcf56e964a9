"""Fetching a web page or PDF for a summary, without becoming a proxy into private networks.

Policy, checked on every hop (redirects are followed by hand):

- http and https only; at most ``max_redirects`` redirects;
- every address a host name resolves to must be public (not loopback, private, link-local,
  multicast, reserved, unspecified, CGNAT …); IP literals are checked the same way;
- the connection goes to exactly the addresses that were checked (a resolver that filters, so
  a DNS answer that changes between check and connect — rebinding — cannot slip through);
- the body is read up to ``max_bytes`` within ``timeout`` seconds, and only for text/html,
  text/plain and application/pdf.

``allow_private`` lifts the address rule for self-hosters; ``allowed_addresses`` lifts it for
named addresses only (an intranet wiki, say).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from services.core.errors import FetchBlocked, UnsupportedFormat
from services.core.protocols import DocumentReader
from services.core.types import DocumentText
from services.text.splitting import URL_RE

ALLOWED_TYPES = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "txt",
    "application/pdf": "pdf",
}


REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "CondensaBot/0.1 (+summaries on request of a Telegram user)"


@dataclass(frozen=True)
class FetchPolicy:
    """Limits and address rules for fetching."""

    max_redirects: int = 5
    max_bytes: int = 5 * 1024 * 1024
    timeout: float = 15.0
    allow_private: bool = False
    allowed_addresses: frozenset[str] = field(default_factory=frozenset)

    def address_allowed(self, address: str) -> bool:
        """Whether connecting to ``address`` is allowed."""
        if self.allow_private or address in self.allowed_addresses:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class FetchedPage:
    """A fetched document."""

    url: str
    kind: str  # "html", "txt" or "pdf"
    data: bytes
    truncated: bool

    @property
    def name(self) -> str:
        """A display name: host and path."""
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        return f"{parts.hostname}{path}" if path else str(parts.hostname)


class CheckedResolver(AbstractResolver):
    """Resolves with ``inner`` and refuses any answer that contains a forbidden address."""

    def __init__(self, policy: FetchPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Addresses of ``host``, all allowed; :class:`FetchBlocked` otherwise."""
        answers = await self._inner.resolve(host, port, family)
        blocked = [a["host"] for a in answers if not self._policy.address_allowed(a["host"])]
        if blocked or not answers:
            raise FetchBlocked(f"{host} resolves to a private or reserved address")
        return answers

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


def _check_url(url: str, policy: FetchPolicy) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchBlocked(f"only http and https links are fetched, not {parts.scheme or 'this'}")
    if not parts.hostname:
        raise FetchBlocked("the link has no host")
    if parts.username or parts.password:
        raise FetchBlocked("links with credentials are not fetched")
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url  # a name: the resolver checks what it points to
    if not policy.address_allowed(parts.hostname):
        raise FetchBlocked(f"{parts.hostname} is a private or reserved address")
    return url


async def fetch_url(
    url: str,
    policy: FetchPolicy,
    resolver_factory: Callable[[], AbstractResolver] | None = None,
) -> FetchedPage:
    """Fetch ``url`` under ``policy``.

    Raises:
        FetchBlocked: a forbidden scheme, address, redirect count, or a failed fetch.
        UnsupportedFormat: a content type other than HTML, plain text or PDF.
    """
    inner = resolver_factory() if resolver_factory else None
    # No DNS cache and no keep-alive: every hop resolves again, through the checking resolver.
    connector = aiohttp.TCPConnector(
        resolver=CheckedResolver(policy, inner), use_dns_cache=False, force_close=True, limit=4
    )
    timeout = aiohttp.ClientTimeout(total=policy.timeout, sock_connect=min(10, policy.timeout))
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers={"User-Agent": USER_AGENT}
    ) as session:
        try:
            return await asyncio.wait_for(_follow(session, url, policy), policy.timeout)
        except TimeoutError as exc:
            raise FetchBlocked(f"the page did not arrive within {policy.timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, FetchBlocked):
                raise cause from exc
            raise FetchBlocked(f"the page could not be fetched ({type(exc).__name__})") from exc


async def _follow(session: aiohttp.ClientSession, url: str, policy: FetchPolicy) -> FetchedPage:
    current = url
    for _ in range(policy.max_redirects + 1):
        _check_url(current, policy)
        async with session.get(current, allow_redirects=False) as response:
            if response.status in REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise FetchBlocked("a redirect without a target")
                current = urljoin(current, location)
                continue
            if response.status != 200:
                raise FetchBlocked(f"the server answered {response.status}")
            kind = ALLOWED_TYPES.get(response.content_type)
            if kind is None:
                raise UnsupportedFormat(response.content_type or "unknown type")
            declared = response.content_length
            if kind == "pdf" and declared is not None and declared > policy.max_bytes:
                raise FetchBlocked(f"the PDF is larger than {policy.max_bytes:,} bytes")
            data, truncated = await _read_capped(response, policy.max_bytes)
            if kind == "pdf" and truncated:
                raise FetchBlocked(f"the PDF is larger than {policy.max_bytes:,} bytes")
            return FetchedPage(str(response.url), kind, data, truncated)
    raise FetchBlocked(f"more than {policy.max_redirects} redirects")


async def _read_capped(response: Any, max_bytes: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size >= max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


class WebReader:
    """Fetches a link and reads it like a document (main text of pages, text of PDFs)."""

    def __init__(
        self,
        policy: FetchPolicy,
        documents: DocumentReader,
        resolver_factory: Callable[[], AbstractResolver] | None = None,
    ) -> None:
        self.policy = policy
        self._documents = documents
        self._resolver_factory = resolver_factory

    async def read_link(self, url: str) -> tuple[str, DocumentText]:
        """(display name, text) of the page at ``url``; the policy's errors otherwise."""
        page = await fetch_url(url, self.policy, self._resolver_factory)
        extension = {"html": ".html", "pdf": ".pdf", "txt": ".txt"}[page.kind]
        document = await self._documents.read(page.data, f"page{extension}")
        if page.truncated and not document.truncated:
            document = replace(document, truncated=True)
        return page.name, document

    def find_link(self, text: str) -> str | None:
        """The URL a message is about (see :func:`find_link`)."""
        return find_link(text)


def find_link(text: str, max_other_chars: int = 200) -> str | None:
    """The URL a message is about: one that the message is, or mostly is, else None."""
    match = URL_RE.search(text)
    if match is None:
        return None
    rest = (text[: match.start()] + text[match.end() :]).strip()
    if len(rest) > max_other_chars:
        return None
    url = match.group(0).rstrip(".,;:!?)»\"'")
    return url if url.lower().startswith(("http://", "https://")) else f"https://{url}"
