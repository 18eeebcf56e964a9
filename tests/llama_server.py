"""Starting llama-cpp-python's OpenAI-compatible server with the shipped SmolLM2 GGUF on a free
loopback port (for the model-server tests and ``bench/model_server.py``)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from services.llm.engines import shipped_gguf

MODEL = "smollm2"


@contextlib.contextmanager
def llama_server(log_path: Path, context_tokens: int = 2048) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` until the block ends; yields its ``/v1`` URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log_path.open("w") as log:  # a pipe would fill up with llama.cpp's chatter and stall it
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(shipped_gguf()),
                "--model_alias",
                MODEL,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                str(context_tokens),
                "--n_threads",
                "2",
                "--verbose",
                "false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text()[-2000:]
                    raise RuntimeError(f"llama_cpp.server did not start: {tail}")
                time.sleep(0.5)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
