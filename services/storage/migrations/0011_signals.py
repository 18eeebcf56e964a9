"""Reaction counts, pins and forwarded-in documents of kept messages (ranking signals for
digests and catch-ups)."""

from services.storage.schema import schema_step

steps = [schema_step(11)]
