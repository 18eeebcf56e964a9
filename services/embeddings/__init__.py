"""Sentence-embedding models shipped in PyPI packages, behind one ``EmbeddingBackend`` protocol."""
