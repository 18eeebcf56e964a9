"""Training and honest evaluation of learned extractive heads.

One document becomes: its prepared sentences, their features under the head's encoder, the
greedy-oracle labels, and MiniLM vectors for the ``embedding`` baseline. Evaluation is k-fold:
every document is summarized by a head that never saw it, beside ``embedding`` and Lead-3, all
scored with ``condensa eval summary``'s scorer and bootstrap intervals.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from services.core.errors import CondensaError
from services.core.protocols import EmbeddingBackend
from services.core.types import model_name_problem
from services.evaluation.data import SummaryExample
from services.evaluation.rouge import ROUGE_TYPES, make_scorer, score_pair, summarize_scores
from services.summarize.learned.features import FEATURES, head_inputs
from services.summarize.learned.head import SentenceHead, fit_head
from services.summarize.learned.oracle import greedy_oracle, rouge_gain
from services.summarize.learned.ranker import NAME_FILE, default_backends, trigram_blocked
from services.summarize.prepared import PreparedText, prepare_text
from services.summarize.rankers.embedding import EmbeddingRanker
from services.text.lexicon import stemmer
from services.text.splitting import tokenize_words

logger = logging.getLogger(__name__)

ORACLE_SENTENCES = 3
EMBED_DOCUMENTS = 64
"""Documents whose sentences go to the encoder in one call."""
CONFIGURATIONS: tuple[tuple[float, bool], ...] = (
    (0.01, True),
    (0.1, True),
    (0.01, False),
    (0.1, False),
)
"""(C, reads the sentence embedding) candidates; the simplest that wins is kept on ties."""


@dataclass
class Document:
    """One training or evaluation document, featurized."""

    id: str
    language: str
    reference: str
    text: PreparedText
    features: np.ndarray
    labels: np.ndarray
    baseline_vectors: np.ndarray
    tokens: list[list[str]]
    reference_tokens: list[str]


def oracle_tokens(text: str, language: str) -> list[str]:
    """Lowercased, stemmed word tokens (stop words kept), as the oracle compares them."""
    stem = stemmer(language)
    return [stem(w.lower()) for w in tokenize_words(text)]


def encoder_for(language: str) -> str:
    """MiniLM for English (faster, measured better there), multilingual-e5 otherwise."""
    return "minilm" if language == "en" else "e5"


def _embed_many(backend: EmbeddingBackend, texts: Sequence[PreparedText]) -> list[np.ndarray]:
    """Sentence vectors of many documents from one encoder call per batch of documents: the
    encoder sorts a call's sentences by length, so batching across documents pads less."""
    vectors: list[np.ndarray] = []
    for start in range(0, len(texts), EMBED_DOCUMENTS):
        batch = texts[start : start + EMBED_DOCUMENTS]
        flat = np.asarray(backend.embed([s for t in batch for s in t.sentences]))
        offset = 0
        for text in batch:
            vectors.append(flat[offset : offset + len(text.sentences)])
            offset += len(text.sentences)
    return vectors


def build_documents(
    examples: Sequence[SummaryExample],
    encoder: str,
    backends: Callable[[str], EmbeddingBackend] = default_backends,
) -> list[Document]:
    """Featurize ``examples`` (documents too short to summarize are skipped)."""
    usable: list[tuple[SummaryExample, PreparedText]] = []
    for example in examples:
        try:
            text = prepare_text(example.text, example.language)
        except CondensaError:
            continue
        if len(text.sentences) >= 2:
            usable.append((example, text))
    texts = [text for _, text in usable]
    encoded = _embed_many(backends(encoder), texts)
    baselines = encoded if encoder == "minilm" else _embed_many(backends("minilm"), texts)
    documents = []
    for (example, text), vectors, baseline in zip(usable, encoded, baselines, strict=True):
        reference = oracle_tokens(example.summary, text.language)
        tokens = [oracle_tokens(s, text.language) for s in text.sentences]
        labels = np.zeros(len(text.sentences))
        labels[greedy_oracle(tokens, reference, ORACLE_SENTENCES)] = 1.0
        documents.append(
            Document(
                example.id,
                text.language,
                example.summary,
                text,
                head_inputs(text, vectors),
                labels,
                baseline,
                tokens,
                reference,
            )
        )
    return documents


def fit(
    documents: Sequence[Document],
    encoder: str,
    regularization: float | None = None,
    with_embedding: bool | None = None,
) -> SentenceHead:
    """A head fitted on every sentence of ``documents``. Its regularization and whether it reads
    the sentence embedding are, unless given, chosen by an inner cross-validation on these
    documents only (:func:`choose_configuration`)."""
    if regularization is None or with_embedding is None:
        regularization, with_embedding = choose_configuration(documents, encoder)
    width = len(FEATURES) + (
        documents[0].features.shape[1] - len(FEATURES) if with_embedding else 0
    )
    matrix = np.vstack([d.features[:, :width] for d in documents])
    labels = np.concatenate([d.labels for d in documents])
    head = fit_head(matrix, labels, encoder, regularization)
    return replace(
        head, about={"regularization": regularization, "reads_embedding": with_embedding}
    )


def choose_configuration(
    documents: Sequence[Document], encoder: str, folds: int = 3, count: int = 3
) -> tuple[float, bool]:
    """(C, reads the embedding) from :data:`CONFIGURATIONS` whose heads pick the best sentences
    for held-out training documents, by inner k-fold on ``documents`` and ROUGE-1 + ROUGE-2 F
    on n-gram sets (fast; the same measure the oracle uses)."""
    from sklearn.model_selection import KFold

    if len(documents) < 2 * folds:
        return CONFIGURATIONS[0]
    quality = {}
    splitter = KFold(n_splits=folds, shuffle=True, random_state=1)
    for strength, with_embedding in CONFIGURATIONS:
        total = 0.0
        for train, test in splitter.split(np.arange(len(documents))):
            head = fit([documents[i] for i in train], encoder, strength, with_embedding)
            for i in test:
                chosen = learned_selection(head, documents[i], count)
                total += rouge_gain(
                    [documents[i].tokens[j] for j in chosen], documents[i].reference_tokens
                )
        quality[(strength, with_embedding)] = total
    return max(CONFIGURATIONS, key=lambda configuration: quality[configuration])


def learned_selection(head: SentenceHead, document: Document, count: int) -> list[int]:
    """What the head picks in ``document``."""
    return trigram_blocked(head.scores(document.features), document.text.words, count)


def embedding_selection(document: Document, count: int) -> list[int]:
    """What the ``embedding`` method picks (on the same MiniLM vectors)."""
    return EmbeddingRanker().select(document.text, count, document.baseline_vectors)


def lead_selection(document: Document, count: int) -> list[int]:
    """Lead-N."""
    return list(range(min(count, len(document.text.sentences))))


def score_selections(
    documents: Sequence[Document], selections: Sequence[list[int]]
) -> list[dict[str, float]]:
    """ROUGE-1/2/Lsum F1 of each selection against its document's reference."""
    scorers: dict[str, Any] = {}
    scores = []
    for document, chosen in zip(documents, selections, strict=True):
        scorer = scorers.setdefault(document.language, make_scorer(document.language))
        prediction = "\n".join(document.text.sentences[i] for i in chosen)
        scores.append(score_pair(scorer, prediction, document.reference, document.language))
    return scores


def cross_validated_selections(
    documents: Sequence[Document],
    encoder: str,
    folds: int,
    count: int,
    seed: int = 0,
    configuration: tuple[float, bool] | None = None,
) -> tuple[list[list[int]], list[int]]:
    """Each document's learned selection by a head trained on the other folds (its
    configuration chosen on those folds unless given), and its fold."""
    from sklearn.model_selection import KFold

    selections: list[list[int]] = [[] for _ in documents]
    fold_of = [0] * len(documents)
    splitter = KFold(n_splits=min(folds, len(documents)), shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(np.arange(len(documents)))):
        strength, with_embedding = configuration or (None, None)
        head = fit([documents[i] for i in train], encoder, strength, with_embedding)
        for i in test:
            selections[i] = learned_selection(head, documents[i], count)
            fold_of[i] = fold
    return selections, fold_of


def compare(
    documents: Sequence[Document], learned: Sequence[list[int]], count: int
) -> dict[str, list[dict[str, float]]]:
    """Per-document ROUGE of the learned selections beside ``embedding`` and Lead-N."""
    return {
        "learned": score_selections(documents, learned),
        "embedding": score_selections(
            documents, [embedding_selection(d, count) for d in documents]
        ),
        "lead": score_selections(documents, [lead_selection(d, count) for d in documents]),
    }


def fold_spread(scores: Sequence[dict[str, float]], fold_of: Sequence[int]) -> dict[str, float]:
    """Min and max over folds of the mean ROUGE-Lsum (how much the folds disagree)."""
    by_fold: dict[int, list[float]] = {}
    for score, fold in zip(scores, fold_of, strict=True):
        by_fold.setdefault(fold, []).append(score["rougeLsum"])
    means = [statistics.fmean(v) for v in by_fold.values()]
    return {"min": round(min(means), 2), "max": round(max(means), 2)}


def summary_table(results: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Bootstrap means and intervals per system and ROUGE type."""
    return {
        system: {k: v.as_dict() for k, v in summarize_scores(scores).items()}
        for system, scores in results.items()
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    lines = [
        f"# Learned extractive head `{report['name']}`",
        "",
        f"{report['documents']} documents ({report['language']}, encoder {report['encoder']}), "
        f"{report['folds']}-fold cross-validation, {report['sentences']} sentences per summary; "
        f"every score is of a document the head did not train on (95 % bootstrap intervals).",
        "",
        "| system | " + " | ".join(ROUGE_TYPES) + " |",
        "|---|" + "---|" * len(ROUGE_TYPES),
    ]
    for system, metrics in report["held_out"].items():
        cells = [
            f"{metrics[k]['mean']:.2f} [{metrics[k]['low']:.2f}, {metrics[k]['high']:.2f}]"
            for k in ROUGE_TYPES
        ]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    spread = report["fold_spread_rougeLsum"]
    lines += [
        "",
        f"Learned ROUGE-Lsum per fold: {spread['min']:.2f} to {spread['max']:.2f}. "
        f"Featurizing took {report['seconds']['features']:.0f} s, training and evaluating "
        f"{report['seconds']['training']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


class ExtractiveAdaptation:
    """``condensa adapt --kind extractive``: train a head on a user's pairs, cross-validated.

    Args:
        name: the head's name (``extractive:<name>``).
        models_dir: ``DATA_DIR/models``.
        language: the data's language (decides the encoder).
        folds: k of the k-fold evaluation.
        sentences: sentences per summary when scoring.
        say: where progress lines go.
        backends: encoder name → embedding backend.
    """

    def __init__(
        self,
        name: str,
        models_dir: Path,
        language: str,
        folds: int = 5,
        sentences: int = 3,
        say: Callable[[str], None] = print,
        backends: Callable[[str], EmbeddingBackend] = default_backends,
    ) -> None:
        if problem := model_name_problem(name):
            raise CondensaError(problem)
        self.name = name
        self.directory = models_dir / name
        self.language = language
        self.encoder = encoder_for(language)
        self.folds = folds
        self.sentences = sentences
        self._say = say
        self._backends = backends

    def run(self, examples: Sequence[SummaryExample]) -> dict[str, Any]:
        """Featurize, cross-validate, fit on everything, save; returns the report."""
        started = time.perf_counter()
        self._say(f"1/3 featurizing {len(examples)} documents with {self.encoder}")
        documents = build_documents(examples, self.encoder, self._backends)
        if len(documents) < max(self.folds, 2):
            raise CondensaError(
                f"only {len(documents)} usable documents; at least {max(self.folds, 2)} needed"
            )
        featurized = time.perf_counter()
        self._say(f"2/3 {self.folds}-fold cross-validation against embedding and Lead-3")
        selections, fold_of = cross_validated_selections(
            documents, self.encoder, self.folds, self.sentences
        )
        results = compare(documents, selections, self.sentences)
        self._say("3/3 fitting the head on every document and saving it")
        head = fit(documents, self.encoder)
        trained = time.perf_counter()
        report: dict[str, Any] = {
            "name": self.name,
            "method": f"extractive:{self.name}",
            "language": self.language,
            "encoder": self.encoder,
            "documents": len(documents),
            "folds": self.folds,
            "sentences": self.sentences,
            "held_out": summary_table(results),
            "fold_spread_rougeLsum": fold_spread(results["learned"], fold_of),
            "seconds": {
                "features": round(featurized - started, 1),
                "training": round(trained - featurized, 1),
            },
        }
        report["regularization"] = head.about["regularization"]
        report["reads_embedding"] = head.about["reads_embedding"]
        head = replace(
            head,
            about={
                k: report[k]
                for k in (
                    "language",
                    "documents",
                    "folds",
                    "held_out",
                    "regularization",
                    "reads_embedding",
                )
            },
        )
        head.save(self.directory / NAME_FILE)
        (self.directory / "report.json").write_text(json.dumps(report, indent=2))
        (self.directory / "report.md").write_text(markdown(report))
        return report
