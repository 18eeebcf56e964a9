"""Grounded answers: what a model wrote, aligned with the source sentences that support it."""
