"""Durable intake: the inbox (sealed updates until handled) and the outbox (what was sent)."""

from services.storage.schema import schema_step

steps = [schema_step(6)]
