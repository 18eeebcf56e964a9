"""When a send was recorded, so a worker's outbox is forgotten by age."""

from services.storage.schema import schema_step

steps = [schema_step(7)]
