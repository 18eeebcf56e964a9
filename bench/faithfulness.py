"""How often do summaries invent details? A cheap, automatic proxy for hallucination.

For each predicted summary (``{"id", "summary"}`` JSONL, as ``condensa eval summary
--predictions-out`` writes), it lists the numbers and capitalized words (not sentence-initial)
that never occur in the source text. A summary with at least one such token "invents" a detail:
a date, an amount, a person or a place the article does not mention. Extractive summaries score
0 by construction; the proxy misses invented facts made of ordinary words.

    .venv/bin/python bench/faithfulness.py --data SET.jsonl --predictions PRED.jsonl [--show 5]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.grounding.align import known_words  # noqa: E402
from services.grounding.align import novel_details as sentence_details  # noqa: E402
from services.text.splitting import split_sentences  # noqa: E402


def novel_details(summary: str, source: str, language: str) -> list[str]:
    """Numbers and non-initial capitalized words of ``summary`` absent from ``source`` (the
    same check the bot's grounding makes)."""
    known = known_words(source)
    return [d for s in split_sentences(summary, language) for d in sentence_details(s, known)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--predictions", type=Path, required=True)
    parser.add_argument("--show", type=int, default=5)
    args = parser.parse_args()
    sources = {}
    for line in args.data.read_text().splitlines():
        record = json.loads(line)
        sources[str(record["id"])] = (record["text"], record.get("lang", "en"))
    rows = [json.loads(line) for line in args.predictions.read_text().splitlines()]
    inventing = []
    for row in rows:
        text, language = sources[str(row["id"])]
        details = novel_details(row["summary"], text, language)
        if details:
            inventing.append((row["id"], details, row["summary"]))
    share = 100 * len(inventing) / len(rows) if rows else 0.0
    print(
        f"{len(inventing)} of {len(rows)} summaries ({share:.0f} %) contain a number or name "
        "that is not in the source"
    )
    for doc_id, details, summary in inventing[: args.show]:
        print(f"- {doc_id}: {', '.join(details[:6])}\n  {summary[:300]}")


if __name__ == "__main__":
    main()
