"""Headless Chromium for the browser tests and the README screenshot."""

from __future__ import annotations

CHROMIUM_FLAGS = (
    # What headless Debian Chromium needs here: no sandbox as root, no GPU, and no background
    # traffic (this machine has no network but the package registries).
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
)
