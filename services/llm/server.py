"""Any OpenAI-compatible model server as the LLM (llama.cpp's server, vLLM, Ollama, hosted APIs).

The maintained ``openai`` client speaks the protocol (chat completions, streamed); this module
adds what a bot needs around it: every failure becomes one :class:`ModelServerError` with a
kind the handlers turn into a sentence (and a ``retry_after`` when the server gave one), a
circuit breaker (``pybreaker``) stops calling a server that keeps failing and lets one probe
through after a pause, ``cancel`` closes the stream so the server stops generating, and prompt
budgets use the server's own tokenizer when it offers one (llama.cpp's ``/tokenize``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pybreaker

from services.core.errors import ModelServerError
from services.core.types import Prompt
from services.llm.engines import chat_messages, plain_prompt

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
"""Token estimate for servers without a tokenizer endpoint (a conservative English average)."""


@dataclass(frozen=True)
class ServerConfig:
    """How to reach the server.

    Attributes:
        base_url: the OpenAI-compatible root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server knows.
        api_key: sent as a bearer token (servers on loopback usually ignore it).
        timeout: seconds to connect and between streamed pieces.
        context_tokens: the model's context window (prompt + answer).
        failures_to_open: consecutive failures that open the circuit.
        reset_seconds: how long an open circuit waits before one probe call.
    """

    base_url: str
    model: str
    api_key: str = ""
    timeout: float = 60.0
    context_tokens: int = 4096
    failures_to_open: int = 3
    reset_seconds: float = 30.0


def _retry_after(error: openai.APIStatusError) -> int | None:
    value = error.response.headers.get("retry-after")
    try:
        return max(1, int(float(value))) if value else None
    except ValueError:
        return None


def server_error(error: Exception) -> ModelServerError:
    """The :class:`ModelServerError` for an exception of the ``openai`` client."""
    if isinstance(error, ModelServerError):
        return error
    if isinstance(error, pybreaker.CircuitBreakerError):
        return ModelServerError("down", "the model server failed repeatedly; paused")
    if isinstance(error, openai.APITimeoutError):
        return ModelServerError("timeout", "the model server did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        return ModelServerError("unreachable", str(error.__cause__ or error))
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelServerError("unauthorized", "the model server refused the API key")
    if isinstance(error, openai.NotFoundError):
        return ModelServerError("unknown_model", "the model server does not know the model")
    if isinstance(error, openai.RateLimitError):
        return ModelServerError("rate_limited", "too many requests", _retry_after(error))
    if isinstance(error, openai.APIStatusError):
        kind = "overloaded" if error.status_code in (502, 503, 504) else "bad_response"
        return ModelServerError(kind, f"HTTP {error.status_code}", _retry_after(error))
    return ModelServerError("bad_response", f"{type(error).__name__}: {error}")


def trips_breaker(error: Exception) -> bool:
    """Only a server that is down or failing opens the circuit, not a refused key or model."""
    return not isinstance(
        error,
        ModelServerError
        | openai.AuthenticationError
        | openai.PermissionDeniedError
        | openai.NotFoundError
        | openai.BadRequestError,
    )


class ServerEngine:
    """The ``Engine`` of a model server (blocking; runs in the generation executor).

    Args:
        config: where and how to call it.
        client: an ``openai.OpenAI`` client (built from ``config`` when omitted).
    """

    def __init__(self, config: ServerConfig, client: Any = None) -> None:
        self.config = config
        self.name = config.model
        self._client = client or openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "not-needed",
            timeout=config.timeout,
            max_retries=0,
        )
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=config.failures_to_open,
            reset_timeout=config.reset_seconds,
            exclude=[lambda error: not trips_breaker(error)],
        )
        self._tokenizer_probe = threading.Lock()
        self._tokenizer_known = False
        self._tokenizer_found: tuple[str, str] | None = None
        self._next_probe = 0.0

    @property
    def state(self) -> str:
        """The circuit breaker's state: ``closed`` (in use), ``open`` (paused), ``half-open``."""
        return str(self.breaker.current_state)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the server's tokenizer — llama.cpp's ``/tokenize`` or
        llama-cpp-python's ``/extras/tokenize`` — else one token per four characters."""
        if self._tokenizer is not None:
            url, field = self._tokenizer
            try:
                response = httpx.post(url, json={field: text}, timeout=self.config.timeout)
                response.raise_for_status()
                return len(response.json()["tokens"])
            except (httpx.HTTPError, ValueError, KeyError):
                logger.warning("the model server's tokenizer failed: prompt budgets estimated")
        return len(text) // CHARS_PER_TOKEN + 1

    @property
    def has_tokenizer(self) -> bool:
        """Whether the server tokenizes for us (else budgets are estimated)."""
        return self._tokenizer is not None

    @property
    def _tokenizer(self) -> tuple[str, str] | None:
        """(URL, request field) of the server's tokenizer endpoint.

        Known once the server answered the probe (with the endpoint or without it); while the
        server cannot be reached, the probe is tried again on the circuit breaker's schedule
        (every ``reset_seconds``) and budgets are estimated meanwhile, so a server that was
        down when the bot started gets its tokenizer used once it is up.
        """
        if self._tokenizer_known or time.monotonic() < self._next_probe:
            return self._tokenizer_found
        with self._tokenizer_probe:
            if not self._tokenizer_known and time.monotonic() >= self._next_probe:
                self._probe_tokenizer()
        return self._tokenizer_found

    def _probe_tokenizer(self) -> None:
        root = self.config.base_url.rstrip("/").removesuffix("/v1")
        reached = False
        for url, field in ((f"{root}/tokenize", "content"), (f"{root}/extras/tokenize", "input")):
            try:
                response = httpx.post(url, json={field: "ok"}, timeout=self.config.timeout)
            except httpx.HTTPError:
                continue
            reached = True
            if response.status_code == 200 and "tokens" in response.text:
                self._tokenizer_found = (url, field)
                self._tokenizer_known = True
                return
        if reached:
            self._tokenizer_known = True
            logger.info("the model server has no tokenizer endpoint: prompt budgets are estimated")
        else:
            self._next_probe = time.monotonic() + self.config.reset_seconds
            logger.info(
                "the model server is unreachable; its tokenizer is probed again in %.0f s",
                self.config.reset_seconds,
            )

    def stream(
        self, prompt: Prompt, max_new_tokens: int, temperature: float, cancel: threading.Event
    ) -> Iterator[str]:
        """Yield the answer as it streams; raise :class:`ModelServerError` on any failure
        (``cut`` after some text arrived). Setting ``cancel`` closes the stream."""
        try:
            stream = self.breaker.call(self._open, prompt, max_new_tokens, temperature)
        except Exception as error:  # noqa: BLE001 - every client failure becomes one sentence
            raise server_error(error) from error
        received = False
        try:
            for chunk in stream:
                if cancel.is_set():
                    break
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    received = True
                    yield piece
        except Exception as error:  # noqa: BLE001 - a broken stream is reported, not raised raw
            problem = server_error(error)
            if received:
                raise ModelServerError("cut", problem.detail) from error
            raise problem from error
        finally:
            stream.close()  # tells the server to stop generating

    def _open(self, prompt: Prompt, max_new_tokens: int, temperature: float) -> Any:
        budget = self.config.context_tokens - max_new_tokens
        messages = chat_messages(prompt) if prompt.instruct else None
        if messages is None:
            messages = [{"role": "user", "content": plain_prompt(prompt)}]
        if self.count_tokens(" ".join(m["content"] for m in messages)) > budget:
            raise ModelServerError("too_long", "the prompt does not fit the model's context")
        return self._client.chat.completions.create(
            model=self.config.model,
            messages=messages,  # type: ignore[arg-type]  # the client's TypedDicts, by shape
            max_tokens=max_new_tokens,
            temperature=temperature,
            stream=True,
        )
