"""The shipped SmolLM2 under llama.cpp as shipped (Q4_1) and as deployed (its Q8_0 copy).

Like for like: one process, the same texts, greedy decoding, every CPU, one engine loaded at a
time. For each file: perplexity on held-out news (the first 512 tokens of 12 CNN/DM and 8 BASSE
articles; nothing is fitted to them: Q8_0 is, of the types llama.cpp reads prompts fast from,
the one that does not round the weights to 4 bits a second time), reading
a 1,024-token prompt (tokens/s, best of 2), and `llm` summaries through the summary service on
the first ``--limit`` CNN/DM articles and every BASSE one: seconds per summary, ROUGE, and the
paired difference (Q8_0 − Q4_1) with its bootstrap 95 % interval. Prints a Markdown table and
writes bench/results/llm_weights.json. Takes ~17 minutes with the default limit (not in
``make bench``).

    .venv/bin/python bench/llm_weights.py [--limit 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.generation import prompt_reading  # noqa: E402
from services.core.executor import ModelExecutor  # noqa: E402
from services.evaluation.data import load_summary_examples  # noqa: E402
from services.evaluation.rouge import bootstrap, evaluate_summarizer  # noqa: E402
from services.llm.engines import GenerationLimits, LlamaCppEngine, shipped_gguf  # noqa: E402
from services.llm.summarizer import LLMSummarizer  # noqa: E402
from services.summarize.service import build_summary_service  # noqa: E402

EVAL = REPO.parent / "shared" / "data" / "eval"
SETS = {
    "CNN/DM (en)": "summ_en_cnndm_summeval100.jsonl",
    "BASSE (es)": "summ_es_basse_dev22.jsonl",
}
METRICS = ("rouge1", "rouge2", "rougeLsum")


def perplexity(llm: Any, texts: list[str], tokens: int = 512) -> float:
    """exp of the mean negative log-likelihood of each text's first ``tokens`` tokens."""
    import numpy as np

    total, count = 0.0, 0
    for text in texts:
        ids = llm.tokenize(text.encode())[:tokens]
        llm.reset()
        llm.eval(ids)
        logits = np.asarray(llm.scores[: len(ids)], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
        picked = logits[np.arange(len(ids) - 1), ids[1:]] - log_norm[:-1]
        total -= float(picked.sum())
        count += len(ids) - 1
    return math.exp(total / count)


def measure(weights: str, cache: Path, limit: int) -> dict[str, Any]:
    from llama_cpp import Llama

    engine = LlamaCppEngine(
        shipped_gguf(), requantize_to=None if weights == "q4_1" else weights, cache_dir=cache
    )
    engine.load()
    assert engine.model_path is not None
    scoring = Llama(
        model_path=str(engine.model_path),
        n_ctx=600,
        logits_all=True,
        flash_attn=True,
        verbose=False,
    )
    held_out = {
        label: [e.text for e in load_summary_examples(EVAL / name, count)]
        for (label, name), count in zip(SETS.items(), (12, 8), strict=True)
    }
    result: dict[str, Any] = {
        "weights": weights,
        "file_mb": engine.model_path.stat().st_size / 1e6,
        "perplexity": {label: perplexity(scoring, texts) for label, texts in held_out.items()},
    }
    del scoring
    result["prompt_tokens_per_second"] = prompt_reading(engine, " ".join(held_out["CNN/DM (en)"]))
    service = build_summary_service(
        ModelExecutor(), 1_000_000, llm=LLMSummarizer(engine, GenerationLimits(temperature=0.0))
    )
    result["summaries"] = {}
    for label, name in SETS.items():
        examples = load_summary_examples(EVAL / name, limit)
        started = time.perf_counter()
        run = asyncio.run(evaluate_summarizer(service, examples, "llm", sentences=3))
        result["summaries"][label] = {
            "seconds_per_summary": (time.perf_counter() - started) / len(examples),
            "scores": run.scores,
            "refused": run.refused,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=40, help="CNN/DM articles (BASSE: all 22)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {w: measure(w, Path(tmp), args.limit) for w in ("q4_1", "q8_0")}
    shipped, copy = results["q4_1"], results["q8_0"]
    print("| | Q4_1 as shipped | Q8_0 copy (deployed) | Q8_0 − Q4_1 (95 % interval) |")
    print("|---|---:|---:|---:|")
    print(f"| file MB | {shipped['file_mb']:.0f} | {copy['file_mb']:.0f} | |")
    print(
        f"| prompt tokens/s (1,024) | {shipped['prompt_tokens_per_second']:.0f} | "
        f"{copy['prompt_tokens_per_second']:.0f} | |"
    )
    for label in SETS:
        print(
            f"| perplexity, {label} | {shipped['perplexity'][label]:.2f} | "
            f"{copy['perplexity'][label]:.2f} | |"
        )
    report: dict[str, Any] = {"results": results, "differences": {}}
    for label in SETS:
        before, after = shipped["summaries"][label], copy["summaries"][label]
        print(
            f"| s per `llm` summary, {label} (n={len(before['scores'])}) | "
            f"{before['seconds_per_summary']:.2f} | {after['seconds_per_summary']:.2f} | |"
        )
        for metric in METRICS:
            a = bootstrap([s[metric] for s in before["scores"]])
            b = bootstrap([s[metric] for s in after["scores"]])
            delta = bootstrap(
                [
                    y[metric] - x[metric]
                    for x, y in zip(before["scores"], after["scores"], strict=True)
                ]
            )
            report["differences"][f"{label} {metric}"] = delta.as_dict()
            print(
                f"| {metric}, {label} | {a.mean:.2f} | {b.mean:.2f} | "
                f"{delta.mean:+.2f} ({delta.low:+.2f} … {delta.high:+.2f}) |"
            )
    out = REPO / "bench" / "results" / "llm_weights.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
