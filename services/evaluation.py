"""Evaluating summaries: JSONL loading, ROUGE scoring per language, bootstrap intervals.

Scoring follows ``shared/data/eval/README.md`` so numbers compare with the literature: Google's
``rouge-score``; English with its default tokenizer and Porter stemming; Spanish with a tokenizer
that keeps accented letters (NFC, lowercase, ``\\w+``) and a Snowball Spanish stemmer (the
default tokenizer turns "España" into "espa a"). ROUGE-Lsum gets one sentence per line.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.errors import CondensaError
from services.protocols import Summarizer, SummaryOptions
from services.text import split_sentences

ROUGE_TYPES = ("rouge1", "rouge2", "rougeLsum")
_WORD_RE = re.compile(r"\w+")


class BadDataFile(CondensaError):
    """An evaluation or training file that cannot be used, with the line at fault."""

    code = "bad_data"


@dataclass(frozen=True)
class SummaryExample:
    """One document with its reference summary (and any extra references)."""

    id: str
    text: str
    summary: str
    language: str = ""
    extra_refs: list[str] = field(default_factory=list)


def jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file.

    Raises:
        BadDataFile: an unreadable file, or a line that is not a JSON object (with its number).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadDataFile(f"{path}: cannot read: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadDataFile(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise BadDataFile(f"{path}:{number}: expected a JSON object")
        yield number, record


def load_summary_examples(path: Path, limit: int | None = None) -> list[SummaryExample]:
    """Read ``{"text", "summary"}`` JSONL; every problem names its line.

    Raises:
        BadDataFile: unreadable file, a line that is not a JSON object, a missing or empty field,
            or no example at all.
    """
    examples: list[SummaryExample] = []
    for number, record in jsonl_records(path):
        for key in ("text", "summary"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise BadDataFile(f"{path}:{number}: missing or empty field {key!r}")
        extra = record.get("extra_refs") or []
        examples.append(
            SummaryExample(
                id=str(record.get("id", number)),
                text=record["text"],
                summary=record["summary"],
                language=str(record.get("lang") or ""),
                extra_refs=[r for r in extra if isinstance(r, str)],
            )
        )
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        raise BadDataFile(f"{path}: no examples")
    return examples


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
    """Mean of ``values`` and the 2.5–97.5 percentile interval of resampled means."""
    if not values:
        return MetricSummary(0.0, 0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return MetricSummary(
        mean=sum(values) / n,
        low=means[int(0.025 * (resamples - 1))],
        high=means[int(0.975 * (resamples - 1))],
    )


@dataclass
class EvaluationRun:
    """Per-document scores and predictions of one method on one set."""

    method: str
    scores: list[dict[str, float]] = field(default_factory=list)
    predictions: list[dict[str, str]] = field(default_factory=list)
    refused: int = 0


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


@dataclass(frozen=True)
class KeyphraseExample:
    """A document with its gold keyphrases."""

    id: str
    text: str
    keyphrases: list[str]
    language: str = "en"


def load_keyphrase_examples(path: Path, limit: int | None = None) -> list[KeyphraseExample]:
    """Read ``{"text", "keyphrases"}`` JSONL; every problem names its line."""
    examples: list[KeyphraseExample] = []
    for number, record in jsonl_records(path):
        text, gold = record.get("text"), record.get("keyphrases")
        if not isinstance(text, str) or not text.strip():
            raise BadDataFile(f"{path}:{number}: missing or empty field 'text'")
        if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold) or not gold:
            raise BadDataFile(f"{path}:{number}: 'keyphrases' must be a non-empty list of strings")
        examples.append(
            KeyphraseExample(
                str(record.get("id", number)), text, gold, str(record.get("lang") or "en")
            )
        )
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        raise BadDataFile(f"{path}: no examples")
    return examples


class PhraseNormalizer:
    """Lowercase, tokenize on non-word characters, stem each token (Porter / Snowball)."""

    def __init__(self, language: str) -> None:
        import snowballstemmer

        self._stemmer = snowballstemmer.stemmer("spanish" if language == "es" else "porter")

    def __call__(self, phrase: str) -> str:
        """The normalized form of ``phrase``."""
        words = _WORD_RE.findall(unicodedata.normalize("NFC", phrase).lower())
        return " ".join(str(w) for w in self._stemmer.stemWords(words))


def keyphrase_scores(
    predicted: Sequence[str], gold: Sequence[str], k: int, normalize: PhraseNormalizer
) -> tuple[float, float, float]:
    """Precision, recall and F1 of the top ``k`` predictions (exact match after normalizing).

    Predictions are de-duplicated after normalization before the cut; precision divides by the
    number of predictions kept (at most ``k``), recall by the number of distinct gold phrases.
    """
    seen: list[str] = []
    for phrase in predicted:
        form = normalize(phrase)
        if form and form not in seen:
            seen.append(form)
    top = seen[:k]
    truth = {normalize(g) for g in gold} - {""}
    if not top or not truth:
        return 0.0, 0.0, 0.0
    correct = len(set(top) & truth)
    precision, recall = correct / len(top), correct / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if correct else 0.0
    return precision, recall, f1


def present_gold(gold: Sequence[str], text: str, normalize: PhraseNormalizer) -> list[str]:
    """Gold phrases whose normalized form occurs in the normalized text."""
    haystack = f" {normalize(text)} "
    return [g for g in gold if normalize(g) and f" {normalize(g)} " in haystack]


def keyphrase_report(
    rows: Sequence[tuple[KeyphraseExample, Sequence[str]]],
) -> dict[str, dict[str, float]]:
    """Macro-averaged F1@5 and F1@10 (all gold, and present-only) × 100 with intervals."""
    normalizers: dict[str, PhraseNormalizer] = {}
    metrics: dict[str, list[float]] = {
        "f1@5": [],
        "f1@10": [],
        "present_f1@5": [],
        "present_f1@10": [],
    }
    for example, predicted in rows:
        normalize = normalizers.setdefault(example.language, PhraseNormalizer(example.language))
        for k in (5, 10):
            metrics[f"f1@{k}"].append(
                100 * keyphrase_scores(predicted, example.keyphrases, k, normalize)[2]
            )
        present = present_gold(example.keyphrases, example.text, normalize)
        if present:
            for k in (5, 10):
                metrics[f"present_f1@{k}"].append(
                    100 * keyphrase_scores(predicted, present, k, normalize)[2]
                )
    return {name: bootstrap(values).as_dict() for name, values in metrics.items()}
