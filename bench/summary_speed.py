"""Speed of every summary method against document length, with sumy's LexRank beside ours.

Documents of 100 to 1,600 sentences are cut from the CNN/DailyMail evaluation articles (or a
built-in article when the shared data is absent). Like for like: every cell is end to end on
the same raw text (split + tokenize + rank, top 10), every method warm (one untimed call
first), best of --repeat runs for every method, sumy's included (its own tokenizing and
stemming inside). The split + tokenize step alone has its own row. A method that took over
--budget seconds at one size is skipped at larger sizes. Prints a Markdown table and writes
bench/results/summary_speed.json.

    .venv/bin/python bench/summary_speed.py [--sizes 100,400,1600] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.summarize.prepared import PreparedText, prepare_text  # noqa: E402
from services.summarize.rankers.embedding import EmbeddingRanker  # noqa: E402
from services.summarize.rankers.lead import LeadRanker  # noqa: E402
from services.summarize.rankers.lexrank import LexRankRanker  # noqa: E402
from services.summarize.rankers.sumy_family import sumy_rankers  # noqa: E402
from services.summarize.rankers.textteaser import TextTeaserRanker  # noqa: E402

EVAL = REPO.parent / "shared" / "data" / "eval" / "summ_en_cnndm_summeval100.jsonl"


def corpus_sentences() -> list[str]:
    if EVAL.exists():
        text = "\n\n".join(json.loads(line)["text"] for line in EVAL.read_text().splitlines())
    else:
        from tests.conftest import ENGLISH_ARTICLE

        text = " ".join([ENGLISH_ARTICLE] * 150)
    return prepare_text(text, "en").sentences


def sumy_lexrank(text: PreparedText, count: int) -> list[int]:
    """sumy's own LexRank on the same sentences (the reference our LexRank must match)."""
    from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
    from sumy.nlp.stemmers import Stemmer
    from sumy.summarizers.lex_rank import LexRankSummarizer

    from services.summarize.rankers.sumy_family import _WordTokenizer
    from services.text.lexicon import stop_words

    sentences = [Sentence(s, _WordTokenizer()) for s in text.sentences]
    summarizer = LexRankSummarizer(Stemmer("english"))
    summarizer.stop_words = stop_words("en")
    picked = {id(s) for s in summarizer(ObjectDocumentModel([Paragraph(sentences)]), count)}
    return [i for i, s in enumerate(sentences) if id(s) in picked]


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="100,200,400,800,1600")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget", type=float, default=30.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pool = corpus_sentences()
    rankers: dict[str, Callable[[PreparedText, int], list[int]]] = {
        "lexrank (ours)": LexRankRanker().select,
        "lexrank (sumy)": sumy_lexrank,
        **{name: r.select for name, r in sumy_rankers().items()},
        "textteaser": TextTeaserRanker().select,
        "embedding": EmbeddingRanker().select,
        "lead": LeadRanker().select,
    }
    table: dict[str, dict[int, float | None]] = {"split + tokenize": {}}
    table.update({name: {} for name in rankers})
    same: dict[int, bool] = {}
    skipped: set[str] = set()
    for size in sizes:
        sentences = (pool * (size // len(pool) + 1))[:size]
        raw = " ".join(sentences)
        table["split + tokenize"][size] = best_of(
            args.repeat, lambda raw=raw: prepare_text(raw, "en")
        )
        prepared = prepare_text(raw, "en")
        for name, select in rankers.items():
            if name in skipped:
                table[name][size] = None
                continue
            if size == sizes[0]:
                select(prepared, 10)  # warm: models, stemmers and caches loaded for everyone
            seconds = best_of(args.repeat, lambda s=select, r=raw: s(prepare_text(r, "en"), 10))
            table[name][size] = seconds
            if seconds > args.budget:
                skipped.add(name)
            print(f"{size:>5} {name:<16} {seconds:8.3f} s", file=sys.stderr)
        if table["lexrank (sumy)"].get(size) is not None:
            same[size] = LexRankRanker().select(prepared, 10) == sumy_lexrank(prepared, 10)
    print("| method | " + " | ".join(f"{s} sent." for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name, row in table.items():
        cells = [f"{row[s]:.3f}" if row.get(s) is not None else "skipped" for s in sizes]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for size in sizes:
        ours, theirs = table["lexrank (ours)"].get(size), table["lexrank (sumy)"].get(size)
        if ours and theirs:
            print(
                f"{size} sentences: our LexRank is {theirs / ours:.0f}x faster than sumy's; "
                f"same sentences: {same.get(size)}"
            )
    out = REPO / "bench" / "results" / "summary_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seconds": table, "same_selection": same}, indent=2))
    print(f"\nwritten {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
