"""Rule intents answered without the LLM: fast, exact, and right where a 135M model would guess.

The clock is the obvious case (a small LLM confidently invents the time). Device commands join this fast path
in the boards issue, with a grammar generated from the device registry.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from edge.stt import normalize


@dataclass(frozen=True)
class IntentReply:
    intent: str
    text: str  # "" means: say nothing (the user cancelled)


def _time(now: dt.datetime) -> str:
    hour = now.hour % 12 or 12
    return f"It's {hour}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'}."


def _date(now: dt.datetime) -> str:
    return f"Today is {now:%A}, {now:%B} {now.day}, {now.year}."


_RULES: list[tuple[str, re.Pattern[str], Callable[[dt.datetime], str]]] = [
    ("time", re.compile(r"^(what|whats|what's) (is )?(the )?time( is it)?( now)?$|^what time is it( now)?$"
                        r"|^(tell me|do you know) (the time|what time it is)$"), _time),
    ("date", re.compile(r"^(what|whats|what's) (is )?(the |today's |todays )?(date|day)( is it)?( today)?$"
                        r"|^what day is (it|today)$|^(tell me )?(today's|todays|the) date$"), _date),
    ("thanks", re.compile(r"^(thank you|thanks)( very much| so much)?( hearth)?$"), lambda _: "You're welcome."),
    ("cancel", re.compile(r"^(never mind|nevermind|cancel|stop|forget it|nothing)$"), lambda _: ""),
]


def match(request: str, now: dt.datetime | None = None) -> IntentReply | None:
    text = normalize(request).replace("what's", "whats")
    for name, pattern, reply in _RULES:
        if pattern.match(text):
            return IntentReply(name, reply(now or dt.datetime.now()))
    return None
