"""A word-cloud picture of keyphrase frequencies, with the ``wordcloud`` package."""

from __future__ import annotations

import io
from collections.abc import Mapping


def render_word_cloud(
    frequencies: Mapping[str, float], width: int = 800, height: int = 450
) -> bytes:
    """PNG bytes of ``frequencies`` (phrase → weight), the same picture for the same input.

    Raises:
        ValueError: when there is nothing to draw.
    """
    weights = {phrase: float(weight) for phrase, weight in frequencies.items() if weight > 0}
    if not weights:
        raise ValueError("no phrases to draw")
    from wordcloud import WordCloud

    cloud = WordCloud(
        width=width,
        height=height,
        background_color="white",
        colormap="viridis",
        prefer_horizontal=0.95,
        relative_scaling=0.5,
        random_state=0,
        collocations=False,
    ).generate_from_frequencies(weights)
    buffer = io.BytesIO()
    cloud.to_image().save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
