"""Per-group keys: group_messages.text and .author are AES-GCM blobs from here on."""

from services.storage.schema import schema_step

steps = [schema_step(3)]
