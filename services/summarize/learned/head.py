"""The trained head: a standardized logistic regression over the sentence features and the
sentence embedding, kept as JSON.

JSON rather than a pickle: a head is a few dozen numbers, it loads without executing code, and
a damaged or mismatched file is refused with a reason instead of crashing a summary.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.core.errors import ModelUnavailable
from services.summarize.learned.features import FEATURES

ENCODERS = ("minilm", "e5")
FORMAT = 1


@dataclass(frozen=True)
class SentenceHead:
    """Scores sentences from their features; higher means "belongs in the summary".

    Attributes:
        encoder: the frozen sentence encoder its features come from ("minilm" or "e5").
        embedding_dims: width of the sentence embedding appended to the features.
        mean / scale: the standardization fitted on the training features.
        weights / bias: the logistic regression over standardized features.
        features: the feature names, in column order (must equal :data:`FEATURES`).
        about: provenance (training data, size, date, cross-validated scores).
    """

    encoder: str
    embedding_dims: int
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    about: dict[str, Any] = field(default_factory=dict)

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        """The logit of each row of a :func:`head_inputs` matrix (a head trained without the
        embedding reads only the feature columns)."""
        matrix = matrix[:, : len(FEATURES) + self.embedding_dims]
        standardized = (matrix - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(standardized @ np.asarray(self.weights) + self.bias)

    def save(self, path: Path) -> None:
        """Write the head as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, **asdict(self)}
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, method: str) -> SentenceHead:
        """Read a head; ``ModelUnavailable`` (naming ``method``) when missing or unusable."""
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelUnavailable(method, "no trained head") from exc
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(method, "the saved head is damaged") from exc
        try:
            head = cls(
                encoder=str(payload["encoder"]),
                embedding_dims=int(payload["embedding_dims"]),
                mean=[float(v) for v in payload["mean"]],
                scale=[float(v) for v in payload["scale"]],
                weights=[float(v) for v in payload["weights"]],
                bias=float(payload["bias"]),
                features=[str(v) for v in payload["features"]],
                about=dict(payload.get("about", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelUnavailable(method, "the saved head is damaged") from exc
        width = len(FEATURES) + head.embedding_dims
        if tuple(head.features) != FEATURES or not (
            len(head.mean) == len(head.scale) == len(head.weights) == width
        ):
            raise ModelUnavailable(method, "the head was trained on other features")
        if head.encoder not in ENCODERS or any(s <= 0 for s in head.scale):
            raise ModelUnavailable(method, "the saved head is damaged")
        return head


def fit_head(
    matrix: np.ndarray, labels: np.ndarray, encoder: str, regularization: float = 1.0
) -> SentenceHead:
    """Fit a head on stacked :func:`head_inputs` rows and 0/1 oracle labels (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(matrix)
    scale = np.where(scaler.scale_ > 1e-9, scaler.scale_, 1.0)
    model = LogisticRegression(C=regularization, max_iter=2000, class_weight="balanced")
    model.fit((matrix - scaler.mean_) / scale, labels)
    return SentenceHead(
        encoder=encoder,
        embedding_dims=matrix.shape[1] - len(FEATURES),
        mean=[float(v) for v in scaler.mean_],
        scale=[float(v) for v in scale],
        weights=[float(v) for v in model.coef_[0]],
        bias=float(model.intercept_[0]),
    )
