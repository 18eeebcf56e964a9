"""What a kept message replies to, for a member's catch-up."""

from services.storage.schema import schema_step

steps = [schema_step(9)]
