"""Keyphrase quality and speed: our extractor, stock KeyBERT and YAKE on the same documents.

F1@5 / F1@10 (all gold and present-only) with the shared scorer (services/evaluation.py, as
shared/data/eval/README.md prescribes), and seconds per document, in one run on one machine.
Stock KeyBERT: all-MiniLM-L6-v2, 1–3-grams, the language's stop words, no MMR. YAKE: n=3, top 10.
Condensa runs with each embedding model on each set, which is how the per-language default
(services/keywords.DEFAULT_MODELS) was chosen. Like for like: every system warm (models loaded
once), nothing cached across documents (a fresh Condensa extractor per document; one YAKE
extractor per language).

    .venv/bin/python bench/keywords_quality.py [--limit 200] [--max-candidates 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.core.executor import ModelExecutor  # noqa: E402
from services.embeddings.cache import EmbeddingCache  # noqa: E402
from services.evaluation.data import load_keyphrase_examples  # noqa: E402
from services.evaluation.keyphrases import keyphrase_report  # noqa: E402
from services.keywords.extractor import KeyBERTExtractor  # noqa: E402
from services.text.lexicon import keyword_stop_words  # noqa: E402

EVAL = REPO.parent / "shared" / "data" / "eval"
SETS = {
    "Inspec (en)": "kp_en_inspec.jsonl",
    "SemEval-2017 MT (es)": "kp_es_semeval2017_mt_dev250.jsonl",
}


def stock_keybert() -> Callable[[str, str], list[str]]:
    from keybert import KeyBERT

    from services.embeddings.models import load_sentence_model

    model = KeyBERT(model=load_sentence_model())

    def extract(text: str, language: str) -> list[str]:
        pairs = model.extract_keywords(
            text,
            keyphrase_ngram_range=(1, 3),
            stop_words=sorted(keyword_stop_words(language)),
            top_n=10,
        )
        return [phrase for phrase, _ in pairs]

    return extract


def yake_extractor() -> Callable[[str, str], list[str]]:
    import yake

    extractors: dict[str, object] = {}

    def extract(text: str, language: str) -> list[str]:
        if language not in extractors:  # built once per language, like the others' models
            extractors[language] = yake.KeywordExtractor(lan=language, n=3, top=10)
        extractor = extractors[language]
        return [phrase for phrase, _ in extractor.extract_keywords(text)]  # type: ignore[attr-defined]

    return extract


def ours(model: str, max_candidates: int = 30) -> Callable[[str, str], list[str]]:
    executor = ModelExecutor(1, 1)

    def extract(text: str, language: str) -> list[str]:
        # A fresh extractor and embedding cache per document: no embedding carries over from
        # one document to the next (the model itself stays loaded, as for the others).
        extractor = KeyBERTExtractor(
            executor, models={"*": model}, max_candidates=max_candidates, cache=EmbeddingCache()
        )
        result = asyncio.run(extractor.extract(text, 10, language))
        return [k.phrase for k in result.keyphrases]

    return extract


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument(
        "--max-candidates", type=int, default=30, help="condensa's candidate cap (0: none)"
    )
    args = parser.parse_args()
    cap = args.max_candidates or 1_000_000
    systems = {
        "condensa minilm": ours("minilm", cap),
        "condensa e5": ours("e5", cap),
        "stock KeyBERT": stock_keybert(),
        "YAKE": yake_extractor(),
    }
    report: dict[str, dict[str, object]] = {}
    for label, name in SETS.items():
        examples = load_keyphrase_examples(EVAL / name, args.limit)
        report[label] = {}
        for system, extract in systems.items():
            extract(examples[0].text, examples[0].language)  # load models before timing
            started = time.perf_counter()
            rows = [(e, extract(e.text, e.language)) for e in examples]
            seconds = (time.perf_counter() - started) / len(examples)
            scores = keyphrase_report(rows)
            report[label][system] = {"scores": scores, "seconds_per_doc": seconds}
            print(f"{label:<22} {system:<14} F1@10 {scores['f1@10']['mean']:.2f}", file=sys.stderr)
    print("| set | system | F1@5 | F1@10 | present F1@5 | present F1@10 | s/doc |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, systems_report in report.items():
        for system, result in systems_report.items():
            s = result["scores"]  # type: ignore[index]
            print(
                f"| {label} | {system} | {s['f1@5']['mean']:.2f} | {s['f1@10']['mean']:.2f} | "
                f"{s['present_f1@5']['mean']:.2f} | {s['present_f1@10']['mean']:.2f} | "
                f"{result['seconds_per_doc']:.3f} |"
            )
    out = REPO / "bench" / "results" / "keywords_quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"limit": args.limit, "max_candidates": args.max_candidates, "results": report},
            indent=2,
        )
    )
    print(f"\nwritten {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
