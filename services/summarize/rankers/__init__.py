"""Extractive rankers, one module per algorithm, all behind SentenceRanker."""
