"""Model and data layer: summarizers, keywords, language, text, storage.

Nothing here imports ``telegram``: services take plain text in and return typed results.
"""
