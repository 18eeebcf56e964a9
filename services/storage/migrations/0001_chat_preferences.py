"""Chat preferences: method, length, language."""

from services.storage.schema import schema_step

steps = [schema_step(1)]
