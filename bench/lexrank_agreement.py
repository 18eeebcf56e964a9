"""Does our LexRank pick what sumy's LexRank picks? Every evaluation document, 3 sentences.

For each document where the two selections differ, the script checks that the sentences
involved have *equal* sumy scores (within 1e-12): a mathematical tie. sumy then picks by
floating-point rounding noise, ours picks the earlier sentence. Any other difference is a bug
and makes the script exit 1.

    .venv/bin/python bench/lexrank_agreement.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from sumy.models.dom import Sentence  # noqa: E402
from sumy.nlp.stemmers import Stemmer  # noqa: E402
from sumy.summarizers.lex_rank import LexRankSummarizer  # noqa: E402

from services.summarize.prepared import prepare_text  # noqa: E402
from services.summarize.rankers.lexrank import LexRankRanker, top_indices  # noqa: E402
from services.summarize.rankers.sumy_family import _WordTokenizer  # noqa: E402
from services.text.language import language_name  # noqa: E402
from services.text.lexicon import stop_words  # noqa: E402

EVAL = REPO.parent / "shared" / "data" / "eval"
SETS = (
    "summ_en_cnndm_summeval100.jsonl",
    "summ_es_basse_dev22.jsonl",
    "summ_en_dialogsum_dev200.jsonl",
)


def sumy_scores(sentences: list[str], language: str) -> list[float]:
    """sumy's own LexRank ratings, computed with its own methods."""
    summarizer = LexRankSummarizer(Stemmer(language_name(language)))
    summarizer.stop_words = stop_words(language)
    words = [summarizer._to_words_set(Sentence(s, _WordTokenizer())) for s in sentences]  # noqa: SLF001
    tf = summarizer._compute_tf(words)  # noqa: SLF001
    idf = summarizer._compute_idf(words)  # noqa: SLF001
    matrix = summarizer._create_matrix(words, summarizer.threshold, tf, idf)  # noqa: SLF001
    return list(summarizer.power_method(matrix, summarizer.epsilon))


def main() -> int:
    unexplained = 0
    for name in SETS:
        documents = [json.loads(line) for line in (EVAL / name).read_text().splitlines()]
        same = ties = 0
        for document in documents:
            text = prepare_text(document["text"], document.get("lang", ""))
            ours = LexRankRanker().select(text, 3)
            scores = sumy_scores(text.sentences, text.language)
            # sumy's choice: its rating order (a stable sort on its raw scores).
            theirs = sorted(np.argsort(-np.asarray(scores), kind="stable")[:3].tolist())
            if ours == theirs:
                same += 1
                continue
            swapped = sorted(set(ours) ^ set(theirs))
            values = [scores[i] for i in swapped]
            if max(values) - min(values) <= 1e-12 and top_indices(np.asarray(scores), 3) == ours:
                ties += 1
            else:
                unexplained += 1
                print(f"  UNEXPLAINED {document['id']}: ours {ours} sumy {theirs}")
        print(f"{name}: {same}/{len(documents)} identical; {ties} differ only on exact ties")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
