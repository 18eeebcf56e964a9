"""Time to first token and tokens/s: llama.cpp's OpenAI-compatible server vs the in-process
engines, with 1 and 4 chats generating at once.

Same model (the shipped SmolLM2-135M-Instruct Q4_1 GGUF for llama.cpp in process and behind the
server; its transformers weights for the transformers engine), same prompts, greedy, 128 new
tokens, warm (one untimed generation first). "4 chats" starts four generations together; the
in-process engines run them one after another through the bot's generation executor (one
slot), the server engine with ``LLM_MAX_CONCURRENCY=4`` (the server itself decodes one at a
time). Tokens are the pieces streamed.

    .venv/bin/python bench/model_server.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.core.executor import ModelExecutor  # noqa: E402
from services.core.types import Prompt  # noqa: E402
from services.llm.engines import (  # noqa: E402
    Engine,
    GenerationLimits,
    LlamaCppEngine,
    TransformersEngine,
    shipped_gguf,
)
from services.llm.server import ServerConfig, ServerEngine  # noqa: E402
from services.llm.service import GenerationService  # noqa: E402
from tests.llama_server import MODEL, llama_server  # noqa: E402

PROMPTS = [
    "Explain in a few sentences why the sky is blue.",
    "Write a short story about a lighthouse keeper.",
    "Give three tips for learning a new language.",
    "Describe a busy market in the morning.",
]
TOKENS = 128


async def one(service: GenerationService, prompt: str) -> dict[str, float]:
    started = time.perf_counter()
    first = None
    pieces = 0
    async for _ in service.stream(Prompt(prompt), threading.Event(), TOKENS):
        pieces += 1
        first = first or time.perf_counter()
    done = time.perf_counter()
    first = first or done
    return {"ttft": first - started, "tokens": pieces, "seconds": done - started}


async def measure(engine: Engine, slots: int) -> dict[str, Any]:
    limits = GenerationLimits(max_new_tokens=TOKENS, temperature=0.0)
    service = GenerationService(engine, ModelExecutor(slots, 4), limits)
    await one(service, "Hello")  # warm: load the model, fill caches
    single = [await one(service, p) for p in PROMPTS[:2]]
    started = time.perf_counter()
    together = await asyncio.gather(*(one(service, p) for p in PROMPTS))
    wall = time.perf_counter() - started
    return {
        "1 chat": {
            "ttft_s": statistics.median(r["ttft"] for r in single),
            "tokens_per_s": sum(r["tokens"] for r in single) / sum(r["seconds"] for r in single),
        },
        "4 chats": {
            "ttft_s_median": statistics.median(r["ttft"] for r in together),
            "ttft_s_worst": max(r["ttft"] for r in together),
            "tokens_per_s_total": sum(r["tokens"] for r in together) / wall,
        },
    }


async def run() -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as logs, llama_server(Path(logs) / "server.log") as url:
        server = ServerEngine(ServerConfig(base_url=url, model=MODEL, context_tokens=2048))
        report["llama.cpp server (openai client)"] = await measure(server, 4)
    report["llama.cpp in process"] = await measure(LlamaCppEngine(shipped_gguf()), 1)
    with tempfile.TemporaryDirectory() as cache:
        engine = TransformersEngine("smollm2", Path(cache))
        report["transformers in process"] = await measure(engine, 1)
    return report


def main() -> None:
    report = asyncio.run(run())
    columns = ["engine", "TTFT 1 chat", "tokens/s 1 chat", "TTFT 4 chats (median / worst)"]
    print("| " + " | ".join([*columns, "tokens/s 4 chats"]) + " |")
    print("|---|---:|---:|---:|---:|")
    for name, r in report.items():
        one_chat, four = r["1 chat"], r["4 chats"]
        print(
            f"| {name} | {one_chat['ttft_s']:.2f} s | "
            f"{one_chat['tokens_per_s']:.1f} | "
            f"{four['ttft_s_median']:.2f} / {four['ttft_s_worst']:.2f} s | "
            f"{four['tokens_per_s_total']:.1f} |"
        )
    out = REPO / "bench" / "results" / "model_server.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
