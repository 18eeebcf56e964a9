"""Map-reduce over long inputs for any model that writes summaries (seq2seq, LLM).

Pure apart from the ``write`` callable: sentences are packed into chunks that fit the model's
window, each chunk is summarized (map), and the joined partial summaries once more when there
were several (reduce).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from services.text.splitting import split_sentences

logger = logging.getLogger(__name__)


def chunk_sentences(
    sentences: Sequence[str], count_tokens: Callable[[str], int], max_tokens: int
) -> list[str]:
    """Pack consecutive sentences into chunks of at most ``max_tokens`` tokens.

    A single sentence longer than the window becomes its own chunk (the tokenizer truncates
    it); no sentence is ever split or dropped.
    """
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for sentence in sentences:
        size = count_tokens(sentence)
        if current and used + size > max_tokens:
            chunks.append(" ".join(current))
            current, used = [], 0
        current.append(sentence)
        used += size
    if current:
        chunks.append(" ".join(current))
    return chunks


_COMPLETE = re.compile(r"[.!?…。！？][\"'”’»)\]]*$")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?%)])")


def tidy_generated(text: str, language: str) -> list[str]:
    """Generated text as clean sentences (BART CNN models emit " ." and "<n>"), ending on a
    complete one: a last sentence the token limit cut off is dropped (or, when it is the only
    one, closed with an ellipsis)."""
    text = text.replace("<n>", " ").replace("\n", " ")
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", re.sub(r"\s+", " ", text)).strip()
    sentences = split_sentences(text, language) if text else []
    if sentences and not _COMPLETE.search(sentences[-1]):
        if len(sentences) > 1:
            sentences.pop()
        else:
            sentences[-1] = sentences[-1].rstrip(" ,;:-") + "…"
    return sentences


def map_reduce(
    sentences: Sequence[str],
    count_tokens: Callable[[str], int],
    window: int,
    write: Callable[[str], str],
    language: str,
) -> list[str]:
    """Summary sentences of ``sentences``: ``write`` over each chunk of at most ``window``
    tokens, then over the joined partial summaries when there were several."""
    chunks = chunk_sentences(sentences, count_tokens, window)
    logger.debug("map over %d chunk(s)", len(chunks))
    text = " ".join(write(chunk) for chunk in chunks)
    if len(chunks) > 1:
        text = write(text)
    return tidy_generated(text, language)
