"""Voice control of the house: device intents → commands, spoken replies, and confirmation of sensitive actions.

Both ways into a device action end in :meth:`HomeControl.act`: the fast-path grammar and the LLM's constrained
tool call. That is where the confirmation rule lives, so nothing the LLM produces can open a garage door or a
lock without a spoken "yes" in the next turn.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edge.device_intents import CONTROLLABLE, DeviceGrammar, DeviceIntent, words
from edge.devices import CommandResult, DeviceHub
from edge.errors import LLMError
from edge.llm import ChatMessage, LanguageModel
from edge.registry import Entity, Registry

log = logging.getLogger(__name__)

_YES = re.compile(r"^(yes|yeah|yep|sure|confirm|confirmed|do it|go ahead|ok|okay)( please| do it| confirm)?$")
_NO = re.compile(r"^(no|nope|cancel|stop|don't|dont|never mind|nevermind)( thanks| thank you)?$")
_DEVICE_WORDS = re.compile(r"\b(turn|switch|open|close|shut|lock|unlock|dim|brighten|set|light|lights|lamp|fan|door|"
                           r"heater|temperature|warm|cold|dark|bright)\b")


@dataclass(frozen=True)
class HomeReply:
    text: str
    handled_by: str  # device:command | device:query | device:confirm | device:ask | device:cancelled
    result: CommandResult | None = None


@dataclass(frozen=True)
class Plan:
    """A recognised device request: the reply we expect (synthesized while the command runs) and how to run it."""

    expected: str
    run: Callable[[int | None], Awaitable[HomeReply]]


def spoken_name(e: Entity, others: list[Entity]) -> str:
    name = e.info.name.lower()
    same = [o for o in others if o.info.name.lower() == name and (o.board, o.id) != (e.board, e.id)]
    if same and e.info.area and e.info.area.lower() not in name:
        name += f" in the {e.info.area.lower()}"
    return f"the {name}"


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def describe_state(e: Entity, value: float | str | None, name: str) -> str:
    k = e.info.kind
    if value is None:
        return f"I don't know yet: {name} has not reported."
    if isinstance(value, str):
        return f"{name.capitalize()} is {value}."
    if k == "temperature":
        return f"It's {_fmt(value)} degrees in the {e.info.area.lower() or 'house'}."
    if k == "humidity":
        return f"Humidity is {_fmt(value)} percent in the {e.info.area.lower() or 'house'}."
    if k == "dimmer":
        if value <= e.info.min:
            return f"{name.capitalize()} is off."
        return f"{name.capitalize()} is at {_fmt(value)} percent."
    word = {"contact": ("closed", "open"), "cover": ("closed", "open"), "lock": ("unlocked", "locked")}.get(
        k, ("off", "on"))[1 if value else 0]
    return f"{name.capitalize()} is {word}."


class HomeControl:
    def __init__(self, hub: DeviceHub, registry: Registry, *, confirm_window_s: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.hub = hub
        self.registry = registry
        self.confirm_window_s = confirm_window_s
        self._clock = clock
        self._grammar: DeviceGrammar | None = None
        self._pending: tuple[DeviceIntent, float] | None = None
        self._tool_choices: dict[str, tuple[Entity, tuple[str, ...]]] | None = None

    def invalidate(self) -> None:
        """A board said hello (new or changed entities): rebuild the grammar on next use."""
        self._grammar = None

    def confirmation_texts(self) -> list[str]:
        """What a successful command will say, per controllable entity: worth synthesizing ahead of time."""
        out = []
        ents = self.grammar.entities
        for e in ents:
            name = spoken_name(e, ents)
            for action in CONTROLLABLE.get(e.info.kind, ()):
                if action not in ("set", "toggle"):
                    out.append(self._success_text(DeviceIntent(action, (e,)), name, None))
        return out

    @property
    def grammar(self) -> DeviceGrammar:
        if self._grammar is None:
            self._grammar = DeviceGrammar(self.registry.entities(usable_only=True))
        return self._grammar

    def prompt_words(self) -> str:
        return self.grammar.prompt_words()

    def looks_like_device_request(self, text: str) -> bool:
        """Worth offering the LLM the device tool: the grammar missed it, but it talks about the house."""
        if not self.grammar.entities:
            return False
        ws = " ".join(words(text))
        if {"don't", "dont", "not", "never"} & set(ws.split()):
            return False  # a negated request is talk, not an action: the LLM answers it without tools
        names = {w for e in self.grammar.entities for w in words(e.info.name)} | self.grammar.areas
        return bool(_DEVICE_WORDS.search(ws)) or any(w in names for w in ws.split())

    def plan(self, request: str) -> Plan | None:
        """The device request in ``request``, or None when it is not one (then the LLM answers)."""
        text = " ".join(words(request))
        if self._pending is not None:
            intent, until = self._pending
            self._pending = None
            if self._clock() <= until and _YES.match(text):
                return self._command_plan(intent, confirmed=True)
            if _NO.match(text) or _YES.match(text):
                return Plan("Okay, I won't.", _const(HomeReply("Okay, I won't.", "device:cancelled")))
        found = self.grammar.match(request)
        return None if found is None else self.plan_intent(found)

    def plan_intent(self, intent: DeviceIntent, *, confirmed: bool = False) -> Plan:
        ents = self.grammar.entities
        if intent.action == "ambiguous":
            names = [spoken_name(e, ents) for e in intent.entities[:4]]
            if len({n for n in names}) < len(names):
                names = [f"the {e.info.name.lower()} in the {e.info.area.lower()}" for e in intent.entities[:4]]
            text = f"Which one: {', '.join(names[:-1])} or {names[-1]}?"
            return Plan(text, _const(HomeReply(text, "device:ask")))
        if intent.action == "query":
            current = {(e.board, e.id): e.state for e in self.registry.entities()}  # the grammar's copy is stale
            text = " ".join(describe_state(e, current.get((e.board, e.id)), spoken_name(e, ents))
                            for e in intent.entities[:3])
            return Plan(text, _const(HomeReply(text, "device:query")))
        return self._command_plan(intent, confirmed=confirmed)

    def _command_plan(self, intent: DeviceIntent, *, confirmed: bool) -> Plan:
        e = intent.entity
        name = spoken_name(e, self.grammar.entities)
        already = self._already(intent)
        if already is not None:
            return Plan(already, _const(HomeReply(already, "device:query")))
        # Locks and doors always ask, whatever the board's profile claims: the flag comes from the board.
        if (e.info.sensitive or e.info.kind in ("lock", "cover")) and not confirmed:
            self._pending = (intent, self._clock() + self.confirm_window_s)
            verb = {"open": "open", "close": "close", "lock": "lock", "unlock": "unlock", "on": "turn on",
                    "off": "turn off", "toggle": "toggle", "set": "set"}[intent.action]
            text = f"Do you want me to {verb} {name}? Say yes to confirm."
            return Plan(text, _const(HomeReply(text, "device:confirm")))
        action, value = intent.command()
        expected = self._success_text(intent, name, value)

        async def run(turn_id: int | None) -> HomeReply:
            if value is not None and not (e.info.min <= value <= e.info.max):
                return HomeReply(f"{name.capitalize()} can only be set from {_fmt(e.info.min)} to "
                                 f"{_fmt(e.info.max)}.", "device:command")
            result = await self.hub.command(e.board, e.id, action, value, source="voice", turn_id=turn_id)
            if result.ok:
                new = result.value if isinstance(result.value, (int, float)) else value
                text = expected if action != "toggle" else describe_state(e, new, name)
                return HomeReply(text, "device:command", result)
            return HomeReply(self._failure_text(name, result), "device:command", result)

        return Plan(expected, run)

    def _already(self, intent: DeviceIntent) -> str | None:
        """A door whose contact sensor already reports the asked-for position is left alone: pulsing a garage
        opener's relay would move it the other way (the relay only knows what it was last told)."""
        e = intent.entity
        if e.info.kind != "cover" or intent.action not in ("open", "close"):
            return None
        for c in self.registry.entities():
            if (c.info.kind == "contact" and c.info.name.lower() == e.info.name.lower()
                    and c.info.area.lower() == e.info.area.lower() and isinstance(c.state, (int, float))):
                is_open = bool(c.state)
                if is_open == (intent.action == "open"):
                    return f"{spoken_name(e, self.grammar.entities).capitalize()} is already " \
                           f"{'open' if is_open else 'closed'}."
        return None

    def _success_text(self, intent: DeviceIntent, name: str, value: float | None) -> str:
        n = name.capitalize()
        return {
            "on": f"{n} is on.", "off": f"{n} is off.", "open": f"{n} is opening.", "close": f"{n} is closing.",
            "lock": f"{n} is locked.", "unlock": f"{n} is unlocked.", "toggle": f"{n} is switched.",
        }.get(intent.action, f"{n} is at {_fmt(value or 0)} percent.")

    @staticmethod
    def _failure_text(name: str, r: CommandResult) -> str:
        if r.error in ("timeout", "offline"):
            return f"{name.capitalize()} is not responding."
        if r.error == "quarantined":
            return f"{name.capitalize()} is on a board that is not set up yet: provision it first."
        return f"{name.capitalize()} refused that ({r.error.replace('_', ' ')})."

    # --- the LLM's tool ----------------------------------------------------------------------------------------

    def tool_choices(self) -> dict[str, tuple[Entity, tuple[str, ...]]]:
        """key -> (entity, allowed actions) for every controllable or readable entity: the grammar's alphabet."""
        out: dict[str, tuple[Entity, tuple[str, ...]]] = {}
        for e in self.grammar.entities:
            acts = CONTROLLABLE.get(e.info.kind, ())
            acts = (*(a for a in acts if a != "set"), "query")
            if e.info.kind in ("button", "status_led"):
                continue
            key = e.id if e.id not in out else f"{e.id}_{e.board[-4:]}"
            out[key] = (e, acts)
        return out

    def ask_llm(self, llm: LanguageModel, request: str) -> tuple[str, str]:
        """(device key, action) chosen by the LLM under :func:`tool_grammar`; ("none", "") when it declines.

        The choices are kept for :meth:`plan_tool_call`, so a board's hello in between cannot re-map a key.
        """
        choices = self._tool_choices = self.tool_choices()
        lines = [f"- {k}: {e.info.name} ({e.info.area}), actions: {', '.join(a)}" for k, (e, a) in choices.items()]
        system = ("You turn a request into a device action. Devices:\n" + "\n".join(lines) +
                  '\nAnswer with JSON {"device": ..., "action": ...}, or {"device": "none"} if the request is not '
                  "about one of these devices.")
        text = llm.constrained([ChatMessage("system", system), ChatMessage("user", request)], tool_grammar(choices))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:  # only possible if generation stopped at max_tokens
            raise LLMError(f"the tool call was cut short: {text[:80]!r}") from exc
        return str(data.get("device", "none")), str(data.get("action", ""))

    def plan_tool_call(self, key: str, action: str) -> Plan | None:
        """A call the LLM produced under the constrained grammar; re-checked here all the same."""
        choice = (self._tool_choices or self.tool_choices()).get(key)
        if choice is None or action not in choice[1]:
            log.warning("LLM tool call %s.%s is not allowed; ignored", key, action)
            return None
        return self.plan_intent(DeviceIntent(action, (choice[0],)))


def tool_grammar(choices: dict[str, tuple[Entity, tuple[str, ...]]]) -> str:
    """GBNF for ``{"device": KEY, "action": ACTION}`` over exactly the allowed pairs, or ``{"device": "none"}``."""
    alts = []
    for key, (_e, acts) in choices.items():
        acts_alt = " | ".join(f'"{a}"' for a in acts)
        alts.append(f'"{key}\\", \\"action\\": \\"" ({acts_alt})')
    call = " | ".join(alts) if alts else '"none"'
    return (f'root ::= "{{\\"device\\": \\"" ( "none\\"}}" | ( {call} ) "\\"}}" )\n')


def _const(reply: HomeReply) -> Callable[[int | None], Awaitable[HomeReply]]:
    async def run(turn_id: int | None) -> HomeReply:
        return reply

    return run
