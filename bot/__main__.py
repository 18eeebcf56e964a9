"""``python -m bot``: run the bot, or a subcommand (see :mod:`bot.cli`)."""

from __future__ import annotations

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
