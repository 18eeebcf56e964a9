"""Usage counted once per update."""

from services.storage.schema import schema_step

steps = [schema_step(8)]
