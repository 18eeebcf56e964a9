"""What reactions do to a digest: an experiment with simulated reactions.

No public conversation set records reactions, so they are simulated on DialogSum's dialogues
(as message lists), two ways:

- ``informative``: people react to what matters. A message gets Poisson(3 × s) reactions,
  where s is the share of its content words that the human summary also uses. This reads the
  reference, so it is an upper bound of what a signal that tracks importance can give, not a
  measurement of real groups.
- ``noise``: reactions that say nothing about importance, Poisson(0.6) per message (about as
  many in all), to see what the lift costs when reactions are only noise.

Each digest narrative is scored with ROUGE-1 F1 against the human summary (the scorer of
``condensa eval digest``), for ``SIGNAL_WEIGHT`` 0 (signals ignored), 0.5, 1 (the shipped
value) and 2: on DialogSum train300 (where a weight would be chosen) and on dev200 (reported).

    .venv/bin/python bench/digest_signals.py [--limit N] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.factories import build_services  # noqa: E402
from bot.settings import Settings  # noqa: E402
from services.core.errors import CondensaError  # noqa: E402
from services.core.protocols import DigestMaker  # noqa: E402
from services.core.types import ChatMessage  # noqa: E402
from services.digest import narrative  # noqa: E402
from services.evaluation.data import load_conversation_examples  # noqa: E402
from services.evaluation.rouge import make_scorer, score_pair, summarize_scores  # noqa: E402
from services.text.lexicon import normalize_terms  # noqa: E402
from services.text.splitting import tokenize_words  # noqa: E402

EVAL = REPO.parent / "shared" / "data" / "eval"
WEIGHTS = (0.0, 0.5, 1.0, 2.0)
Conversation = tuple[list[ChatMessage], str]


def train_conversations(limit: int | None) -> list[Conversation]:
    """DialogSum train300's dialogues ("Person1: …" lines) as message lists."""
    found = []
    for line in (EVAL / "summ_en_dialogsum_train300.jsonl").read_text().splitlines()[:limit]:
        record = json.loads(line)
        turns = [t.partition(": ") for t in record["text"].splitlines()]
        messages = [
            ChatMessage(0, n, 0, author, 60 * n, text)
            for n, (author, _, text) in enumerate(turns, start=1)
            if text
        ]
        found.append((messages, record["summary"]))
    return found


def dev_conversations(limit: int | None) -> list[Conversation]:
    examples = load_conversation_examples(EVAL / "chat_en_dialogsum_dev200.messages.jsonl", limit)
    return [
        (
            [
                ChatMessage(0, n, 0, a, 60 * n, t)
                for n, (a, t) in enumerate(example.messages, start=1)
            ],
            example.summary,
        )
        for example in examples
    ]


def with_reactions(
    conversation: Conversation, mode: str, rng: np.random.Generator
) -> list[ChatMessage]:
    messages, summary = conversation
    if mode == "none":
        return messages
    wanted = set(normalize_terms(tokenize_words(summary), "en"))
    reacted = []
    for message in messages:
        if mode == "informative":
            terms = set(normalize_terms(tokenize_words(message.text), "en"))
            rate = 3.0 * len(terms & wanted) / max(1, len(terms))
        else:
            rate = 0.6
        reacted.append(replace(message, reactions=int(rng.poisson(rate))))
    return reacted


async def score(
    digests: DigestMaker, conversations: list[Conversation], mode: str, weight: float, seed: int
) -> dict[str, float]:
    narrative.SIGNAL_WEIGHT = weight
    rng = np.random.default_rng(seed)
    scorer = make_scorer("en")
    scores = []
    for conversation in conversations:
        messages = with_reactions(conversation, mode, rng)
        try:
            digest = await digests.digest(messages, "en")
            text = "\n".join(s.plain() for s in digest.narrative())
        except CondensaError:
            text = ""
        scores.append(score_pair(scorer, text, conversation[1], "en"))
    return summarize_scores(scores)["rouge1"].as_dict()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    services = build_services(Settings(_env_file=None))  # type: ignore[call-arg]
    assert services.digests is not None
    shipped = narrative.SIGNAL_WEIGHT
    rows: list[tuple[str, str, str, dict[str, Any]]] = []
    try:
        for name, conversations in (
            ("train300", train_conversations(args.limit)),
            ("dev200", dev_conversations(args.limit)),
        ):
            rows.append(
                (
                    name,
                    "none",
                    "-",
                    await score(services.digests, conversations, "none", 0.0, args.seed),
                )
            )
            for mode in ("informative", "noise"):
                weights = WEIGHTS[1:] if name == "train300" else (shipped,)
                for weight in weights:
                    found = await score(services.digests, conversations, mode, weight, args.seed)
                    rows.append((name, mode, str(weight), found))
    finally:
        narrative.SIGNAL_WEIGHT = shipped
        services.close()
    print("| set | reactions | SIGNAL_WEIGHT | ROUGE-1 F1 [95 %] |")
    print("|---|---|---:|---|")
    for name, mode, weight, value in rows:
        interval = f"[{value['low']:.2f}, {value['high']:.2f}]"
        print(f"| {name} | {mode} | {weight} | {value['mean']:.2f} {interval} |")


if __name__ == "__main__":
    asyncio.run(main())
