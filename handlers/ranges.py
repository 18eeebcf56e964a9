"""What ``/digest`` arguments mean: a number of messages, hours or days, the days people name
("yesterday", "ayer", "since monday", "desde el lunes", "3 de noviembre"), two message links,
or one digest per forum thread.

Dates are read by ``dateparser`` (English and Spanish) in the group's time zone; a named day
starts at its midnight. Parsing imports dateparser lazily, so call :func:`parse_window` off the
event loop the first time (``asyncio.to_thread``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_COUNT_RE = re.compile(r"^(?P<number>\d{1,6})(?P<unit>[hd]?)$", re.I)
_LINK_RE = re.compile(r"(?:https?://)?t\.me/(?:c/)?[\w]+/(?:\d+/)?(?P<message>\d+)", re.I)
_SINCE_RE = re.compile(
    r"^(?:since|from|after|desde|a partir de|después de)\s+(?:(?:the|el|la|los|las)\s+)?", re.I
)
_WHOLE_DAYS = {
    "today": 0,
    "hoy": 0,
    "yesterday": 1,
    "ayer": 1,
    "day before yesterday": 2,
    "anteayer": 2,
    "antes de ayer": 2,
}
_PER_THREAD = {"threads", "topics", "hilos", "temas", "por hilo", "por tema"}
_LANGUAGES = ["en", "es"]


@dataclass(frozen=True)
class DigestWindow:
    """Which messages a digest covers; all None means "since the last digest".

    Attributes:
        last: the newest N messages.
        since / until: Unix times (since exclusive, until exclusive).
        first_id / last_id: message ids, both included (a range between two links).
        per_thread: one digest per forum thread.
    """

    last: int | None = None
    since: int | None = None
    until: int | None = None
    first_id: int | None = None
    last_id: int | None = None
    per_thread: bool = False


def _midnight(day: dt.date, zone: dt.tzinfo) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=zone).timestamp())


def parse_window(argument: str, max_messages: int, now: dt.datetime) -> DigestWindow | None:
    """``/digest`` arguments → a :class:`DigestWindow`; None when not understood.

    Args:
        argument: what followed the command.
        max_messages: the most messages one digest reads.
        now: the current time, aware, in the group's time zone.
    """
    text = " ".join(argument.strip().lower().split())
    if not text:
        return DigestWindow()
    if text in _PER_THREAD:
        return DigestWindow(per_thread=True)
    links = [int(m["message"]) for m in _LINK_RE.finditer(text)]
    if links:
        if len(links) != 2:
            return None
        return DigestWindow(first_id=min(links), last_id=max(links))
    match = _COUNT_RE.match(text)
    if match is not None:
        number = int(match["number"])
        unit = match["unit"].lower()
        if number == 0:
            return None
        if unit in ("h", "d"):
            seconds = number * (3600 if unit == "h" else 86400)
            return DigestWindow(since=int(now.timestamp()) - seconds)
        return DigestWindow(last=min(number, max_messages))
    zone = now.tzinfo or dt.UTC
    if text in _WHOLE_DAYS:
        day = now.date() - dt.timedelta(days=_WHOLE_DAYS[text])
        until = None if _WHOLE_DAYS[text] == 0 else _midnight(day + dt.timedelta(days=1), zone)
        return DigestWindow(since=_midnight(day, zone) - 1, until=until)
    return _named_date(_SINCE_RE.sub("", text), now, zone)


def _named_date(text: str, now: dt.datetime, zone: dt.tzinfo) -> DigestWindow | None:
    if not any(ch.isalpha() for ch in text):  # "-5" is not a date people say
        return None
    import dateparser

    if text in _WHOLE_DAYS:
        return DigestWindow(
            since=_midnight(now.date() - dt.timedelta(_WHOLE_DAYS[text]), zone) - 1
        )
    found = dateparser.parse(
        text,
        languages=_LANGUAGES,
        settings={
            "PREFER_DATES_FROM": "past",
            "RELATIVE_BASE": now.replace(tzinfo=None),
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )
    if found is None or found > now.replace(tzinfo=None):
        return None
    moment = found.replace(tzinfo=zone)
    if found.time() == dt.time():
        return DigestWindow(since=_midnight(found.date(), zone) - 1)
    return DigestWindow(since=int(moment.timestamp()))
