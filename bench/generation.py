"""LLM engines on this machine: load time, tokens/s, prompt reading, peak memory, time to
first streamed edit.

Each engine runs in its own process (so peak memory is its own) on the same prompts with
greedy decoding. The bound to compare with: every generated token reads all the weights once,
so tokens/s <= memory bandwidth / bytes of weights; bandwidth is measured here with a large
NumPy copy. A larger file lowers that bound: the Q8_0 copy's share rises because its file is
bigger, not because it decodes faster. Prompt reading is timed on the same ~1,000 tokens of
news (what a grounded summary's model reads before its first word). Prints a Markdown table and
writes bench/results/generation.json.

    .venv/bin/python bench/generation.py [--tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPTS = (
    "Explain in three sentences why the sky is blue.",
    "Write a short paragraph about a city that builds new tram lines.",
    "List four tips for writing a clear email.",
)


def peak_rss_mb() -> float:
    """This process's own peak resident set (VmHWM). Not ``ru_maxrss``: that survives exec,
    so a worker would report the parent's peak (the 1 GB bandwidth test) as its own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_bandwidth_gb_s() -> float:
    """Read+write bandwidth of a 512 MB copy split over every CPU the engines use (NumPy
    copies without the GIL, so the threads copy at once), best of 7, in GB/s. One thread's
    copy read 15-28 GB/s on the same machine on different runs: decoding reads with every
    thread, so the bound uses every thread too."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    threads = len(os.sched_getaffinity(0))
    source = np.ones(64 * 1024 * 1024, dtype=np.float64)  # 512 MB
    target = np.empty_like(source)
    parts = list(
        zip(np.array_split(target, threads), np.array_split(source, threads), strict=True)
    )
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(7):
            started = time.perf_counter()
            list(pool.map(lambda pair: np.copyto(*pair), parts))
            best = min(best, time.perf_counter() - started)
    return 2 * source.nbytes / best / 1e9


def worker(
    engine_name: str, tokens: int, cache: Path, threads: int, weights: str, prompt: str
) -> dict[str, object]:
    """Measure one engine in this process (``threads``: llama.cpp's, 0 for its default;
    ``weights``: the shipped model as "q4_1" or from its "q8_0" copy, for llama.cpp)."""
    from services.core.types import Prompt
    from services.llm.engines import LlamaCppEngine, TransformersEngine, shipped_gguf

    gguf = shipped_gguf()
    if engine_name == "llama.cpp":
        engine: LlamaCppEngine | TransformersEngine = LlamaCppEngine(
            gguf,
            threads=threads or None,
            requantize_to=None if weights == "q4_1" else weights,
            cache_dir=cache,
        )
    else:
        engine = TransformersEngine("smollm2", cache)
    started = time.perf_counter()
    engine.load()
    load_seconds = time.perf_counter() - started
    if isinstance(engine, LlamaCppEngine):
        assert engine.model_path is not None
        weight_bytes = engine.model_path.stat().st_size
    else:
        weight_bytes = sum(p.numel() * p.element_size() for p in engine._model.parameters())  # noqa: SLF001
    runs = []
    for text in PROMPTS:
        pieces: list[str] = []
        first = None
        started = time.perf_counter()
        for piece in engine.stream(Prompt(text), tokens, 0.0, threading.Event()):
            if first is None:
                first = time.perf_counter() - started
            pieces.append(piece)
        elapsed = time.perf_counter() - started
        generated = engine.count_tokens("".join(pieces))
        runs.append({"tokens": generated, "seconds": elapsed, "first_piece": first})
    total_tokens = sum(int(r["tokens"]) for r in runs)  # type: ignore[call-overload]
    total_seconds = sum(float(r["seconds"]) for r in runs)  # type: ignore[arg-type]
    raw = float("nan")
    if isinstance(engine, LlamaCppEngine):
        # llama.cpp's own decode, token after token, without llama-cpp-python's streaming
        # (sampling, detokenizing, stop checks in Python): what the library layer costs.
        llm = engine._llm  # noqa: SLF001
        llm.reset()
        start = llm.tokenize(PROMPTS[0].encode())
        llm.eval(start)
        started = time.perf_counter()
        for step in range(tokens):
            llm.eval([start[step % len(start)]])
        raw = tokens / (time.perf_counter() - started)
    return {
        "raw_decode_tokens_per_second": raw,
        "prompt_tokens_per_second": prompt_reading(engine, prompt),
        "engine": engine_name,
        "weights": weights if engine_name == "llama.cpp" else "converted",
        "load_seconds": load_seconds,
        "tokens_per_second": total_tokens / total_seconds,
        "first_piece_seconds": min(float(r["first_piece"] or 0) for r in runs),  # type: ignore[arg-type]
        "weight_bytes": weight_bytes,
        "peak_rss_mb": peak_rss_mb(),
        "runs": runs,
    }


def prompt_reading(engine: Any, text: str, limit: int = 1024) -> float:
    """Tokens/s reading the first ``limit`` tokens of ``text`` in one pass, best of 2."""
    from services.llm.engines import LlamaCppEngine

    best = float("inf")
    if isinstance(engine, LlamaCppEngine):
        llm = engine._llm  # noqa: SLF001
        ids = llm.tokenize(text.encode())[:limit]
        for _ in range(2):
            llm.reset()
            started = time.perf_counter()
            llm.eval(ids)
            best = min(best, time.perf_counter() - started)
    else:
        import torch

        model, tokenizer = engine.loaded()
        ids = tokenizer(text, return_tensors="pt").input_ids[:, :limit]
        for _ in range(2):
            started = time.perf_counter()
            with torch.no_grad():
                model(ids)
            best = min(best, time.perf_counter() - started)
    return len(ids if isinstance(ids, list) else ids[0]) / best


async def first_edit_through_bot(engine_name: str, cache: Path, weights: str) -> float:
    """Seconds from a /generate update to the first streamed edit, through the emulator."""
    from bot.app import BotRuntime
    from bot.factories import build_services
    from bot.settings import Settings
    from playground.api import BotAPIEmulator
    from services.core.types import Prompt

    emulator = BotAPIEmulator()
    await emulator.start()
    # A fresh data directory for every run: one shared between runs kept the previous run's
    # record of update 1 as handled, so the next bot ignored this run's /generate and the
    # bench waited for ever. Its models/ is the shared cache (the converted model).
    data_dir = Path(tempfile.mkdtemp(prefix="generation-bench-"))
    os.symlink(cache, data_dir / "models", target_is_directory=True)  # cache: absolute
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        telegram_bot_token=emulator.token,
        telegram_api_url=emulator.url,
        data_dir=data_dir,
        llm_engine=engine_name,
        llm_shipped_weights=weights,
        llm_temperature=0.0,
        stream_edit_seconds_private=1.0,
    )
    services = build_services(settings)
    runtime = BotRuntime(settings, services=services, warm_up=False)
    await runtime.start(polling=True, poll_timeout=1)
    await emulator.polling_started.wait()
    user = emulator.add_user(1, "Bench")
    chat = emulator.private_chat(user)
    # Load the model first: the number asked for is the streaming latency, not the load.
    assert services.generator is not None
    await services.generator.complete(Prompt("Hi"), 4)
    started = time.perf_counter()
    try:
        await emulator.send_text(chat, user, "/generate The city council approved")
        await emulator.wait_until(lambda: emulator.calls_to("editMessageText"), timeout=120)
        return time.perf_counter() - started
    except TimeoutError:
        print(f"no streamed edit: {emulator.bot_messages(int(chat['id']))}", file=sys.stderr)
        return float("nan")  # reported as such, not waited on for ever
    finally:
        await runtime.stop()
        await emulator.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--worker", choices=["llama.cpp", "transformers"])
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: default)")
    parser.add_argument("--weights", choices=["q8_0", "q4_1"], default="q8_0")
    parser.add_argument("--prompt-file", type=Path, help="text whose reading is timed")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per engine run")
    args = parser.parse_args()
    if args.worker:
        cache = args.cache.resolve()
        prompt = args.prompt_file.read_text()
        result = worker(args.worker, args.tokens, cache, args.threads, args.weights, prompt)
        result["first_edit_seconds"] = asyncio.run(
            first_edit_through_bot(args.worker, cache, args.weights)
        )
        print(json.dumps(result), flush=True)
        os._exit(0)  # a model thread left behind must not keep the measurement waiting
    from bench.summary_latency import sample_text
    from services.llm.engines import llama_cpp_available

    # (engine, attempt, llama.cpp threads, shipped weights): llama.cpp with its library default
    # (one thread per two CPUs), with every CPU, then as Condensa runs it (every CPU, from the
    # Q8_0 copy), to show what moved it.
    runs: list[tuple[str, str, int, str]] = []
    if llama_cpp_available():
        runs += [
            ("llama.cpp", "1 thread, library default, Q4_1 as shipped", 1, "q4_1"),
            ("llama.cpp", "every CPU, Q4_1 as shipped", 0, "q4_1"),
            ("llama.cpp", "as deployed: every CPU, Q8_0 copy", 0, "q8_0"),
        ]
    runs += [("transformers", "first run", 0, "q8_0"), ("transformers", "cached", 0, "q8_0")]
    bandwidth = memory_bandwidth_gb_s()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "models"
        prompt = Path(tmp) / "prompt.txt"
        prompt.write_text(sample_text(800))  # ~1,000 tokens of news
        for engine, attempt, threads, weights in runs:
            command = [sys.executable, __file__, "--worker", engine, "--tokens", str(args.tokens)]
            command += ["--cache", str(cache), "--threads", str(threads)]
            command += ["--weights", weights, "--prompt-file", str(prompt)]
            try:
                done = subprocess.run(
                    command, check=True, capture_output=True, text=True, timeout=args.timeout
                )
            except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as error:
                print(f"{engine} ({attempt}): failed: {error}", file=sys.stderr)
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["attempt"] = attempt
            result["bound_tokens_per_second"] = bandwidth * 1e9 / result["weight_bytes"]
            results.append(result)
            print(
                f"{engine} ({attempt}): {result['tokens_per_second']:.1f} tok/s", file=sys.stderr
            )
    print(f"memory bandwidth (NumPy copy): {bandwidth:.1f} GB/s\n")
    print(
        "| engine | load s | tokens/s | bound tok/s (bandwidth / weights) | share of bound | "
        "raw decode tok/s (share) | prompt tok/s | weights MB | peak RSS MB | first piece s | "
        "first edit via bot s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        bound = r["bound_tokens_per_second"]
        raw = r.get("raw_decode_tokens_per_second", float("nan"))
        print(
            f"| {r['engine']} ({r['attempt']}) | {r['load_seconds']:.2f} | "
            f"{r['tokens_per_second']:.1f} | {bound:.0f} | "
            f"{100 * r['tokens_per_second'] / bound:.0f} % | "
            + (f"{raw:.1f} ({100 * raw / bound:.0f} %) | " if raw == raw else "— | ")
            + f"{r['prompt_tokens_per_second']:.0f} | "
            + f"{r['weight_bytes'] / 1e6:.0f} | {r['peak_rss_mb']:.0f} | "
            f"{r['first_piece_seconds']:.2f} | {r['first_edit_seconds']:.2f} |"
        )
    out = REPO / "bench" / "results" / "generation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bandwidth_gb_s": bandwidth, "engines": results}, indent=2))
    print(f"\nwritten {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
