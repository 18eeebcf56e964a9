"""Logging: module loggers, quiet HTTP clients, and the bot token redacted everywhere."""

from __future__ import annotations

import logging
import sys


class RedactingFormatter(logging.Formatter):
    """Formats records, then removes secrets from the final text (tracebacks included)."""

    def __init__(self, fmt: str, secrets: list[str]) -> None:
        super().__init__(fmt)
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` with every secret replaced by ``[REDACTED]``."""
        return redact(super().format(record), self._secrets)


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with each secret replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[REDACTED]")
    return text


def configure_logging(level: str, secrets: list[str]) -> None:
    """Log to stderr at ``level`` with secrets redacted; httpx and friends at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiohttp.access", "apscheduler", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
