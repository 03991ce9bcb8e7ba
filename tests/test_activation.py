import pytest

from edge.activation import Activation, strip_wake_phrase
from edge.settings import ActivationSettings

PHRASES = ("hey hearth", "okay hearth")


@pytest.mark.parametrize(
    ("heard", "rest"),
    [
        ("Hey Hearth, what time is it?", "what time is it?"),
        ("Hey Harth what time is it", "what time is it"),
        ("hey heart, turn on the light", "turn on the light"),
        ("Okay Hearth. Tell me a joke.", "Tell me a joke."),
        ("Hey Hearth.", ""),
    ],
)
def test_wake_phrase_fuzzy(heard: str, rest: str) -> None:
    assert strip_wake_phrase(heard, PHRASES) == rest


@pytest.mark.parametrize("heard", ["What time is it?", "Hello there, how are you", "Heather said hi", "hey"])
def test_no_wake_phrase(heard: str) -> None:
    assert strip_wake_phrase(heard, PHRASES) is None


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_follow_up_window_and_push_to_talk() -> None:
    clock = Clock()
    a = Activation(ActivationSettings(wake_phrases=PHRASES, follow_up_s=5), clock=clock)
    assert not a.check("what time is it").accepted
    assert a.check("hey hearth what time is it").reason == "wake_phrase"
    a.answered()
    clock.t += 3
    d = a.check("and tomorrow?")
    assert d.accepted and d.reason == "follow_up" and d.text == "and tomorrow?"
    clock.t += 10
    assert a.check("and the day after?").reason == "no_wake_phrase"
    a.trigger("board:kitchen-button")
    d = a.check("lights off")
    assert d.accepted and d.reason == "push_to_talk:board:kitchen-button"
    assert not a.check("lights on").accepted, "a trigger is good for one utterance only"
    a.trigger()
    clock.t += 60
    assert not a.check("too late").accepted, "a stale trigger expires"


def test_no_wake_phrase_needed_when_disabled() -> None:
    a = Activation(ActivationSettings(require_wake_phrase=False))
    assert a.check("what time is it").reason == "always"
    assert a.check("  ").reason == "empty"
