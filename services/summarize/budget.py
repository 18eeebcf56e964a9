"""Summary length in words, for conversations: how long, and which sentences fit.

A conversation's summary should grow with it, but far more slowly than a fixed share of its
sentences: human summaries of two-person chats (~190 words) run ~25 words, those of hour-long
meetings (~9,000 words) ~110–150. ``WORDS_SCALE · words^WORDS_POWER`` follows both ends; the
power comes from those two anchors (20 words for 100, 120 for 9,000). The scale was chosen on
DialogSum's train300 file, never on what the README reports: ROUGE-1 28.1 / 29.2 / 29.9 /
30.4 at 2.4 / 3.2 / 4.2 / 5.5; it keeps rising with length, so 4.0 is the longest that still
reads in ten seconds (25 words for a 100-word chat, 153 for a 9,000-word meeting).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.core.types import Length
from services.summarize.learned.oracle import ngrams

WORDS_POWER = 0.4
WORDS_SCALE = 4.0
LENGTH_FACTORS: dict[Length, float] = {Length.SHORT: 0.6, Length.MEDIUM: 1.0, Length.LONG: 2.0}
MIN_WORDS = 12
MAX_WORDS = 200
"""However long the conversation (10,000 messages), a medium summary stays a short read."""


def word_budget(
    total_words: int, length: Length = Length.MEDIUM, scale: float | None = None
) -> int:
    """Words a summary of a ``total_words``-word conversation may use.

    >>> word_budget(100), word_budget(9000)
    (25, 153)
    """
    scale = WORDS_SCALE if scale is None else scale
    factor = LENGTH_FACTORS[length]
    wanted = min(scale * max(total_words, 1) ** WORDS_POWER, MAX_WORDS) * factor
    return max(MIN_WORDS, int(round(wanted)))


def pick_within_budget(
    scores: Sequence[float] | np.ndarray,
    words: Sequence[Sequence[str]],
    budget: int,
    allowed: Sequence[bool] | None = None,
    chosen: Sequence[int] = (),
    most: int | None = None,
    overflow: bool = True,
    block: bool = True,
) -> list[int]:
    """Best-scoring sentences whose words fit ``budget``, in document order.

    Greedy by score; a sentence repeating a word trigram of one already chosen is skipped
    (BERTSUM's trigram blocking); the best sentence is taken even when it alone is over budget,
    so the result is never empty while one is allowed.

    Args:
        scores: one score per sentence, higher is better.
        words: each sentence's words.
        budget: the word budget of the sentences picked here.
        allowed: which sentences may be picked (all when None).
        chosen: sentences picked before (their trigrams block repeats; not returned again).
        most: at most this many sentences.
        overflow: whether the first sentence may exceed the budget on its own.
        block: skip sentences repeating a trigram of one chosen (off: only never the same one).
    """
    order = [int(i) for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")]
    seen: set[tuple[str, ...]] = set()
    said = {tuple(w.lower() for w in words[index]) for index in chosen}
    for index in chosen:
        seen |= ngrams([w.lower() for w in words[index]], 3)
    picked: list[int] = []
    used = 0
    taken = set(chosen)
    for index in order:
        if most is not None and len(picked) >= most:
            break
        if index in taken or (allowed is not None and not allowed[index]):
            continue
        size = len(words[index])
        if (picked or not overflow) and used + size > budget:
            continue
        grams = ngrams([w.lower() for w in words[index]], 3)
        text = tuple(w.lower() for w in words[index])
        if (block and grams & seen) or text in said:  # never the same sentence twice
            continue
        picked.append(index)
        used += size
        seen |= grams
        said.add(text)
        if used >= budget:
            break
    return sorted(picked)
