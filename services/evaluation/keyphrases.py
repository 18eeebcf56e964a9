"""Keyphrase evaluation: F1@k on normalized (stemmed) phrases, present-only gold, bootstrap."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from services.evaluation.data import KeyphraseExample
from services.evaluation.rouge import bootstrap

_WORD_RE = re.compile(r"\w+")


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
