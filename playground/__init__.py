"""The local Telegram: a Bot API emulator and a web chat page, for ``make run`` without a token
and for tests. Production run modes never import this package (``tests/test_architecture.py``).
"""
