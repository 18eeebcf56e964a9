"""Summaries: the service (length control, fallbacks), extractive rankers and seq2seq models."""
