"""Group digests: settings, kept messages, opt-outs."""

from services.storage.schema import schema_step

steps = [schema_step(2)]
