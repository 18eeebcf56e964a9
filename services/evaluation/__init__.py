"""Measuring quality: evaluation data, ROUGE with bootstrap intervals, keyphrase F1."""
