"""A group conversation on two distinct topics, for digest tests (deterministic)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

PEOPLE = ("Ana", "Bob", "Carla")

GARDEN = (
    "The tomato plants in the community garden need watering every morning this week.",
    "I saw aphids on the tomato plants again, we should try neem oil on the leaves.",
    "Who has the key to the garden shed? The watering cans are locked inside.",
    "The compost bin is full, can someone turn the compost on Saturday?",
    "Our tomato harvest looks great, the cherry tomatoes are already ripe.",
    "Let's plant basil next to the tomato plants, it keeps the pests away.",
    "The garden shed roof leaks when it rains, the seed packets got wet.",
    "I can bring fresh compost and mulch for the raised beds on Sunday.",
    "The raised beds by the fence get the most sun for the tomato plants.",
    "Remember to close the garden gate, rabbits ate the lettuce seedlings again.",
)
CHESS = (
    "The chess tournament starts on Friday at the library, bring your own chess clock.",
    "I have been studying the Sicilian defence for the chess tournament all month.",
    "Does anyone want to practise blitz chess games before the tournament?",
    "The tournament director says each round uses a chess clock with thirty minutes.",
    "My opening repertoire is weak, the Sicilian defence keeps surprising me.",
    "We need two more players for the team section of the chess tournament.",
    "The library room for the chess tournament has space for twenty boards.",
    "I lost my blitz game yesterday because my chess clock ran out in the endgame.",
    "Endgame practice helps more than memorizing openings like the Sicilian defence.",
    "Registration for the chess tournament closes on Wednesday evening.",
)


def two_topic_chat(count: int = 60) -> list[tuple[str, str]]:
    """``count`` (author, text) pairs alternating between the garden and the chess topic."""
    garden, chess = itertools.cycle(GARDEN), itertools.cycle(CHESS)
    people = itertools.cycle(PEOPLE)
    return [(next(people), next(garden) if i % 2 == 0 else next(chess)) for i in range(count)]


ALLOTMENT = (
    "The tomato seedlings need watering every morning before work.",
    "Someone left the greenhouse door open and the basil froze overnight.",
    "We should order compost for the raised beds before the spring sale ends.",
    "The new rain barrel collects enough water for the whole herb corner.",
    "Slugs ate half of the lettuce, so beer traps go out tonight.",
    "The allotment committee meets on Sunday to assign the empty plots.",
)
"""Garden lines that never repeat (a digest that leaves one out leaves out a whole point)."""


def alternating(first: Sequence[str], second: Sequence[str]) -> list[tuple[str, str]]:
    """Lines of ``first`` and ``second`` taken in turn, said by Ana, Bob and Carla in turn."""
    lines = [text for pair in zip(first, second, strict=False) for text in pair]
    return [(("Ana", "Bob", "Carla")[n % 3], text) for n, text in enumerate(lines)]
