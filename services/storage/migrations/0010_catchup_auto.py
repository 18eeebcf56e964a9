"""Members who asked for an automatic catch-up, and when they last wrote."""

from services.storage.schema import schema_step

steps = [schema_step(10)]
