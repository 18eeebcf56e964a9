"""An OpenAI-compatible transcription server on loopback, for the protocol and fault tests.

``POST /v1/audio/transcriptions`` (multipart: ``file``, ``model``, ``language``,
``response_format``) answers ``{"text": ...}`` from the same faster-whisper model the bot uses
offline, so what is tested is real transcription over the real protocol. Written here because
no maintained server package runs offline on these machines; it is not shipped with the bot.
Faults: a required API key (401), and ``fail_next`` answers of 503.
"""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Any

from aiohttp import BodyPartReader, web

from services.speech.transcribers import WhisperTranscriber


class TranscriptionServer:
    """The server; ``url`` is its ``/v1`` root once started."""

    def __init__(self, transcriber: WhisperTranscriber, api_key: str = "") -> None:
        self.transcriber = transcriber
        self.api_key = api_key
        self.fail_next = 0
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _transcribe(self, request: web.Request) -> web.Response:
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        fields: dict[str, Any] = {}
        async for part in await request.multipart():
            if isinstance(part, BodyPartReader):
                fields[part.name or ""] = await part.read() if part.filename else await part.text()
        self.requests.append({k: v for k, v in fields.items() if k != "file"})
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"error": {"message": "overloaded"}}, status=503)
        with wave.open(io.BytesIO(fields["file"])) as recording:
            pcm = recording.readframes(recording.getnframes())
        language = fields.get("language") or None
        transcript = await asyncio.to_thread(self.transcriber.transcribe, pcm, language)
        return web.json_response({"text": transcript.text.replace("\n", " ")})
