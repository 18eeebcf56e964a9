"""What every capability shares: value types, protocols, domain errors, the bounded executor."""
