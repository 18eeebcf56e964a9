"""``condensa adapt``: training adapters on a user's pairs, and serving the adapted models."""
