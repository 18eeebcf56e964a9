"""A TextTeaser-style scorer: title overlap, sentence length, position and keyword density."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from services.summarize.prepared import looks_like_title
from services.summarize.rankers.lexrank import top_indices

if TYPE_CHECKING:
    from services.summarize.prepared import PreparedText


# TextTeaser's position weights by relative position (deciles), from its original scorer.
_POSITION_WEIGHTS = (0.17, 0.23, 0.14, 0.08, 0.05, 0.04, 0.06, 0.04, 0.04, 0.15)
IDEAL_SENTENCE_WORDS = 20
_TEASER_KEYWORDS = 10


class TextTeaserRanker:
    """TextTeaser's scorer (Balbin, 2013), reimplemented: the PyPI package is a dead web client.

    Score = (1.5·title + 2·frequency + length + position) / 4 with the original features:

    - title: share of the title's terms in the sentence (the title is the first line when it
      reads as a headline; otherwise this feature is 0 for every sentence);
    - frequency: mean of the summation-based (SBS) and density-based (DBS) keyword scores over
      the text's ten most frequent terms;
    - length: 1 − |20 − words| / 20, floored at 0;
    - position: TextTeaser's decile weights (the lead and the end of a text score highest).
    """

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Indices of the ``count`` best-scored sentences, in document order."""
        import numpy as np

        return top_indices(np.asarray(self.scores(text)), count)

    def scores(self, text: PreparedText) -> list[float]:
        """The TextTeaser score of each sentence."""
        terms = text.terms()
        total = sum(len(t) for t in terms) or 1
        counts = Counter(term for sentence in terms for term in sentence)
        keywords = {
            term: (count / total) * 1.5 + 1 for term, count in counts.most_common(_TEASER_KEYWORDS)
        }
        title_terms: set[str] = set()
        first = 0
        if text.sentences and looks_like_title(text.sentences[0]):
            title_terms = set(terms[0])
            first = 1
        n = len(text.sentences)
        result = []
        for i, sentence_terms in enumerate(terms):
            title = (
                len(title_terms & set(sentence_terms)) / len(title_terms)
                if title_terms and i >= first
                else 0.0
            )
            length = max(
                0.0, 1 - abs(IDEAL_SENTENCE_WORDS - len(text.words[i])) / IDEAL_SENTENCE_WORDS
            )
            position = _POSITION_WEIGHTS[min(9, int(10 * i / n))] if n else 0.0
            frequency = (
                (self._sbs(sentence_terms, keywords) + self._dbs(sentence_terms, keywords))
                / 2
                * 10
            )
            result.append((title * 1.5 + frequency * 2 + length + position) / 4)
        return result

    @staticmethod
    def _sbs(terms: list[str], keywords: dict[str, float]) -> float:
        if not terms:
            return 0.0
        return sum(keywords.get(t, 0.0) for t in terms) / len(terms) / 10

    @staticmethod
    def _dbs(terms: list[str], keywords: dict[str, float]) -> float:
        hits = [(i, keywords[t]) for i, t in enumerate(terms) if t in keywords]
        if len(hits) < 2:
            return 0.0
        total = sum(
            a_score * b_score / (b_pos - a_pos) ** 2
            for (a_pos, a_score), (b_pos, b_score) in zip(hits, hits[1:], strict=False)
        )
        k = len({terms[i] for i, _ in hits})
        return total / (k * (k + 1)) if k else 0.0
