"""Telegram's HTML parse mode, as the Bot API checks it: tags, entities, UTF-16 offsets."""

from __future__ import annotations

import html
import re
from typing import Any

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}

_TAG_RE = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*>"
)

_ATTR_RE = re.compile(r"([a-zA-Z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+)))?")

_ENTITY_RE = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")


class BotAPIError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram's HTML subset into plain text and entities (UTF-16 offsets).

    Raises:
        BotAPIError: 400 "can't parse entities" for unsupported tags, unbalanced tags, or a
            bare ``<``, ``>`` or ``&``, as Telegram does.
    """
    out: list[str] = []
    length = 0
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, dict[str, Any]]] = []
    i = 0

    def fail(reason: str) -> BotAPIError:
        offset = len(source[:i].encode("utf-8"))
        return BotAPIError(
            400, f"Bad Request: can't parse entities: {reason} at byte offset {offset}"
        )

    while i < len(source):
        ch = source[i]
        if ch == "<":
            match = _TAG_RE.match(source, i)
            if match is None:
                raise fail(
                    "Unexpected end of name token"
                    if ">" not in source[i:]
                    else "Unsupported start tag"
                )
            closing, name, attrs = match.group(1) == "/", match.group(2).lower(), match.group(3)
            if name not in _HTML_TAGS:
                kind = "end" if closing else "start"
                raise fail(f'Unsupported {kind} tag "{name}"')
            if closing:
                if not stack or stack[-1][0] != name:
                    raise fail(f'Unmatched end tag "{name}"')
                open_name, start, attributes = stack.pop()
                if length > start:
                    entity = {
                        "type": _HTML_TAGS[open_name],
                        "offset": start,
                        "length": length - start,
                    }
                    entity.update(attributes)
                    entities.append(entity)
            else:
                extra: dict[str, Any] = {}
                parsed = {
                    m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
                    for m in _ATTR_RE.finditer(attrs)
                }
                if name == "a":
                    extra["url"] = html.unescape(parsed.get("href", ""))
                if name == "span" and parsed.get("class") != "tg-spoiler":
                    raise fail('Unsupported start tag "span"')
                if name == "pre" and stack and stack[-1][0] == "code":
                    raise fail('Unexpected start tag "pre"')
                if name == "blockquote" and "expandable" in parsed:
                    extra["type"] = "expandable_blockquote"
                stack.append((name, length, extra))
            i = match.end()
            continue
        if ch == "&":
            match = _ENTITY_RE.match(source, i)
            if match is None:
                raise fail("Character '&' is reserved and must be escaped with &amp;")
            decoded = html.unescape(match.group(0))
            out.append(decoded)
            length += utf16_len(decoded)
            i = match.end()
            continue
        if ch == ">":
            raise fail("Character '>' is reserved and must be escaped with &gt;")
        out.append(ch)
        length += utf16_len(ch)
        i += 1
    if stack:
        i = len(source)
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities
