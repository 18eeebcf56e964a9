"""Lead-N: the first sentences, the baseline news summaries are measured against."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.summarize.prepared import PreparedText


class LeadRanker:
    """The first ``count`` sentences: the classic news baseline (Lead-3)."""

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Indices 0 … count-1."""
        return list(range(min(count, len(text.sentences))))
