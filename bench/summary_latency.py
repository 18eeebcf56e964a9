"""End-to-end cost of /summary on a 2,000-word text, through the Bot API emulator.

Starts the emulator and the real Application (real services, long polling over loopback HTTP),
then measures, 20 times each, the time from the user's update being queued to the placeholder
being edited into the summary: once with the text after the command and once as a reply to a
2,000-word .txt file. Each run starts after a 3-second pause, so the chat's outbound pace
(a burst of 3 messages, then 1 per second) is not what is measured, and with the process's
embedding cache emptied, so every run pays for its sentence embeddings as a text the bot has
not seen does; a third row sends the same text again without emptying it (what a repeated
request, or a grounded summary after an extractive one, costs). Prints a table and writes
bench/results/summary_latency.json.

    .venv/bin/python bench/summary_latency.py [--runs 20] [--words 2000] [--method lexrank]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.app import BotRuntime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from playground.api import BotAPIEmulator  # noqa: E402
from services.embeddings.cache import embedding_cache  # noqa: E402

PACE_REFILL_SECONDS = 3.2
EVAL = REPO.parent / "shared" / "data" / "eval" / "summ_en_cnndm_summeval100.jsonl"


def sample_text(words: int) -> str:
    """Real news text (the CNN/DM evaluation articles) cut to ``words`` words."""
    if EVAL.exists():
        pool = " ".join(json.loads(line)["text"] for line in EVAL.read_text().splitlines())
    else:
        from tests.conftest import ENGLISH_ARTICLE

        pool = " ".join([ENGLISH_ARTICLE] * (words // 100 + 1))
    cut = pool.split()[:words]
    return " ".join(cut)


def encoder_against_the_hardware(text: str) -> dict[str, float]:
    """The MiniLM encoder alone on ``text``'s sentences (best of 5, warm) beside its compute
    bound: 2 x 10.6 M operations per token (its weights outside the embedding table) over this
    CPU's peak, measured now as the best of 10 2,048-square matrix products: in fp32 with NumPy,
    and in int8 (u8 x s8 -> s32) with ONNX Runtime's MatMulInteger, which is what the int8
    model's products run on."""
    import numpy as np

    from services.embeddings.backends import keyword_backend
    from services.embeddings.onnx import minilm_tokenizer
    from services.summarize.prepared import prepare_text

    size = 2048
    rng = np.random.default_rng(0)
    square = rng.random((size, size), dtype=np.float32)
    fp32_peak = 2 * size**3 / min(_timed(lambda: square @ square) for _ in range(10))
    session = _int8_product(size)
    feeds = {
        "a": rng.integers(0, 255, (size, size), dtype=np.uint8),
        "b": rng.integers(-127, 127, (size, size), dtype=np.int8),
    }
    session.run(None, feeds)
    int8_peak = 2 * size**3 / min(_timed(lambda: session.run(None, feeds)) for _ in range(10))
    sentences = prepare_text(text).sentences
    backend = keyword_backend("minilm")
    backend.embed(sentences)
    encode = min(_timed(lambda: backend.embed(sentences)) for _ in range(5))
    tokens = sum(len(e.ids) for e in minilm_tokenizer().encode_batch(sentences))
    operations = 2 * 10.6e6 * tokens
    return {
        "sentences": len(sentences),
        "tokens": tokens,
        "peak_gflops": fp32_peak / 1e9,
        "int8_peak_gops": int8_peak / 1e9,
        "encoder_seconds": encode,
        "compute_bound_seconds": operations / fp32_peak,
        "int8_bound_seconds": operations / int8_peak,
    }


def _int8_product(size: int) -> Any:
    """An ONNX Runtime session multiplying two ``size``-square u8 and s8 matrices."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    def tensor(name: str, kind: int) -> Any:
        return helper.make_tensor_value_info(name, kind, [size, size])

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
        "int8_peak",
        [tensor("a", TensorProto.UINT8), tensor("b", TensorProto.INT8)],
        [tensor("y", TensorProto.INT32)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def answered(emulator: BotAPIEmulator, chat: dict[str, object], sent: dict[str, object]) -> bool:
    """Whether the bot's placeholder replying to ``sent`` has become the summary."""
    return any(
        m.get("reply_to_message", {}).get("message_id") == sent["message_id"]
        and m.get("_edits")
        and not m["text"].startswith("⏳")
        for m in emulator.bot_messages(int(chat["id"]))  # type: ignore[call-overload]
    )


async def measure(runs: int, words: int, method: str) -> dict[str, object]:
    text = sample_text(words)
    emulator = BotAPIEmulator()
    await emulator.start()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            telegram_bot_token=emulator.token,
            telegram_api_url=emulator.url,
            data_dir=Path(data_dir),
            default_method=method or Settings.model_fields["default_method"].default,
        )
        runtime = BotRuntime(settings, warm_up=False)
        await runtime.start(polling=True, poll_timeout=1)
        await emulator.polling_started.wait()
        user = emulator.add_user(1, "Bench")
        chat = emulator.private_chat(user)
        document = await emulator.send_document(
            chat, user, text.encode(), "article.txt", "text/plain"
        )
        # A document sent in private is summarized on its own; let that finish first.
        await emulator.wait_until(lambda: answered(emulator, chat, document), 60)
        results: dict[str, list[float]] = {
            "command text": [],
            "reply to .txt": [],
            "same text again": [],
        }
        cold: dict[str, float] = {}
        for label in results:
            for _ in range(runs + 1):  # the first run warms caches and is not counted
                # A user asking once: the chat's outbound bucket (3 messages, 1 per second)
                # is full again, so Telegram's pace does not enter the model latency.
                await asyncio.sleep(PACE_REFILL_SECONDS)
                if label != "same text again":
                    embedding_cache().clear()
                started = time.perf_counter()
                if label != "reply to .txt":
                    sent = await emulator.send_text(chat, user, "/summary " + text)
                else:
                    sent = await emulator.send_text(chat, user, "/summary", reply_to=document)
                await emulator.wait_until(lambda sent=sent: answered(emulator, chat, sent), 60)
                results[label].append(time.perf_counter() - started)
            cold[label] = results[label].pop(0)
        last = emulator.bot_messages(chat["id"])[-1]["text"]
        reply = next(line for line in last.split("\n") if "sentences" in line)
        await runtime.stop()
    await emulator.stop()
    return {
        "words": words,
        "runs": runs,
        "heading_of_last_reply": reply,
        "seconds": {
            label: {
                "median": statistics.median(times),
                "p90": sorted(times)[int(0.9 * (len(times) - 1))],
                "min": min(times),
                "max": max(times),
                "first_request": cold[label],
            }
            for label, times in results.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--words", type=int, default=2000)
    parser.add_argument("--method", default="", help="summary method (default: the default)")
    args = parser.parse_args()
    report = asyncio.run(measure(args.runs, args.words, args.method))
    if args.method in ("", "embedding"):
        report["hardware"] = encoder_against_the_hardware(sample_text(args.words))
    print(
        f"/summary on a {report['words']}-word text, {report['runs']} runs each "
        f"(last reply: {report['heading_of_last_reply']})"
    )
    print(f"{'input':<16} {'median s':>9} {'p90 s':>7} {'min s':>7} {'max s':>7} {'1st s':>7}")
    for label, numbers in report["seconds"].items():  # type: ignore[union-attr]
        print(
            f"{label:<16} {numbers['median']:>9.3f} {numbers['p90']:>7.3f} "
            f"{numbers['min']:>7.3f} {numbers['max']:>7.3f} {numbers['first_request']:>7.3f}"
        )
    if "hardware" in report:
        hw = report["hardware"]
        print(
            f"MiniLM alone: {hw['encoder_seconds']:.3f} s for {hw['sentences']} sentences, "
            f"{hw['tokens']} tokens; compute bound {hw['int8_bound_seconds']:.3f} s at this "
            f"CPU's measured int8 peak of {hw['int8_peak_gops']:.0f} GOP/s "
            f"({hw['int8_bound_seconds'] / hw['encoder_seconds']:.0%} of it reached), "
            f"{hw['compute_bound_seconds']:.3f} s at its fp32 peak of "
            f"{hw['peak_gflops']:.0f} GFLOP/s"
        )
    out = REPO / "bench" / "results" / f"summary_latency_{args.method or 'default'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
