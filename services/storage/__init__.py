"""Persistent state: per-chat preferences and the group message archive."""
