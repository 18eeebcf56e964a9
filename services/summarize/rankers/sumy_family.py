"""sumy's summarizers (TextRank, LSA, Luhn, Edmundson, KL, SumBasic) fed our sentences.

They share our offline sentence splitter and word tokenizer (sumy's own tokenizer needs NLTK's
``punkt`` download, which is unreachable here).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.summarize.prepared import looks_like_title
from services.text.language import language_name
from services.text.lexicon import stop_words

if TYPE_CHECKING:
    from services.summarize.prepared import PreparedText


# Edmundson's cue method rewards "bonus" and penalizes "stigma" words; sumy ships no lists.
_STIGMA_WORDS = {
    "en": ("maybe", "perhaps", "hardly", "impossible", "allegedly", "reportedly", "rumor"),
    "es": ("quizás", "quizá", "acaso", "supuestamente", "presuntamente", "rumor", "tal vez"),
}


class _WordTokenizer:
    """What sumy's ``Sentence`` asks of a tokenizer."""

    def to_words(self, sentence: str) -> tuple[str, ...]:
        from services.text.splitting import tokenize_words

        return tuple(tokenize_words(sentence))


class SumyRanker:
    """One of sumy's summarizers, fed our sentences.

    Args:
        factory: builds the sumy summarizer for a language name ("english", …).
    """

    def __init__(self, factory: Callable[[str, str], Any]) -> None:
        self._factory = factory

    def select(self, text: PreparedText, count: int) -> list[int]:
        """Indices sumy's algorithm picks, in document order."""
        from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence

        tokenizer = _WordTokenizer()
        sentences = [
            Sentence(s, tokenizer, is_heading=(i == 0 and looks_like_title(s)))
            for i, s in enumerate(text.sentences)
        ]
        document = ObjectDocumentModel([Paragraph(sentences)])
        summarizer = self._build(text)
        picked = {id(s) for s in summarizer(document, count)}
        return [i for i, s in enumerate(sentences) if id(s) in picked]

    def _build(self, text: PreparedText) -> Any:
        return self._factory(language_name(text.language), text.language)


def _with_stop_words(path: str) -> Callable[[str, str], Any]:
    """A factory for the sumy summarizer class at ``path`` ("module:Class"), imported on first
    use: sumy imports NLTK, ~130 MB the bot does not hold until someone asks for these."""

    def build(name: str, code: str) -> Any:
        import importlib

        from sumy.nlp.stemmers import Stemmer

        module, _, attribute = path.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        summarizer = cls(Stemmer(name))
        summarizer.stop_words = stop_words(code)
        return summarizer

    return build


def _edmundson(name: str, code: str) -> Any:
    from sumy.nlp.stemmers import Stemmer
    from sumy.summarizers.edmundson import EdmundsonSummarizer

    summarizer = EdmundsonSummarizer(
        Stemmer(name), cue_weight=1.0, key_weight=1.0, title_weight=1.0, location_weight=1.0
    )
    summarizer.null_words = stop_words(code)
    summarizer.stigma_words = _STIGMA_WORDS.get(code, ("maybe",))
    return summarizer


def sumy_rankers() -> dict[str, SumyRanker]:
    """sumy's extractive family, by our method names (nothing of sumy imported yet)."""
    return {
        "textrank": SumyRanker(_with_stop_words("sumy.summarizers.text_rank:TextRankSummarizer")),
        "lsa": SumyRanker(_with_stop_words("sumy.summarizers.lsa:LsaSummarizer")),
        "luhn": SumyRanker(_with_stop_words("sumy.summarizers.luhn:LuhnSummarizer")),
        "edmundson": EdmundsonRanker(),
        "kl": SumyRanker(_with_stop_words("sumy.summarizers.kl:KLSummarizer")),
        "sumbasic": SumyRanker(_with_stop_words("sumy.summarizers.sum_basic:SumBasicSummarizer")),
    }


class EdmundsonRanker(SumyRanker):
    """Edmundson with bonus words taken from the text itself (its most frequent terms).

    sumy's Edmundson needs bonus words; a chat message comes with none, so the ten most frequent
    content words of the text stand in for the title/keyword list Edmundson assumed.
    """

    def __init__(self) -> None:
        super().__init__(_edmundson)

    def _build(self, text: PreparedText) -> Any:
        stops = stop_words(text.language)
        frequent = Counter(
            w.lower() for words in text.words for w in words if w.lower() not in stops
        )
        summarizer = _edmundson(language_name(text.language), text.language)
        summarizer.bonus_words = [w for w, _ in frequent.most_common(10)] or ["the"]
        return summarizer
