"""Domain errors that handlers turn into one clear, localized sentence."""

from __future__ import annotations


class CondensaError(Exception):
    """Base class of every error a user may be told about."""


class EmptyInput(CondensaError):
    """There was no text to work on."""


class InputTooShort(CondensaError):
    """The text is too short to be worth condensing."""

    def __init__(self, sentences: int, minimum: int) -> None:
        super().__init__(f"text has {sentences} sentences, at least {minimum} needed")
        self.sentences = sentences
        self.minimum = minimum


class InputTooLarge(CondensaError):
    """The input is over a size limit."""

    def __init__(self, size: int, limit: int, unit: str = "characters") -> None:
        super().__init__(f"input has {size} {unit}, the limit is {limit}")
        self.size = size
        self.limit = limit
        self.unit = unit


class UnsupportedFormat(CondensaError):
    """A file whose format cannot be read."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"unsupported format: {kind}")
        self.kind = kind


class Busy(CondensaError):
    """Every model worker and queue slot is taken; try again shortly."""


class ModelUnavailable(CondensaError):
    """A model cannot be loaded (not installed, not downloadable, corrupt)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"model {name!r} is unavailable: {reason}")
        self.name = name
        self.reason = reason


class UnknownMethod(CondensaError):
    """A method name that no backend answers to."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown method {name!r}; known: {', '.join(known)}")
        self.name = name
        self.known = known


class FetchBlocked(CondensaError):
    """A URL that policy forbids fetching."""


class DocumentUnreadable(CondensaError):
    """A document that cannot be read, with the reason as a code.

    Codes: ``encrypted`` (password-protected), ``no_text`` (scanned, no text layer),
    ``damaged`` (broken file), ``too_complex`` (over the time or memory budget, e.g. a bomb),
    and for photos and recordings ``empty_file``, ``no_speech``, ``no_decoder``,
    ``image_too_large``, ``no_text_in_image``.
    """

    EXPLANATIONS = {
        "encrypted": "the PDF is password-protected",
        "no_text": "the PDF has no text layer (it looks scanned; run OCR first)",
        "damaged": "the file is damaged or is not what its name says",
        "too_complex": "reading it went over the time or memory budget (damaged or hostile)",
        "empty_file": "the file is empty",
        "no_speech": "no speech was heard in the recording",
        "no_decoder": "a program needed to read it (FFmpeg, Tesseract, poppler) is missing",
        "image_too_large": "the image is too large to read",
        "no_text_in_image": "no text was found in the image",
    }

    def __init__(self, reason: str, detail: str = "") -> None:
        explanation = self.EXPLANATIONS.get(reason, reason)
        super().__init__(f"{explanation} ({detail})" if detail else explanation)
        self.reason = reason
        self.detail = detail


class NotAnExport(UnsupportedFormat):
    """A file that is not a single-chat Telegram Desktop export in JSON."""

    def __init__(self, detail: str) -> None:
        super().__init__("chat export")
        self.detail = detail


class ModelServerError(CondensaError):
    """The model server failed; ``kind`` says how, for one clear sentence.

    Kinds: ``unreachable`` (refused, DNS), ``timeout``, ``unauthorized`` (401/403),
    ``unknown_model`` (404), ``rate_limited`` (429), ``overloaded`` (5xx), ``down`` (the
    circuit is open after repeated failures), ``cut`` (the stream broke after some text),
    ``bad_response`` (malformed data), ``too_long`` (the prompt does not fit its context).
    """

    def __init__(self, kind: str, detail: str = "", retry_after: int | None = None) -> None:
        super().__init__(f"model server: {kind}" + (f" ({detail})" if detail else ""))
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after


class SpeechUnsupported(CondensaError):
    """Speech in a language the offline recognizer is not set up for."""

    def __init__(self, language: str) -> None:
        super().__init__(f"no offline speech model for {language!r}")
        self.language = language
