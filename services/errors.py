"""Domain errors that handlers turn into one clear, localized sentence."""

from __future__ import annotations


class CondensaError(Exception):
    """Base class of every error a user may be told about."""

    code = "error"


class EmptyInput(CondensaError):
    """There was no text to work on."""

    code = "empty"


class InputTooShort(CondensaError):
    """The text is too short to be worth condensing."""

    code = "too_short"

    def __init__(self, sentences: int, minimum: int) -> None:
        super().__init__(f"text has {sentences} sentences, at least {minimum} needed")
        self.sentences = sentences
        self.minimum = minimum


class InputTooLarge(CondensaError):
    """The input is over a size limit."""

    code = "too_large"

    def __init__(self, size: int, limit: int, unit: str = "characters") -> None:
        super().__init__(f"input has {size} {unit}, the limit is {limit}")
        self.size = size
        self.limit = limit
        self.unit = unit


class UnsupportedFormat(CondensaError):
    """A file whose format cannot be read."""

    code = "unsupported"

    def __init__(self, kind: str) -> None:
        super().__init__(f"unsupported format: {kind}")
        self.kind = kind


class Busy(CondensaError):
    """Every model worker and queue slot is taken; try again shortly."""

    code = "busy"


class ModelUnavailable(CondensaError):
    """A model cannot be loaded (not installed, not downloadable, corrupt)."""

    code = "model_unavailable"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"model {name!r} is unavailable: {reason}")
        self.name = name
        self.reason = reason


class UnknownMethod(CondensaError):
    """A method name that no backend answers to."""

    code = "unknown_method"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown method {name!r}; known: {', '.join(known)}")
        self.name = name
        self.known = known


class FetchBlocked(CondensaError):
    """A URL that policy forbids fetching."""

    code = "fetch_blocked"
