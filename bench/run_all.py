"""Every benchmark in one go (``make bench``), with settings that fit ~15 minutes on 2 cores,
then one table of the headline numbers read back from each benchmark's JSON.

Each benchmark still prints its own full table as it runs; the same scripts with their
default options (more runs, more sizes) give the README's figures.

    .venv/bin/python bench/run_all.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
EVAL = REPO.parent / "shared" / "data" / "eval"
PY = sys.executable
STEP_SECONDS = 600
"""A benchmark still running after this is stopped and reported as timed out."""

Row = tuple[str, str]


def _json(name: str) -> Any:
    return json.loads((RESULTS / name).read_text())


def _latency(method: str) -> list[Row]:
    report = _json(f"summary_latency_{method}.json")
    seconds = report["seconds"]["command text"]
    rows = [
        (
            f"/summary 2,000 words, {method}, p50 / p90",
            f"{seconds['median']:.3f} / {seconds['p90']:.3f} s",
        )
    ]
    again = report["seconds"].get("same text again")
    if again:
        rows.append(("  the same text again", f"{again['median']:.3f} s p50"))
    if "hardware" in report:
        hw = report["hardware"]
        rows.append(
            (
                "  MiniLM alone vs its int8 / fp32 compute bound",
                f"{hw['encoder_seconds']:.3f} s vs {hw['int8_bound_seconds']:.3f} / "
                f"{hw['compute_bound_seconds']:.3f} s ({hw['tokens']} tokens at "
                f"{hw['int8_peak_gops']:.0f} GOP/s int8, {hw['peak_gflops']:.0f} GFLOP/s fp32)",
            )
        )
    return rows


def _memory() -> list[Row]:
    row = _json("memory.json")[0]
    return [
        (
            "bot RSS idle / after en+es summary and key phrases",
            f"{row['idle_mb']} / {row['after_mb']} MB",
        )
    ]


def _adapt() -> list[Row]:
    report = _json("adapt_memory.json")
    return [
        (
            f"condensa adapt peak RSS ({report['pairs']} pairs)",
            f"{report['peak_rss_mb']} MB (GGUF conversion child "
            f"{report['conversion_child_peak_rss_mb']} MB)",
        )
    ]


def _speed() -> list[Row]:
    table = _json("summary_speed.json")["seconds"]
    size = max(table["lexrank (ours)"], key=int)
    ours, sumy = table["lexrank (ours)"][size], table["lexrank (sumy)"].get(size)
    ratio = f", {sumy / ours:.0f}x sumy" if sumy else ""
    return [(f"LexRank end to end, {size} sentences", f"{ours:.3f} s{ratio}")]


def _digest() -> list[Row]:
    data = _json("digest_speed.json")
    return [
        (f"/digest {data['messages']:,} messages, warm", f"{data['warm_median_seconds']:.2f} s"),
        ("event-loop worst lag, every run", f"{1000 * data['max_loop_lag']:.0f} ms"),
    ]


def _load() -> list[Row]:
    return [
        (
            f"{row['chats']} chats /summary at once",
            f"{row['answered']} answered, {row['busy']} busy, {row['lost']} lost; "
            f"p95 {row['p95_s']:.1f} s; RSS {row['peak_rss_mb']:.0f} MB",
        )
        for row in _json("load.json")
    ]


def _cluster() -> list[Row]:
    data = _json("cluster.json")
    rows = [
        (
            f"{row['chats']} chats, {row['method']}, {row['workers']} worker(s) via Redis",
            f"{row['per_second']} summaries/s, p95 {row['p95_s']} s; {row['answered']} answered, "
            f"{row['busy']} busy, {row['lost']} lost",
        )
        for row in data["scale"]
    ]
    latency = data["queue_latency"]
    rows.append(
        (
            "queue path vs in-process, /help p50",
            f"{latency['queued_p50_ms']} vs {latency['in_process_p50_ms']} ms",
        )
    )
    return rows


def _generation() -> list[Row]:
    rows = []
    for result in _json("generation.json")["engines"]:
        share = result["tokens_per_second"] / result["bound_tokens_per_second"]
        rows.append(
            (
                f"generation, {result['engine']} ({result['attempt']})",
                f"{result['tokens_per_second']:.1f} tok/s ({share:.0%} of the bandwidth bound "
                f"of its {result['weight_bytes'] / 1e6:.0f} MB of weights); "
                f"prompt {result['prompt_tokens_per_second']:.0f} tok/s; "
                f"RSS {result['peak_rss_mb']:.0f} MB",
            )
        )
    return rows


def _keywords() -> list[Row]:
    results = _json("keywords_quality.json")["results"]
    rows = []
    for label, systems in results.items():
        ours = systems["condensa minilm" if "en" in label else "condensa e5"]
        rows.append((f"keyphrases F1@10, {label}", f"{ours['scores']['f1@10']['mean']:.2f}"))
    return rows


def _eval(name: str, label: str, systems: tuple[str, ...]) -> Callable[[], list[Row]]:
    def rows() -> list[Row]:
        report = _json(name)
        found = report.get("systems") or {report.get("method", "summary"): report["rouge"]}
        return [
            (
                f"{label}, {system}",
                "ROUGE-1/2/Lsum "
                + " / ".join(f"{s[m]['mean']:.2f}" for m in ("rouge1", "rouge2", "rougeLsum")),
            )
            for system, s in found.items()
            if not systems or system in systems
        ]

    return rows


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    digest_data = EVAL / "chat_en_dialogsum_dev200.messages.jsonl"
    news = EVAL / "summ_en_cnndm_summeval100.jsonl"
    steps: list[tuple[str, list[str], Path | None, Callable[[], list[Row]]]] = [
        (
            "summary latency",
            [PY, "bench/summary_latency.py", "--runs", "8"],
            None,
            lambda: _latency("default"),
        ),
        (
            "summary latency (lexrank)",
            [PY, "bench/summary_latency.py", "--runs", "8", "--method", "lexrank"],
            None,
            lambda: _latency("lexrank"),
        ),
        (
            "summary speed",
            [PY, "bench/summary_speed.py", "--sizes", "100,400,1000", "--repeat", "1"],
            None,
            _speed,
        ),
        ("digest speed", [PY, "bench/digest_speed.py", "--runs", "2"], None, _digest),
        ("burst load", [PY, "bench/load.py", "--bursts", "60,200"], None, _load),
        (
            "scale-out",
            [
                PY,
                "bench/cluster.py",
                "--chats",
                "100",
                "--workers",
                "1,2",
                "--methods",
                "lexrank",
                "--latency-samples",
                "20",
            ],
            None,
            _cluster,
        ),
        ("generation", [PY, "bench/generation.py", "--tokens", "32"], None, _generation),
        ("memory", [PY, "bench/memory.py", "--runtimes", "onnx"], None, _memory),
    ]
    if news.exists():
        steps.append(
            (
                "keywords quality",
                [PY, "bench/keywords_quality.py", "--limit", "30"],
                None,
                _keywords,
            )
        )
        steps.append(
            (
                "summary quality",
                [PY, "-m", "bot", "eval", "summary", "--data", str(news), "--json"],
                RESULTS / "eval_summary.json",
                _eval("eval_summary.json", "CNN/DM 100", ()),
            )
        )
    if news.exists():
        steps.append(("adapt memory", [PY, "bench/adapt_memory.py", "--pairs", "8"], None, _adapt))
    if digest_data.exists():
        steps.append(
            (
                "digest quality",
                [PY, "-m", "bot", "eval", "digest", "--data", str(digest_data), "--json"],
                RESULTS / "eval_digest.json",
                _eval("eval_digest.json", "DialogSum dev200 digest", ()),
            )
        )
    table: list[tuple[str, str, str]] = []
    started = time.perf_counter()
    for name, command, output, read in steps:
        began = time.perf_counter()
        print(f"== {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        try:
            done = subprocess.run(
                command,
                cwd=REPO,
                capture_output=output is not None,
                text=True,
                check=False,
                timeout=STEP_SECONDS,
            )
        except subprocess.TimeoutExpired:
            table.append((name, f"timed out after {STEP_SECONDS} s", ""))
            continue
        if output is not None and done.returncode == 0:
            output.write_text(done.stdout)
        took = f"{time.perf_counter() - began:.0f} s"
        try:
            rows = read() if done.returncode == 0 else [(name, f"failed (exit {done.returncode})")]
        except (OSError, KeyError, ValueError) as exc:
            rows = [(name, f"no result ({type(exc).__name__})")]
        table += [(what, value, took if i == 0 else "") for i, (what, value) in enumerate(rows)]
    print()
    print(
        f"| benchmark | result | took |  (all in {(time.perf_counter() - started) / 60:.1f} min)"
    )
    print("|---|---|---:|")
    for what, value, took in table:
        print(f"| {what} | {value} | {took} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
