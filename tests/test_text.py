"""Pure text functions: cleaning, sentence splitting, tokenizing."""

from __future__ import annotations

import pytest

from services.text.language import detect_language
from services.text.splitting import chunk_words, clean_text, split_sentences, tokenize_words


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        (
            "The U.S. economy grew. I live in the U.S. He does not.",
            "en",
            ["The U.S. economy grew.", "I live in the U.S.", "He does not."],
        ),
        (
            "Mr. Smith said so, e.g. in his report. He left at 5 p.m. yesterday.",
            "en",
            ["Mr. Smith said so, e.g. in his report.", "He left at 5 p.m. yesterday."],
        ),
        (
            "El Sr. García llegó a EE. UU. ayer. Hay ejemplos, p. ej. el de la Sra. López. ¿Vendrá?",
            "es",
            [
                "El Sr. García llegó a EE. UU. ayer.",
                "Hay ejemplos, p. ej. el de la Sra. López.",
                "¿Vendrá?",
            ],
        ),
        (
            "Paul Merson 's row with Andros Townsend continued . The 0-0 draw was dull .",
            "en",
            ["Paul Merson 's row with Andros Townsend continued .", "The 0-0 draw was dull ."],
        ),
    ],
)
def test_sentence_splitting_copes_with_abbreviations(
    text: str, language: str, expected: list[str]
) -> None:
    assert split_sentences(text, language) == expected


def test_bullets_and_unpunctuated_chat_lines_are_sentences() -> None:
    text = "Plan for today:\n- buy milk\n- call the bank\nsee you at noon\nBring the keys"
    assert split_sentences(text, "en") == [
        "Plan for today:",
        "buy milk",
        "call the bank",
        "see you at noon",
        "Bring the keys",
    ]


def test_hard_wrapped_prose_is_joined() -> None:
    text = (
        "This is a long wrapped line of prose that goes on and on until\n"
        "the margin where it wraps and continues on the next line until it\n"
        "finally ends here. A second sentence follows."
    )
    sentences = split_sentences(text, "en")
    assert sentences[0].startswith("This is a long") and sentences[0].endswith("ends here.")
    assert sentences[1] == "A second sentence follows."


def test_text_without_punctuation_is_cut_by_length() -> None:
    words = [f"w{i}x" for i in range(130)]
    sentences = split_sentences(" ".join(words), "en")
    assert [len(s.split()) for s in sentences] == [40, 40, 40, 10]
    assert " ".join(sentences) == " ".join(words)


def test_cleaning_removes_quotes_zero_width_and_extra_space() -> None:
    assert (
        clean_text("> quoted\u200b  reply\r\n\r\n\r\n\r\nnext\u00a0line")
        == "quoted reply\n\nnext line"
    )


def test_words_skip_urls_numbers_and_keep_inner_apostrophes() -> None:
    text = "Don't miss https://example.com/a-b it's 2024 well-known 😀 niño"
    assert tokenize_words(text) == ["Don't", "miss", "it's", "well-known", "niño"]


def test_chunk_words_never_splits_a_word() -> None:
    assert chunk_words("a bb ccc dddd", 3) == ["a bb ccc", "dddd"]


def test_a_100k_character_input_splits_quickly() -> None:
    text = "This is one sentence about things. " * 3000
    assert len(split_sentences(text, "en")) == 3000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("El gobierno anunció nuevas medidas económicas para el empleo juvenil.", "es"),
        ("The government announced new economic measures for youth employment.", "en"),
        ("ok 👍", "en"),
    ],
)
def test_language_detection_with_fallback(text: str, expected: str) -> None:
    assert detect_language(text) == expected
