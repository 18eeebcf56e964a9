"""Baselines and the side-by-side comparison ``condensa eval summary --methods`` prints.

Lead-3 is the summary method ``lead``; Longest-3 (the three longest sentences, in document
order) is an evaluation-only baseline here: a trivial system a method must beat to be worth its
cost, and on chats a strong one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from services.core.protocols import Summarizer
from services.core.types import Summary, SummaryOptions
from services.evaluation.data import SummaryExample
from services.evaluation.rouge import EvaluationRun, evaluate_summarizer, summarize_scores
from services.text.sentences import split_source
from services.text.splitting import clean_text, tokenize_words

LONGEST = "longest"


class LongestSentences:
    """The ``sentences`` longest sentences (in words), in document order."""

    async def summarize(self, text: str, options: SummaryOptions) -> Summary:
        """Longest-k of ``text`` (k = ``options.sentences``, 3 when unset)."""
        cleaned = clean_text(text)
        language, sentences = split_source(cleaned, options.language)
        count = options.sentences or 3
        words = [len(tokenize_words(s)) for s in sentences]
        longest = sorted(range(len(sentences)), key=lambda i: (-words[i], i))
        chosen = sorted(longest[:count])
        return Summary(
            LONGEST, language, [sentences[i] for i in chosen], len(sentences), len(cleaned)
        )


async def compare_methods(
    summarizer: Summarizer,
    sets: Mapping[str, Sequence[SummaryExample]],
    methods: Sequence[str],
    sentences: int = 3,
    shown: Callable[[Sequence[SummaryExample], str], Iterable[SummaryExample]] = lambda e, _: e,
) -> dict[str, dict[str, Any]]:
    """ROUGE of every method on every set: ``{set: {method: {"rouge": ..., "refused": n}}}``
    (``longest`` is the Longest-k baseline)."""
    baseline = LongestSentences()
    table: dict[str, dict[str, Any]] = {}
    for name, examples in sets.items():
        table[name] = {}
        for method in methods:
            system: Any = baseline if method == LONGEST else summarizer
            run: EvaluationRun = await evaluate_summarizer(
                system, shown(examples, f"{name} {method}"), method, sentences
            )
            table[name][method] = {
                "rouge": {k: v.as_dict() for k, v in summarize_scores(run.scores).items()},
                "refused": run.refused,
            }
    return table


def comparison_markdown(
    table: Mapping[str, Mapping[str, Any]], metric: str = "rougeLsum", sentences: int = 3
) -> str:
    """One row per method, one column per set: ``metric`` F1 and its 95 % interval; the best
    mean of each column in bold."""
    sets = list(table)
    methods = list(next(iter(table.values()))) if table else []
    header = f"| method | {' | '.join(sets)} |"
    lines = [header, "|---|" + "---:|" * len(sets)]
    best = {s: max(table[s][m]["rouge"][metric]["mean"] for m in methods) for s in sets}
    for method in methods:
        cells = []
        for name in sets:
            value = table[name][method]["rouge"][metric]
            mean = f"{value['mean']:.2f}"
            if value["mean"] == best[name]:
                mean = f"**{mean}**"
            cells.append(f"{mean} [{value['low']:.1f}, {value['high']:.1f}]")
        label = {LONGEST: f"Longest-{sentences}", "lead": f"Lead-{sentences}"}.get(method, method)
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)
