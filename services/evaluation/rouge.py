"""Summary evaluation: ROUGE per language (Porter for English, Snowball for Spanish) with
bootstrap intervals from ``rouge_score``, and the loop that scores a summarizer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.core.errors import CondensaError
from services.core.protocols import Summarizer
from services.core.types import SummaryOptions
from services.evaluation.data import SummaryExample
from services.grounding.align import ground, supported_share
from services.text.splitting import clean_text, split_sentences

ROUGE_TYPES = ("rouge1", "rouge2", "rougeLsum")
_WORD_RE = re.compile(r"\w+")


class SpanishTokenizer:
    """rouge-score tokenizer for Spanish: keeps accented letters, Snowball-stems each word."""

    def __init__(self) -> None:
        import snowballstemmer

        self._stemmer = snowballstemmer.stemmer("spanish")

    def tokenize(self, text: str) -> list[str]:
        """Lowercased, NFC-normalized, stemmed word tokens."""
        words = _WORD_RE.findall(unicodedata.normalize("NFC", text).lower())
        return [str(w) for w in self._stemmer.stemWords(words)]


def make_scorer(language: str) -> Any:
    """A ``rouge_score.RougeScorer`` set up for ``language`` as the eval README prescribes."""
    from rouge_score import rouge_scorer

    if language == "es":
        return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=SpanishTokenizer())
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def lsum_lines(text: str, language: str) -> str:
    """One sentence per line, as ROUGE-Lsum expects."""
    return "\n".join(split_sentences(text, language))


def score_pair(scorer: Any, prediction: str, reference: str, language: str) -> dict[str, float]:
    """ROUGE F1 × 100 of one prediction against one reference."""
    scores = scorer.score(lsum_lines(reference, language), lsum_lines(prediction, language))
    return {name: 100 * scores[name].fmeasure for name in ROUGE_TYPES}


@dataclass(frozen=True)
class MetricSummary:
    """Mean of a metric over documents with its bootstrap 95 % interval."""

    mean: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        """Rounded for reports."""
        return {
            "mean": round(self.mean, 2),
            "low": round(self.low, 2),
            "high": round(self.high, 2),
        }


def bootstrap(values: Sequence[float], resamples: int = 1000, seed: int = 0) -> MetricSummary:
    """Mean of ``values`` and the 95 % interval of resampled means, by ``rouge_score``'s
    ``BootstrapAggregator``.

    The aggregator draws from NumPy's global generator; it is seeded for repeatable reports and
    its previous state restored afterwards.
    """
    import numpy as np
    from rouge_score.scoring import BootstrapAggregator, Score

    if not values:
        return MetricSummary(0.0, 0.0, 0.0)
    aggregator = BootstrapAggregator(confidence_interval=0.95, n_samples=resamples)
    for value in values:
        aggregator.add_scores({"metric": Score(value, value, value)})
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        interval = aggregator.aggregate()["metric"]
    finally:
        np.random.set_state(state)
    return MetricSummary(
        mean=float(sum(values) / len(values)),
        low=float(interval.low.fmeasure),
        high=float(interval.high.fmeasure),
    )


@dataclass
class EvaluationRun:
    """Per-document scores and predictions of one method on one set."""

    method: str
    scores: list[dict[str, float]] = field(default_factory=list)
    predictions: list[dict[str, str]] = field(default_factory=list)
    refused: int = 0
    faithfulness: list[float] = field(default_factory=list)
    """Per document, the share of summary sentences whose names, numbers and content words the
    source contains (lexical grounding; 1.0 for extractive summaries by construction)."""


async def evaluate_summarizer(
    summarizer: Summarizer,
    examples: Iterable[SummaryExample],
    method: str,
    sentences: int | None = 3,
) -> EvaluationRun:
    """Summarize every example with ``method`` and score it against its reference.

    A refused document (too short, …) counts as an empty prediction and in ``refused``.
    """
    run = EvaluationRun(method)
    scorers: dict[str, Any] = {}
    for example in examples:
        options = SummaryOptions(method=method, sentences=sentences, language=example.language)
        try:
            summary = await summarizer.summarize(example.text, options)
            prediction, language = summary.text, summary.language
            source = split_sentences(clean_text(example.text), language)
            grounded = ground(summary.sentences, source, language)
            run.faithfulness.append(100 * supported_share(grounded))
        except CondensaError:
            prediction, language = "", example.language or "en"
            run.refused += 1
        scorer = scorers.setdefault(language, make_scorer(language))
        run.scores.append(score_pair(scorer, prediction, example.summary, language))
        run.predictions.append({"id": example.id, "summary": prediction})
    return run


def summarize_scores(per_document: list[dict[str, float]]) -> dict[str, MetricSummary]:
    """Bootstrap summary of each ROUGE type over documents."""
    return {name: bootstrap([d[name] for d in per_document]) for name in ROUGE_TYPES}
