"""Forum supergroups: the topic thread a message belongs to."""

from services.storage.schema import schema_step

steps = [schema_step(5)]
