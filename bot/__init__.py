"""Condensa: the composition root (settings, application, run modes, command line)."""
