"""Choosing what a member missed: replies and mentions, open questions, decisions and dates."""

from __future__ import annotations

from services.core.types import ChatMessage
from services.digest.catchup import Member, fixes_something, is_question, select

ANA = Member(1, "ana")


def message(
    number: int, user: int, text: str, reply_to: int = 0, reply_to_user: int = 0
) -> ChatMessage:
    return ChatMessage(
        -100, number, user, f"user{user}", 1_700_000_000 + number, text, 0, reply_to, reply_to_user
    )


def test_replies_found_through_older_messages_and_answered_questions_left_out() -> None:
    window = [
        message(10, 2, "¿Alguien sabe dónde están las llaves?"),
        message(11, 3, "En el cajón de la cocina.", reply_to=10),
        message(12, 2, "Thanks for the photos!", reply_to=5),  # 5: Ana's, before the window
        message(13, 3, "Is the printer fixed?"),
        message(14, 1, "I'm back!"),
        message(15, 3, "Ana, the printer is fine?", reply_to=14),
    ]
    for_you, questions, decisions, rest = select(window, ANA, authors={5: 1})
    assert [m.message_id for m in for_you] == [12, 15]
    assert [m.message_id for m in questions] == [13]  # 10 was answered by 11
    assert not decisions and [m.message_id for m in rest] == [10, 11]


def test_questions_decisions_and_chatter_are_told_apart() -> None:
    assert is_question("Who brings the snacks?") and is_question("¿Quién trae la comida")
    assert not is_question("The snacks are ready.")
    assert fixes_something("The meeting moved to Friday at 10:00")
    assert fixes_something("La cena queda para el sábado")
    assert fixes_something("Tickets cost 25 euros each")
    assert fixes_something("Acordamos repartir los gastos")
    assert fixes_something("The garden looks lovely today, well done everyone") is not False
    assert not fixes_something("Nice photos, thanks")


def test_a_mention_needs_the_whole_username() -> None:
    window = [message(1, 2, "@ana_b look at this"), message(2, 2, "cc @Ana: done")]
    for_you, *_ = select(window, ANA)
    assert [m.message_id for m in for_you] == [2]
