"""Train the shipped learned-extractive heads and report them on data they never saw.

Protocol (nothing is tuned on what is reported):
- English news: 5-fold cross-validation on the 100 CNN/DM articles (every article summarized
  by a head trained on the other 80); the shipped ``news-en`` head is then fit on all 100.
- Spanish news: cross-lingual transfer. ``news-multi`` is trained on the English CNN/DM
  articles over multilingual-e5 features and applied to the 22 BASSE articles, none of which
  is ever trained on.
- Conversations: ``conversation-en`` / ``conversation-multi`` are trained on DialogSum's
  train300 file and reported on dev200 (disjoint dialogues).
Beside ``embedding`` and Lead-3, same scorer as ``condensa eval summary``, 3 sentences, 95 %
bootstrap intervals. Also reported: what did not help (gradient boosting instead of logistic
regression; no trigram blocking), and how often the genre detector calls each set right.

    .venv/bin/python bench/learned_extractive.py [--write-heads]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.evaluation.data import load_summary_examples  # noqa: E402
from services.summarize.learned.features import is_conversation  # noqa: E402
from services.summarize.learned.ranker import SHIPPED_DIR  # noqa: E402
from services.summarize.learned.training import (  # noqa: E402
    Document,
    build_documents,
    compare,
    cross_validated_selections,
    fit,
    fold_spread,
    learned_selection,
    score_selections,
    summary_table,
)

EVAL = REPO.parent / "shared" / "data" / "eval"
COUNT = 3


def documents(file: str, encoder: str) -> list[Document]:
    started = time.perf_counter()
    examples = load_summary_examples(EVAL / file)
    built = build_documents(examples, encoder)
    print(
        f"featurized {file} with {encoder}: {len(built)} docs in "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return built


def rows(name: str, table: dict[str, Any]) -> list[str]:
    out = []
    for system, metrics in table.items():
        cells = " / ".join(f"{metrics[k]['mean']:.2f}" for k in ("rouge1", "rouge2", "rougeLsum"))
        low, high = metrics["rougeLsum"]["low"], metrics["rougeLsum"]["high"]
        out.append(f"| {name} | {system} | {cells} | [{low:.2f}, {high:.2f}] |")
    return out


def gradient_boosting_cv(docs: list[Document]) -> list[dict[str, float]]:
    """The same k-fold protocol with scikit-learn's HistGradientBoostingClassifier."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import KFold

    from services.summarize.learned.ranker import trigram_blocked

    selections: list[list[int]] = [[] for _ in docs]
    for train, test in KFold(5, shuffle=True, random_state=0).split(np.arange(len(docs))):
        model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
        model.fit(
            np.vstack([docs[i].features for i in train]),
            np.concatenate([docs[i].labels for i in train]),
        )
        for i in test:
            scores = model.predict_proba(docs[i].features)[:, 1]
            selections[i] = trigram_blocked(scores, docs[i].text.words, COUNT)
    return score_selections(docs, selections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--write-heads", action="store_true", help="save the shipped heads")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    table = ["| set | system | R1 / R2 / RLsum | RLsum 95 % |", "|---|---|---|---|"]

    cnndm = documents("summ_en_cnndm_summeval100.jsonl", "minilm")
    selections, fold_of = cross_validated_selections(cnndm, "minilm", 5, COUNT)
    results = compare(cnndm, selections, COUNT)
    report["cnndm_cv"] = summary_table(results)
    report["cnndm_fold_spread"] = fold_spread(results["learned"], fold_of)
    report["cnndm_gbm_cv"] = summary_table({"gbm": gradient_boosting_cv(cnndm)})
    fixed = {}
    for label, configuration in (
        ("always features only", (0.01, False)),
        ("always + embedding", (0.01, True)),
    ):
        chosen, _ = cross_validated_selections(
            cnndm, "minilm", 5, COUNT, configuration=configuration
        )
        fixed[label] = score_selections(cnndm, chosen)
    report["cnndm_fixed_configurations_cv"] = summary_table(fixed)
    table += rows("CNN/DM en (5-fold)", report["cnndm_cv"])

    cnndm_e5 = documents("summ_en_cnndm_summeval100.jsonl", "e5")
    basse = documents("summ_es_basse_dev22.jsonl", "e5")
    news_multi = fit(cnndm_e5, "e5")
    results = compare(basse, [learned_selection(news_multi, d, COUNT) for d in basse], COUNT)
    report["basse_transfer"] = summary_table(results)
    table += rows("BASSE es (trained on CNN/DM)", report["basse_transfer"])

    train_en = documents("summ_en_dialogsum_train300.jsonl", "minilm")
    dev_en = documents("summ_en_dialogsum_dev200.jsonl", "minilm")
    conversation_en = fit(train_en, "minilm")
    results = compare(dev_en, [learned_selection(conversation_en, d, COUNT) for d in dev_en], 3)
    report["dialogsum_dev"] = summary_table(results)
    unblocked = [
        sorted(np.argsort(-conversation_en.scores(d.features))[:COUNT].tolist()) for d in dev_en
    ]
    report["dialogsum_no_trigram_blocking"] = summary_table(
        {"no blocking": score_selections(dev_en, unblocked)}
    )
    table += rows("DialogSum dev200 (trained on train300)", report["dialogsum_dev"])

    report["genre_detection"] = {
        "cnndm_as_news": sum(not is_conversation(d.text.sentences) for d in cnndm) / len(cnndm),
        "basse_as_news": sum(not is_conversation(d.text.sentences) for d in basse) / len(basse),
        "dialogsum_as_conversation": sum(is_conversation(d.text.sentences) for d in dev_en)
        / len(dev_en),
    }
    print("\n".join(table))
    print(json.dumps({k: report[k] for k in ("cnndm_fold_spread", "genre_detection")}, indent=1))
    print("gbm (CNN/DM 5-fold):", rows("", report["cnndm_gbm_cv"])[0])
    for line in rows("CNN/DM 5-fold", report["cnndm_fixed_configurations_cv"]):
        print(line)
    print("no trigram blocking (DialogSum):", rows("", report["dialogsum_no_trigram_blocking"])[0])

    if args.write_heads:
        train_e5 = documents("summ_en_dialogsum_train300.jsonl", "e5")
        heads = {
            "news-en": (fit(cnndm, "minilm"), "CNN/DM SummEval 100 (en)", report["cnndm_cv"]),
            "news-multi": (news_multi, "CNN/DM SummEval 100 (en), e5", report["basse_transfer"]),
            "conversation-en": (conversation_en, "DialogSum train300", report["dialogsum_dev"]),
            "conversation-multi": (fit(train_e5, "e5"), "DialogSum train300, e5", {}),
        }
        for name, (head, data, held_out) in heads.items():
            about = {**head.about, "trained_on": data, "held_out": held_out}
            replace(head, about=about).save(SHIPPED_DIR / f"{name}.json")
            print(f"wrote heads/{name}.json, configuration {head.about}", file=sys.stderr)
    out = REPO / "bench" / "results" / "learned_extractive.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
