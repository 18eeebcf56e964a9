"""Access, quotas and the operator's view: counts and ids only, never message text."""

from services.storage.schema import schema_step

steps = [schema_step(4)]
