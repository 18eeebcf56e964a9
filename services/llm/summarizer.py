"""LLM summaries: a summary prompt per language over the generation engine, map-reduce for
long inputs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from services.core.types import Length, Prompt
from services.llm.engines import Engine, GenerationLimits
from services.summarize.mapreduce import map_reduce

SUMMARY_PROMPTS = {
    "en": "Summarize the following text in {count} short sentences. Use only facts from the text.",
    "es": "Resume el siguiente texto en {count} frases breves. Usa solo datos del texto.",
}


class LLMSummarizer:
    """The LLM as a summary backend ("llm"): a prompt per language, chunked to the context.

    Long inputs are cut into chunks of at most ``max_prompt_tokens`` tokens, each summarized,
    and the partial summaries summarized once more.
    """

    def __init__(self, engine: Engine, limits: GenerationLimits) -> None:
        self._engine = engine
        self._limits = limits

    def summarize(self, sentences: Sequence[str], language: str, length: Length) -> list[str]:
        """Summary sentences (blocking)."""
        count = {Length.SHORT: 2, Length.MEDIUM: 3, Length.LONG: 5}[length]
        return map_reduce(
            sentences,
            self._engine.count_tokens,
            self._limits.max_prompt_tokens,
            lambda text: self._run(text, language, count),
            language,
        )

    @staticmethod
    def prompt(text: str, language: str, count: int = 3) -> Prompt:
        """The summary prompt (adaptation trains on exactly this)."""
        instruction = SUMMARY_PROMPTS.get(language, SUMMARY_PROMPTS["en"]).format(count=count)
        return Prompt(instruction, instruct=True, context=text)

    def _run(self, text: str, language: str, count: int) -> str:
        prompt = self.prompt(text, language, count)
        tokens = min(self._limits.max_new_tokens, 40 * count + 20)
        return "".join(self._engine.stream(prompt, tokens, 0.0, threading.Event())).strip()


ANSWER_PROMPTS = {
    "en": (
        "Answer the question using only the chat messages below, in at most three short "
        "sentences. If they do not answer it, say so.\nQuestion: {question}"
    ),
    "es": (
        "Responde a la pregunta usando solo los mensajes del chat de abajo, en tres frases "
        "breves como mucho. Si no la responden, dilo.\nPregunta: {question}"
    ),
}


class LLMAnswerer:
    """The LLM answering ``/ask`` from retrieved chat messages (``services.digest.ask``)."""

    def __init__(self, engine: Engine, limits: GenerationLimits) -> None:
        self._engine = engine
        self._limits = limits

    def answer(self, question: str, sentences: Sequence[str], language: str) -> list[str]:
        """Answer sentences (blocking)."""
        from services.text.splitting import split_sentences

        instruction = ANSWER_PROMPTS.get(language, ANSWER_PROMPTS["en"]).format(question=question)
        prompt = Prompt(instruction, instruct=True, context="\n".join(sentences))
        tokens = min(self._limits.max_new_tokens, 160)
        text = "".join(self._engine.stream(prompt, tokens, 0.0, threading.Event())).strip()
        return split_sentences(text, language) if text else []
