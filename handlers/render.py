"""Rendering: every reply is HTML built here, escaped, and split under Telegram's limit.

Replies are assembled from self-contained HTML blocks (a heading, a paragraph, a list item), so
splitting between blocks never cuts a tag. A block longer than the limit is split as plain
text — at a paragraph, line, sentence or word boundary, never inside a word — and escaped after.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from telegram.constants import MessageLimit

from handlers.i18n import t, tn
from handlers.inputs import InputText
from services.core.types import (
    CatchUp,
    ChatDigest,
    ChatMessage,
    DigestSentence,
    DocumentText,
    KeywordResult,
    Summary,
    Transcript,
)

MAX_LENGTH = MessageLimit.MAX_TEXT_LENGTH
_BOUNDARIES = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?…])\s+"),
    re.compile(r"\s+"),
)

METHOD_LABELS = {
    "lexrank": "LexRank",
    "textrank": "TextRank",
    "lsa": "LSA",
    "luhn": "Luhn",
    "edmundson": "Edmundson",
    "kl": "KL-Sum",
    "sumbasic": "SumBasic",
    "textteaser": "TextTeaser",
    "embedding": "Embedding",
    "abstractive": "Abstractive",
    "llm": "LLM",
    "lead": "Lead",
    "extractive:auto": "Learned",
}


def escape(text: str) -> str:
    """Escape a user- or model-supplied string for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


def method_label(method: str) -> str:
    """The display name of a summary method ("Learned · newsroom" for ``extractive:newsroom``)."""
    if method in METHOD_LABELS:
        return METHOD_LABELS[method]
    kind, _, name = method.partition(":")
    prefix = {"extractive": "Learned", "llm": "LLM"}.get(kind)
    return f"{prefix} · {name}" if prefix and name else method


def telegram_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_plain(text: str, limit: int) -> list[str]:
    """Split plain text into pieces whose *escaped* length is at most ``limit``.

    Cuts at the coarsest boundary that works: paragraph, line, sentence, then whitespace.
    A single word longer than the limit (a huge URL) is the only thing cut inside.
    """
    if telegram_length(escape(text)) <= limit:
        return [text]
    for boundary in _BOUNDARIES:
        parts = [p for p in boundary.split(text) if p.strip()]
        if len(parts) > 1:
            separator = (
                "\n\n"
                if boundary is _BOUNDARIES[0]
                else "\n"
                if boundary is _BOUNDARIES[1]
                else " "
            )
            return _pack(
                [piece for part in parts for piece in split_plain(part, limit)], separator, limit
            )
    # One enormous token: cut it where an escape sequence cannot be broken (escape each piece).
    step = max(1, limit // 6)
    return [text[i : i + step] for i in range(0, len(text), step)]


def _pack(parts: list[str], separator: str, limit: int) -> list[str]:
    pieces: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current}{separator}{part}" if current else part
        if telegram_length(escape(candidate)) <= limit:
            current = candidate
        else:
            if current:
                pieces.append(current)
            current = part
    if current:
        pieces.append(current)
    return pieces


def pack_blocks(blocks: list[str], limit: int = MAX_LENGTH) -> list[str]:
    """Join self-contained HTML blocks with blank lines into messages under ``limit``."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        candidate = f"{current}\n\n{block}" if current else block
        if telegram_length(candidate) <= limit:
            current = candidate
            continue
        if current:
            messages.append(current)
        current = block
    if current:
        messages.append(current)
    return messages


def paragraph_blocks(text: str, limit: int = MAX_LENGTH, prefix: str = "") -> list[str]:
    """Escaped HTML blocks for plain ``text``, each under ``limit`` with ``prefix`` added."""
    room = limit - telegram_length(prefix)
    return [prefix + escape(piece) for piece in split_plain(text, room)]


def document_heading(source: InputText, language: str) -> tuple[str, str]:
    """(title, note) for a reply about ``source``: "report.pdf · 34 pages · 12,400 words", and
    "Summary of the first part (40 of 212 pages)." when only part of it was read."""
    if not source.name:
        return "", ""
    document = source.document
    if document is None:
        return source.name, ""
    parts = [source.name]
    if document.ocr_confidence is not None:
        parts.append("OCR")
    if document.pages is not None:
        parts.append(tn(f"count_{document.page_unit}", document.pages, language))
    parts.append(tn("count_words", document.words, language))
    return " · ".join(parts), partial_note(document, language)


def ocr_note(document: DocumentText | None, language: str, min_confidence: float) -> str:
    """A warning when OCR read the text with low confidence ("" otherwise)."""
    if document is None or document.ocr_confidence is None:
        return ""
    if document.ocr_confidence >= min_confidence:
        return ""
    return t("ocr_low_confidence", language, confidence=round(document.ocr_confidence))


def duration_label(seconds: float) -> str:
    """1:42, or 1:02:03 past an hour."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


TRANSCRIPT_INLINE_CHARS = 6000
"""A longer transcript goes as a .txt attachment rather than as several messages."""


def render_transcript(transcript: Transcript, language: str) -> list[str]:
    """The transcript part of a voice-note reply: "🎙 1:42 · 260 words" and the text, in
    expandable quotes (an attachment is announced instead past ``TRANSCRIPT_INLINE_CHARS``)."""
    heading = "🎙 " + " · ".join(
        (duration_label(transcript.seconds), tn("count_words", transcript.words, language))
    )
    blocks = [f"<b>{escape(heading)}</b>"]
    if len(transcript.text) > TRANSCRIPT_INLINE_CHARS:
        blocks.append(f"<i>{escape(t('transcript_attached', language))}</i>")
        return blocks
    quote = ("<blockquote expandable>", "</blockquote>")
    room = MAX_LENGTH - telegram_length("".join(quote)) - 8
    blocks.extend(
        f"{quote[0]}{escape(piece)}{quote[1]}" for piece in split_plain(transcript.text, room)
    )
    return blocks


def render_read_text(source: InputText, language: str, note: str = "") -> list[str]:
    """Text read from a picture, too short to summarize: the heading, a doubt, the text."""
    title, _ = document_heading(source, language)
    blocks = [f"<b>{escape(title)}</b>"] if title else []
    if note:
        blocks.append(f"<i>{escape(note)}</i>")
    blocks.extend(
        f"<blockquote>{block}</blockquote>"
        for block in paragraph_blocks(source.text, MAX_LENGTH - 30)
    )
    return pack_blocks(blocks)


def partial_note(document: DocumentText, language: str) -> str:
    """The note "Summary of the first part (40 of 212 pages): …" when only part was read."""
    if not document.truncated:
        return ""
    if document.pages_read is not None and document.pages is not None:
        return tn(
            f"partial_{document.page_unit}",
            document.pages,
            language,
            read=document.pages_read,
            total=document.pages,
        )
    return t("partial_text", language)


def render_summary(summary: Summary, language: str, title: str = "", note: str = "") -> list[str]:
    """The messages of a summary reply: an optional title and note, the heading, the text."""
    percent = round(100 * summary.compression)
    heading = tn(
        "summary_heading",
        summary.source_sentences,
        language,
        method=escape(method_label(summary.method)),
        kept=len(summary.sentences),
        total=summary.source_sentences,
        percent=percent,
    )
    blocks = [f"<b>{escape(title)}</b>"] if title else []
    if note:
        blocks.append(f"<i>{escape(note)}</i>")
    blocks.append(heading)
    if summary.requested_method:
        fallback = t(
            "summary_fallback",
            language,
            requested=method_label(summary.requested_method),
            used=method_label(summary.method),
            reason=summary.note,
        )
        blocks.append(f"<i>{escape(fallback)}</i>")
    if summary.citations:
        blocks.extend(_cited_blocks(summary, language))
    else:
        blocks.extend(first_screen_blocks(summary.sentences))
    return pack_blocks(blocks)


FIRST_SCREEN_CHARS = 700
"""A summary longer than this shows its opening sentences, the rest in an expandable quote."""
_EXPANDABLE = ("<blockquote expandable>", "</blockquote>")


def first_screen_blocks(sentences: list[str]) -> list[str]:
    """Blocks of ``sentences``: all of them when they fit one screen; otherwise those within
    the first ~``FIRST_SCREEN_CHARS / 2`` characters, then the rest collapsed into expandable
    quotes (Telegram shows their first lines and opens them on a tap)."""
    text = "\n".join(sentences)
    if len(text) <= FIRST_SCREEN_CHARS or len(sentences) < 3:
        return paragraph_blocks(text)
    shown: list[str] = []
    for sentence in sentences:
        if shown and len("\n".join([*shown, sentence])) > FIRST_SCREEN_CHARS // 2:
            break
        shown.append(sentence)
    rest = "\n".join(sentences[len(shown) :])
    room = MAX_LENGTH - telegram_length("".join(_EXPANDABLE))
    quoted = [
        f"{_EXPANDABLE[0]}{escape(piece)}{_EXPANDABLE[1]}" for piece in split_plain(rest, room)
    ]
    return [*paragraph_blocks("\n".join(shown)), *quoted]


QUOTE_CHARS = 300
"""Longer cited source sentences are shortened in the sources list."""


def _cited_blocks(summary: Summary, language: str) -> list[str]:
    """Written sentences with their source numbers ("… [1][2]"), a ⚠️ on those the source does
    not support, then the numbered sources quoted."""
    lines = []
    for sentence, cited, flagged in zip(
        summary.sentences, summary.citations, summary.flagged, strict=True
    ):
        marks = "".join(f"[{i + 1}]" for i in cited)
        line = ("⚠️ " if flagged else "") + escape(sentence) + (f" {marks}" if marks else "")
        lines.append(line)
    blocks = ["\n".join(lines)] if lines else []
    if summary.quotes:
        quoted = [
            f"[{n}] <i>{escape(_shorten(quote, QUOTE_CHARS))}</i>"
            for n, quote in enumerate(summary.quotes, start=1)
        ]
        blocks.append(f"<b>{escape(t('grounding_sources', language))}</b>\n" + "\n".join(quoted))
    if any(summary.flagged):
        blocks.append(f"<i>{escape(t('grounding_flag_note', language))}</i>")
    if summary.dropped:
        note = tn("grounding_dropped", summary.dropped, language)
        blocks.append(f"<i>{escape(note)}</i>")
    return blocks


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def render_keywords(
    result: KeywordResult, language: str, title: str = "", note: str = ""
) -> list[str]:
    """The messages of a keyphrase reply: optional title and note, a heading, a numbered list."""
    blocks = [f"<b>{escape(title)}</b>"] if title else []
    if note:
        blocks.append(f"<i>{escape(note)}</i>")
    if not result.keyphrases:
        return pack_blocks([*blocks, escape(t("no_keywords", language))])
    lines = [
        f"{rank}. {escape(item.phrase)} <i>({item.score:.2f})</i>"
        for rank, item in enumerate(result.keyphrases, start=1)
    ]
    return pack_blocks([*blocks, t("keywords_heading", language), "\n".join(lines)])


QUOTE_CHARS = 160


def message_link(chat_id: int, message_id: int, username: str | None = None) -> str:
    """A t.me link to a group message: public groups by @username, supergroups by
    ``t.me/c/<id>/<message>``; "" for basic groups, which have no message links."""
    if username:
        return f"https://t.me/{username}/{message_id}"
    text = str(chat_id)
    if text.startswith("-100"):
        return f"https://t.me/c/{text[4:]}/{message_id}"
    return ""


def short_quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` on one line, cut at a word boundary under ``limit`` characters with "…"."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0]
    return f"{cut}…"


def _day(timestamp: int, timezone_name: str) -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone_name) if timezone_name else UTC
    return datetime.fromtimestamp(timestamp, zone).strftime("%d %b %H:%M")


def _quote_block(message: ChatMessage, username: str | None) -> str:
    quote = escape(short_quote(message.text))
    link = message_link(message.chat_id, message.message_id, username)
    body = f'<a href="{escape(link)}">{quote}</a>' if link else quote
    return f"<blockquote>{body}\n— {escape(message.author or '?')}</blockquote>"


def digest_sentence(sentence: DigestSentence, username: str | None) -> str:
    """One narrative sentence: a quoted one as "<b>Author</b>: text ↗" linking its message; a
    written one with links to the messages that support it, ⚠️ when they do not."""
    links = [message_link(m.chat_id, m.message_id, username) for m in sentence.sources]
    links = [link for link in links if link]
    if len(sentence.sources) == 1 and sentence.text in sentence.sources[0].text:
        author = sentence.author
        line = (f"<b>{escape(author)}</b>: " if author else "") + escape(sentence.text)
        return line + (f' <a href="{escape(links[0])}">↗</a>' if links else "")
    marks = "".join(f'<a href="{escape(link)}">[{n}]</a>' for n, link in enumerate(links, 1))
    return (
        ("⚠️ " if sentence.flagged else "") + escape(sentence.text) + (f" {marks}" if marks else "")
    )


def render_digest(
    digest: ChatDigest, language: str, username: str | None = None, timezone_name: str = ""
) -> list[str]:
    """The messages of a group digest: heading, TL;DR, keyphrases with counts, topics with
    what was said (linked to the messages) and who took part."""
    blocks = [
        t(
            "digest_heading",
            language,
            messages=tn("count_messages", digest.message_count, language),
            people=tn("count_people", digest.participants, language),
            start=_day(digest.first_date, timezone_name),
            end=_day(digest.last_date, timezone_name),
        )
    ]
    if digest.tldr:
        said = " ".join(digest_sentence(s, username) for s in digest.tldr)
        blocks.append(f"{t('digest_tldr', language)} {said}")
    if digest.keyphrases:
        lines = [f"• {escape(phrase)} — {count}" for phrase, count in digest.keyphrases]
        blocks.append(t("digest_keyphrases", language) + "\n" + "\n".join(lines))
    if digest.topics:
        blocks.append(t("digest_topics", language))
        for number, topic in enumerate(digest.topics, start=1):
            line = t(
                "digest_topic_line",
                language,
                words=escape(", ".join(topic.words)),
                messages=tn("count_messages", topic.message_count, language),
            )
            block = f"{number}. <b>{line}</b>"
            if topic.people:
                block += " · " + escape(
                    t("digest_people", language, people=", ".join(topic.people))
                )
            if topic.sentences:
                block += "".join("\n• " + digest_sentence(s, username) for s in topic.sentences)
            elif topic.quote is not None:
                block += "\n" + _quote_block(topic.quote, username)
            blocks.append(block)
    if digest.written_by and digest.narrative():
        note = t("digest_written_by", language, model=digest.written_by)
        blocks.append(f"<i>{escape(note)}</i>")
    return pack_blocks(blocks)


def _catchup_item(message: ChatMessage, username: str | None) -> str:
    """ "• <b>Author</b>: quote ↗", linked to the message."""
    link = message_link(message.chat_id, message.message_id, username)
    line = f"• <b>{escape(message.author or '?')}</b>: {escape(short_quote(message.text))}"
    return line + (f' <a href="{escape(link)}">↗</a>' if link else "")


def render_catchup(
    catchup: CatchUp, title: str, language: str, username: str | None, chat_id: int
) -> list[str]:
    """A member's catch-up: what concerns them, open questions, decisions and dates, then
    the rest in short (in an expandable quote), every line linked to its message."""
    heading = f"<b>{escape(t('catchup_title', language, title=title))}</b>"
    if catchup.empty:
        return [heading + "\n" + escape(t("catchup_empty", language))]
    blocks = [heading]
    for key, items in (
        ("catchup_for_you", catchup.for_you),
        ("catchup_questions", catchup.open_questions),
        ("catchup_decisions", catchup.decisions),
    ):
        if items:
            lines = [_catchup_item(m, username) for m in items]
            blocks.append(f"<b>{escape(t(key, language))}</b>\n" + "\n".join(lines))
    if catchup.narrative:
        lines = [digest_sentence(s, username) for s in catchup.narrative]
        blocks.append(
            f"<b>{escape(t('catchup_rest', language))}</b>\n"
            f"<blockquote expandable>{chr(10).join(lines)}</blockquote>"
        )
    return pack_blocks(blocks)
