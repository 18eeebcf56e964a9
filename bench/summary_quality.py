"""Quality of every summary method on the shared reference sets, beside published systems.

ROUGE-1/2/Lsum F1 (×100) with bootstrap 95 % intervals, scored as shared/data/eval/README.md
prescribes, 3 sentences per extractive summary. Published SummEval system outputs for the same
100 CNN/DailyMail articles are rescored with the same scorer. Prints a Markdown table and writes
bench/results/summary_quality.json.

    .venv/bin/python bench/summary_quality.py [--methods lexrank,lead,...] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.core.executor import ModelExecutor  # noqa: E402
from services.evaluation.data import load_summary_examples  # noqa: E402
from services.evaluation.rouge import (  # noqa: E402
    evaluate_summarizer,
    make_scorer,
    score_pair,
    summarize_scores,
)
from services.summarize.service import build_summary_service  # noqa: E402

EVAL = REPO.parent / "shared" / "data" / "eval"
SETS = {
    "CNN/DM (en, 100)": "summ_en_cnndm_summeval100.jsonl",
    "BASSE (es, 22)": "summ_es_basse_dev22.jsonl",
    "DialogSum (en, 200)": "summ_en_dialogsum_dev200.jsonl",
}
PUBLISHED = ("M0:LEAD-3", "M22:BART", "M23:Pegasus")


async def run_method(method: str, path: Path, limit: int | None) -> dict[str, object]:
    examples = load_summary_examples(path, limit)
    service = build_summary_service(ModelExecutor(), max_chars=1_000_000)
    started = time.perf_counter()
    run = await evaluate_summarizer(service, examples, method, sentences=3)
    elapsed = time.perf_counter() - started
    return {
        "rouge": {k: v.as_dict() for k, v in summarize_scores(run.scores).items()},
        "refused": run.refused,
        "seconds_per_doc": elapsed / len(examples),
    }


def published_scores() -> dict[str, dict[str, object]]:
    path = EVAL / "summeval100_published_system_outputs.jsonl"
    references = {e.id: e.summary for e in load_summary_examples(EVAL / SETS["CNN/DM (en, 100)"])}
    scorer = make_scorer("en")
    rows: dict[str, list[dict[str, float]]] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["system"] in PUBLISHED:
            rows.setdefault(record["system"], []).append(
                score_pair(scorer, record["summary"], references[record["id"]], "en")
            )
    return {
        system: {"rouge": {k: v.as_dict() for k, v in summarize_scores(r).items()}}
        for system, r in rows.items()
    }


def cell(result: dict[str, object]) -> str:
    rouge = result["rouge"]  # type: ignore[index]
    return " / ".join(f"{rouge[m]['mean']:.2f}" for m in ("rouge1", "rouge2", "rougeLsum"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--methods",
        default="lead,embedding,lexrank,textrank,lsa,luhn,edmundson,kl,sumbasic,textteaser",
    )
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    if not EVAL.exists():
        sys.exit(f"no evaluation data at {EVAL}")
    methods = args.methods.split(",")
    report: dict[str, dict[str, object]] = {}
    for label, name in SETS.items():
        report[label] = {}
        for method in methods:
            report[label][method] = asyncio.run(run_method(method, EVAL / name, args.limit))
            print(f"{label:<20} {method:<11} {cell(report[label][method])}", file=sys.stderr)
    published = published_scores()
    print("| method | " + " | ".join(f"{label} R1 / R2 / RLsum" for label in SETS) + " |")
    print("|---|" + "---|" * len(SETS))
    for method in methods:
        print(f"| {method} | " + " | ".join(cell(report[label][method]) for label in SETS) + " |")
    for system, result in published.items():
        print(f"| {system} (published) | {cell(result)} | — | — |")
    out = REPO / "bench" / "results" / "summary_quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"methods": report, "published": published}, indent=2))
    print(f"\nwritten {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
