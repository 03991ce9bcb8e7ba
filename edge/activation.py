"""Who gets an answer: wake phrase (checked on the transcript), push-to-talk, follow-up window.

Checking the wake phrase on the whisper transcript needs no extra model. The match is fuzzy because tiny.en
hears "hey hearth" as "hey harth", "a hearth", "hey heart". Triggers (keyboard push-to-talk today, a board
button later) call :meth:`Activation.trigger` from any thread; the next utterance is then accepted without a
wake phrase.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.settings import ActivationSettings
from edge.stt import normalize

_MATCH_RATIO = 0.75
_TRIGGER_TTL_S = 15.0  # a push-to-talk press is good for the next utterance within this time


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reason: str  # "wake_phrase" | "follow_up" | "push_to_talk:<source>" | "always" | "no_wake_phrase" | "empty"
    text: str  # the request with the wake phrase removed


def strip_wake_phrase(transcript: str, phrases: tuple[str, ...]) -> str | None:
    """The request after the wake phrase, or None if the transcript does not start with one."""
    words = normalize(transcript).split()
    raw_words = transcript.split()
    best: tuple[float, int] = (0.0, 0)
    for phrase in phrases:
        n = len(phrase.split())
        for extra in (0, 1, -1):  # whisper may split/merge a word ("hey hearth" -> "hay her th")
            k = n + extra
            if k <= 0 or k > len(words):
                continue
            ratio = difflib.SequenceMatcher(None, " ".join(words[:k]), phrase.lower()).ratio()
            if ratio > best[0]:
                best = (ratio, k)
    if best[0] < _MATCH_RATIO:
        return None
    # Drop the same number of words from the original text to keep its punctuation/case.
    rest = " ".join(raw_words[best[1]:]).lstrip(" ,.!?;:-")
    return rest


class Activation:
    def __init__(self, settings: ActivationSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._follow_up_until = 0.0
        self._trigger: tuple[str, float] | None = None

    def trigger(self, source: str = "keyboard") -> None:
        """Push-to-talk: accept the next utterance without a wake phrase. Thread-safe."""
        with self._lock:
            self._trigger = (source, self._clock())

    def answered(self) -> None:
        """An answer was just given: open the follow-up window."""
        with self._lock:
            self._follow_up_until = self._clock() + self.settings.follow_up_s

    def check(self, transcript: str) -> Decision:
        if not normalize(transcript):
            return Decision(False, "empty", "")
        now = self._clock()
        with self._lock:
            trig, self._trigger = self._trigger, None
            follow_up = now < self._follow_up_until
        rest = strip_wake_phrase(transcript, self.settings.wake_phrases)
        if rest is not None:
            # "hey hearth" alone: accept and answer with a prompt to go on (the caller decides what to say)
            return Decision(True, "wake_phrase", rest)
        if trig is not None and now - trig[1] <= _TRIGGER_TTL_S:
            return Decision(True, f"push_to_talk:{trig[0]}", transcript.strip())
        if not self.settings.require_wake_phrase:
            return Decision(True, "always", transcript.strip())
        if follow_up:
            return Decision(True, "follow_up", transcript.strip())
        return Decision(False, "no_wake_phrase", transcript.strip())
