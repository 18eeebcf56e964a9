"""How often a consistency checker is right: balanced accuracy on SummEdits-style data.

Rows are ``{"id", "domain", "document", "summary", "label"}`` with label 1 = consistent,
0 = inconsistent. A checker's prediction is "inconsistent" when it flags the summary. Balanced
accuracy (the mean of the recall on consistent rows and on inconsistent rows, ×100) is reported
per domain, and overall as the mean over domains (as the benchmark computes it). Rows that share
a document are not independent, so the 95 % interval resamples documents, not rows.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.evaluation.data import BadDataFile, jsonl_records
from services.grounding.checkers import ConsistencyChecker


@dataclass(frozen=True)
class FaithfulnessExample:
    """One summary of a document, labelled consistent (1) or not (0)."""

    id: str
    domain: str
    document: str
    summary: str
    label: int


def load_faithfulness_examples(path: Path, limit: int | None = None) -> list[FaithfulnessExample]:
    """Read the rows; every problem names its line.

    Raises:
        BadDataFile: an unreadable file, a missing field, a label that is not 0 or 1, no rows.
    """
    examples: list[FaithfulnessExample] = []
    for number, record in jsonl_records(path):
        for key in ("document", "summary"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise BadDataFile(f"{path}:{number}: missing or empty field {key!r}")
        if record.get("label") not in (0, 1):
            raise BadDataFile(f"{path}:{number}: label must be 1 (consistent) or 0")
        examples.append(
            FaithfulnessExample(
                id=str(record.get("id", number)),
                domain=str(record.get("domain") or "all"),
                document=record["document"],
                summary=record["summary"],
                label=int(record["label"]),
            )
        )
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        raise BadDataFile(f"{path}: no rows")
    return examples


def balanced_accuracy(labels: Sequence[int], consistent: Sequence[bool]) -> float:
    """Mean recall of the two classes ×100 (a class absent from ``labels`` is left out)."""
    recalls = []
    for label in (0, 1):
        rows = [c for y, c in zip(labels, consistent, strict=True) if y == label]
        if rows:
            right = sum((c if label == 1 else not c) for c in rows)
            recalls.append(right / len(rows))
    return 100.0 * sum(recalls) / len(recalls) if recalls else 0.0


def by_domain(
    examples: Sequence[FaithfulnessExample], consistent: Sequence[bool]
) -> dict[str, float]:
    """Balanced accuracy per domain, and ``overall``: their mean."""
    domains = sorted({e.domain for e in examples})
    scores = {}
    for domain in domains:
        rows = [
            (e.label, c) for e, c in zip(examples, consistent, strict=True) if e.domain == domain
        ]
        scores[domain] = balanced_accuracy([y for y, _ in rows], [c for _, c in rows])
    return {"overall": sum(scores.values()) / len(scores), **scores}


def document_interval(
    examples: Sequence[FaithfulnessExample],
    consistent: Sequence[bool],
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """95 % interval of the overall balanced accuracy, resampling documents within domains."""
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault((example.domain, example.document), []).append(index)
    per_domain: dict[str, list[list[int]]] = {}
    for (domain, _), rows in groups.items():
        per_domain.setdefault(domain, []).append(rows)
    values = []
    for _ in range(resamples):
        chosen: list[int] = []
        for documents in per_domain.values():
            for _ in documents:
                chosen.extend(rng.choice(documents))
        values.append(
            by_domain([examples[i] for i in chosen], [consistent[i] for i in chosen])["overall"]
        )
    values.sort()
    return values[int(0.025 * resamples)], values[int(0.975 * resamples) - 1]


def evaluate_checker(
    checker: ConsistencyChecker,
    examples: Iterable[FaithfulnessExample],
    total: int,
) -> dict[str, Any]:
    """Run ``checker`` over ``examples``; the report ``condensa eval grounding --json`` prints."""
    seen: list[FaithfulnessExample] = []
    verdicts: list[bool] = []
    started = time.perf_counter()
    for example in examples:
        seen.append(example)
        verdicts.append(checker.consistent(example.document, example.summary))
    elapsed = time.perf_counter() - started
    return verdict_report(checker.name, seen, verdicts, elapsed / max(1, len(seen)), total)


def verdict_report(
    name: str,
    examples: Sequence[FaithfulnessExample],
    verdicts: Sequence[bool],
    seconds_per_example: float,
    total: int | None = None,
) -> dict[str, Any]:
    """Balanced accuracy per domain and overall, its interval and the recall of each class."""
    scores = by_domain(examples, verdicts)
    low, high = document_interval(examples, verdicts)
    flagged_right = [not c for e, c in zip(examples, verdicts, strict=True) if e.label == 0]
    kept_right = [c for e, c in zip(examples, verdicts, strict=True) if e.label == 1]
    return {
        "checker": name,
        "examples": len(examples) if total is None else total,
        "balanced_accuracy": {k: round(v, 2) for k, v in scores.items()},
        "overall_interval": [round(low, 2), round(high, 2)],
        "recall_inconsistent": round(100 * sum(flagged_right) / max(1, len(flagged_right)), 2),
        "recall_consistent": round(100 * sum(kept_right) / max(1, len(kept_right)), 2),
        "seconds_per_example": round(seconds_per_example, 4),
    }
