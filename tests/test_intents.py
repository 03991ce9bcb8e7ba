import datetime as dt

import pytest

from edge.intents import match

NOW = dt.datetime(2026, 11, 22, 15, 7)


@pytest.mark.parametrize(
    ("said", "intent", "reply"),
    [
        ("What time is it?", "time", "It's 3:07 PM."),
        ("what's the time", "time", "It's 3:07 PM."),
        ("Tell me the time.", "time", "It's 3:07 PM."),
        ("What is the date today?", "date", "Today is Sunday, November 22, 2026."),
        ("What day is it?", "date", "Today is Sunday, November 22, 2026."),
        ("Thank you very much.", "thanks", "You're welcome."),
        ("Never mind.", "cancel", ""),
    ],
)
def test_rules(said: str, intent: str, reply: str) -> None:
    got = match(said, NOW)
    assert got is not None and (got.intent, got.text) == (intent, reply)


@pytest.mark.parametrize("said", ["What time is the game tonight?", "Tell me a joke", "Stop the music in the kitchen"])
def test_other_requests_go_to_the_llm(said: str) -> None:
    assert match(said, NOW) is None


def test_midnight_and_noon() -> None:
    assert match("what time is it", dt.datetime(2026, 1, 1, 0, 5)).text == "It's 12:05 AM."  # type: ignore[union-attr]
    assert match("what time is it", dt.datetime(2026, 1, 1, 12, 0)).text == "It's 12:00 PM."  # type: ignore[union-attr]
