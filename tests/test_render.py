"""Rendering: escaping and splitting under Telegram's limit."""

from __future__ import annotations

from handlers.render import escape, pack_blocks, render_keywords, render_summary, split_plain
from playground.parser import parse_html
from services.core.types import Keyphrase, KeywordResult, Summary


def test_escape_neutralizes_html() -> None:
    assert escape("<b>a & b</b>") == "&lt;b&gt;a &amp; b&lt;/b&gt;"


def test_split_plain_prefers_paragraphs_then_sentences_then_words() -> None:
    paragraphs = "\n\n".join(["First one. " * 30, "Second one. " * 30])
    pieces = split_plain(paragraphs, 400)
    assert all(len(escape(p)) <= 400 for p in pieces)
    assert all(p.rstrip().endswith(".") for p in pieces), "cut at sentence ends"
    words = "word " * 300
    assert all(p.split() == ["word"] * len(p.split()) for p in split_plain(words, 100))


def test_split_plain_counts_escaped_length() -> None:
    text = "&&&& " * 100
    assert all(len(escape(p)) <= 50 for p in split_plain(text, 50))


def test_pack_blocks_keeps_blocks_whole() -> None:
    blocks = ["<b>head</b>", "a" * 3000, "b" * 3000]
    messages = pack_blocks(blocks)
    assert messages == ["<b>head</b>\n\n" + "a" * 3000, "b" * 3000]


def test_summary_rendering_is_valid_telegram_html() -> None:
    summary = Summary("lexrank", "en", ["A <b> tag & more.", "Second."], 20, 1000)
    [message] = render_summary(summary, "en", title="report <1>.txt")
    text, entities = parse_html(message)
    assert text.startswith("report <1>.txt\n\nLexRank · 2 of 20 sentences, 10 %")
    assert "A <b> tag & more." in text
    assert entities[0]["type"] == "bold"


def test_keywords_rendering() -> None:
    result = KeywordResult("en", [Keyphrase("tram <lines>", 0.8), Keyphrase("tax", 0.5)])
    [message] = render_keywords(result, "es")
    text, _ = parse_html(message)
    assert text == "Frases clave\n\n1. tram <lines> (0.80)\n2. tax (0.50)"


def test_a_transcript_is_quoted_expandable_and_a_long_one_is_announced_as_attached() -> None:
    from handlers.render import TRANSCRIPT_INLINE_CHARS, render_transcript
    from services.core.types import Transcript

    short = Transcript("Hello <there>.\nSecond line.", "en", 102.4, "whisper-base")
    blocks = render_transcript(short, "en")
    assert blocks[0] == "<b>🎙 1:42 · 4 words</b>"
    assert blocks[1] == "<blockquote expandable>Hello &lt;there&gt;.\nSecond line.</blockquote>"
    long = Transcript("word " * (TRANSCRIPT_INLINE_CHARS // 4), "es", 3725, "whisper-base")
    blocks = render_transcript(long, "es")
    assert blocks[0].startswith("<b>🎙 1:02:05 · ")
    assert blocks[1:] == ["<i>La transcripción completa va adjunta como archivo de texto.</i>"]


def test_a_long_summary_shows_its_first_screen_and_collapses_the_rest() -> None:
    from handlers.render import FIRST_SCREEN_CHARS, first_screen_blocks

    sentences = [f"Sentence number {i} says something about the <budget> plan." for i in range(40)]
    blocks = first_screen_blocks(sentences)
    assert not blocks[0].startswith("<blockquote")
    assert len(blocks[0]) <= FIRST_SCREEN_CHARS // 2 + 80
    assert all(b.startswith("<blockquote expandable>") for b in blocks[1:])
    assert "&lt;budget&gt;" in blocks[1]
    for message in pack_blocks(blocks):
        text, entities = parse_html(message)  # valid HTML Telegram accepts, under the limit
        assert len(text.encode("utf-16-le")) // 2 <= 4096
    short = ["One sentence.", "Two sentences."]
    assert first_screen_blocks(short) == ["One sentence.\nTwo sentences."]
