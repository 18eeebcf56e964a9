"""Abstractive summaries with seq2seq models (BART family, mT5 …) through ``generate()``.

transformers 5 removed the ``summarization`` pipeline, so the three steps are explicit:

- preprocess (pure, tested without weights): pack sentences into chunks that fit the
  encoder's window, counted in the model's own tokens;
- forward: ``AutoModelForSeq2SeqLM.generate`` per chunk (map), then once more over the joined
  partial summaries when there were several (reduce);
- postprocess (pure): decode, tidy spaces, split into sentences.

Models load lazily, once per model id, from a local directory or the Hugging Face cache. Hub
downloads happen only when ``MODEL_DOWNLOADS`` is on (private by default); otherwise a model
that is not on disk raises :class:`ModelUnavailable` and the service falls back.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.errors import ModelUnavailable
from services.core.types import Length
from services.embeddings.models import quiet_transformers
from services.summarize.mapreduce import map_reduce

logger = logging.getLogger(__name__)


DEFAULT_MODELS = {
    "en": "sshleifer/distilbart-cnn-12-6",
    "es": "csebuetnlp/mT5_multilingual_XLSum",
}


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding choices for abstractive summaries.

    Attributes:
        num_beams: 1 is greedy decoding; more is beam search (better, slower).
        max_new_tokens: upper bound of a medium summary; short is ~45 %, long ~180 %.
        min_new_tokens: lower bound of a medium summary, scaled the same way.
        chunk_tokens: encoder tokens per chunk (BART reads 1,024 positions).
        no_repeat_ngram_size: forbid repeating n-grams (3 as in the BART CNN setup).
    """

    num_beams: int = 4
    max_new_tokens: int = 142
    min_new_tokens: int = 56
    chunk_tokens: int = 900
    no_repeat_ngram_size: int = 3

    def lengths(self, length: Length) -> tuple[int, int]:
        """(min_new_tokens, max_new_tokens) for a requested length."""
        factor = {Length.SHORT: 0.45, Length.MEDIUM: 1.0, Length.LONG: 1.8}[length]
        high = max(8, round(self.max_new_tokens * factor))
        low = min(high - 1, round(self.min_new_tokens * factor))
        return max(0, low), high


class Seq2SeqSummarizer:
    """Abstractive summaries with a seq2seq model chosen per language.

    Args:
        models: language code → model id or local directory ("*" for any other language).
        generation: decoding settings.
        allow_downloads: let transformers fetch missing models from the hub.
        cache_dir: where downloaded models go (under ``DATA_DIR``).
    """

    def __init__(
        self,
        models: dict[str, str] | None = None,
        generation: GenerationSettings | None = None,
        allow_downloads: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self._models = dict(DEFAULT_MODELS if models is None else models)
        self.generation = generation or GenerationSettings()
        self._allow_downloads = allow_downloads
        self._cache_dir = cache_dir
        self._loaded: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def model_for(self, language: str) -> str:
        """The model id configured for ``language``."""
        model = self._models.get(language) or self._models.get("*") or self._models.get("en")
        if not model:
            raise ModelUnavailable("abstractive", f"no model configured for {language!r}")
        return model

    def _load(self, model_id: str) -> tuple[Any, Any]:
        with self._lock:
            if model_id in self._loaded:
                return self._loaded[model_id]
            local = Path(model_id).expanduser()
            offline = not self._allow_downloads and not local.is_dir()
            if offline:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ModelUnavailable(model_id, "install transformers") from exc
            quiet_transformers()
            source = str(local) if local.is_dir() else model_id
            options: dict[str, Any] = {"local_files_only": offline}
            if self._cache_dir is not None:
                options["cache_dir"] = str(self._cache_dir)
            try:
                tokenizer = AutoTokenizer.from_pretrained(source, **options)
                model = AutoModelForSeq2SeqLM.from_pretrained(source, **options)
            except (OSError, ValueError) as exc:
                reason = (
                    "not downloaded (set MODEL_DOWNLOADS=true on a machine with network, "
                    "or point the setting at a local directory)"
                    if offline
                    else f"cannot load it: {exc}"
                )
                raise ModelUnavailable(model_id, reason) from exc
            model.eval()
            logger.info("loaded abstractive model %s", model_id)
            self._loaded[model_id] = (tokenizer, model)
            return tokenizer, model

    def summarize(self, sentences: Sequence[str], language: str, length: Length) -> list[str]:
        """Map-reduce abstractive summary of already split ``sentences`` (blocking).

        Raises:
            ModelUnavailable: the language's model cannot be loaded here.
        """
        tokenizer, model = self._load(self.model_for(language))
        window = min(self.generation.chunk_tokens, _encoder_window(tokenizer, model))

        def count_tokens(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

        low, high = self.generation.lengths(length)
        return map_reduce(
            sentences,
            count_tokens,
            window,
            lambda text: self._generate(tokenizer, model, text, window, low, high),
            language,
        )

    def _generate(
        self, tokenizer: Any, model: Any, text: str, window: int, low: int, high: int
    ) -> str:
        import torch

        inputs = tokenizer(text, return_tensors="pt", truncation=True, max_length=window)
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                num_beams=self.generation.num_beams,
                do_sample=False,
                min_new_tokens=low,
                max_new_tokens=high,
                no_repeat_ngram_size=self.generation.no_repeat_ngram_size,
                early_stopping=self.generation.num_beams > 1,
            )
        return str(tokenizer.decode(output[0], skip_special_tokens=True))


def _encoder_window(tokenizer: Any, model: Any) -> int:
    """Encoder positions the model can read (special tokens excluded)."""
    limits = [
        getattr(model.config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    usable = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return max(16, (min(usable) if usable else 512) - 2)
