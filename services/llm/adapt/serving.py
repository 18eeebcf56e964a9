"""Serving models made by ``condensa adapt``: listed by name, loaded on first use, checked."""

from __future__ import annotations

import threading
from pathlib import Path

from services.core.errors import ModelUnavailable
from services.core.types import MODEL_NAME_RE
from services.llm.engines import GenerationLimits, TransformersEngine
from services.llm.summarizer import LLMSummarizer


class AdaptedModels:
    """The models ``condensa adapt`` saved, served as summary methods ``llm:<name>``.

    Loading is lazy (first summary with the method); a missing or broken model raises
    ``ModelUnavailable``, which the summary service answers with its fallback method.
    """

    def __init__(self, models_dir: Path, limits: GenerationLimits) -> None:
        self._dir = models_dir
        self._limits = limits
        self._loaded: dict[str, LLMSummarizer] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Adapted models on disk (each has a report and a saved model)."""
        if not self._dir.is_dir():
            return []
        return sorted(
            d.name
            for d in self._dir.iterdir()
            if MODEL_NAME_RE.match(d.name)
            and (d / "report.json").is_file()
            and (d / "model" / "config.json").is_file()
        )

    def summarizer(self, name: str) -> LLMSummarizer:
        """The summarizer of adapted model ``name`` (loaded on first use)."""
        method = f"llm:{name}"
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            if name not in self.names():
                raise ModelUnavailable(method, f"no adapted model called {name!r}")
            engine = TransformersEngine(str(self._dir / name / "model"), self._dir)
            try:
                engine.load()
            # Loaders raise many types (OSError, ValueError, safetensors' own): all mean damage.
            except Exception as error:  # noqa: BLE001
                reason = getattr(error, "reason", None) or type(error).__name__
                raise ModelUnavailable(method, f"the saved model is damaged ({reason})") from error
            self._loaded[name] = LLMSummarizer(engine, self._limits)
            return self._loaded[name]
