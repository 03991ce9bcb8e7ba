"""Fast path for device commands and state questions: a grammar generated from the registry, no LLM.

The vocabulary (entity names, synonyms from the board profiles, areas) comes from the registry, so a new
board is understood as soon as it says hello. Matching is fuzzy per word because tiny.en slips ("kitchen
lite", "bed room"); an area that the sentence names but the entity is not in rules that entity out, and two
equally good candidates make the assistant ask instead of guess.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass

from edge.registry import Entity

_WORD_RATIO = 0.75
_MIN_SCORE = 0.72
_FILLER = {"the", "a", "an", "please", "can", "could", "would", "you", "my", "in", "on", "of", "to", "at", "for",
           "it", "is", "are", "me", "i", "want", "now", "right", "just", "and", "hey", "hearth", "up", "down",
           "turn", "switch", "set", "put", "make", "go", "let", "lets", "be"}
_UNITS = {"percent", "degrees", "degree", "celsius", "c", "per", "cent"}
_SMALL = {w: i for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"))}
_TENS = {w: 10 * (i + 2) for i, w in enumerate(("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                                                  "ninety"))}
_QUESTION_START = ("is ", "are ", "was ", "what ", "whats ", "how ", "which ", "tell me", "check ", "do you know")
_NEGATION = {"don't", "dont", "not", "never", "no", "without"}
_LATER = re.compile(r"\b\d+(\.\d+)? (minutes?|mins?|seconds?|secs?|hours?)\b|\b(tomorrow|tonight|later|when|until|"
                    r"after|before|every)\b")
# Words that say what to do or ask, not which device: they never count as an unexplained word.
_VERBS = {"off", "on", "open", "close", "shut", "lock", "unlock", "toggle", "dim", "brighten", "start", "stop", "kill",
          "enable", "disable", "activate", "deactivate", "raise", "lower", "whats", "what", "how", "is", "are", "was",
          "which", "tell", "check", "know", "do", "temperature", "warm", "hot", "cold", "humidity", "humid",
          "degrees", "there", "this", "that", "state", "status", "currently", "again", "all", "bit", "little",
          "locked", "unlocked", "opened", "closed", "open?", "still", "its", "it's", "please"}
_UNEXPLAINED_PENALTY = 0.3
CONTROLLABLE = {"switch": ("on", "off", "toggle", "set"), "dimmer": ("on", "off", "toggle", "set"),
                "cover": ("open", "close"), "lock": ("lock", "unlock")}


@dataclass(frozen=True)
class DeviceIntent:
    """What the sentence asks: an ``action`` on ``entity`` (``value`` for set), a ``query``, or ``ambiguous``."""

    action: str  # on | off | toggle | set | open | close | lock | unlock | query | ambiguous
    entities: tuple[Entity, ...]
    value: float | None = None
    score: float = 0.0

    @property
    def entity(self) -> Entity:
        return self.entities[0]

    def command(self) -> tuple[str, float | None]:
        """The protocol action and value for this intent (docs/protocol.md)."""
        e = self.entity.info
        if self.action == "toggle":
            return "toggle", None
        value = {"on": e.max, "off": e.min, "open": 1, "close": 0, "lock": 1, "unlock": 0}.get(self.action, self.value)
        return "set", value


def words(text: str) -> list[str]:
    """Lower-case words with number words turned into digits ("twenty one" -> "21", "40%" -> "40 percent")."""
    text = text.lower().replace("%", " percent").replace("what's", "whats").replace("-", " ")
    raw = re.findall(r"\d+(?:\.\d+)?|[a-z']+", text)
    out: list[str] = []
    i = 0
    while i < len(raw):
        w = raw[i].strip("'")
        if w in _TENS:
            n = _TENS[w]
            if i + 1 < len(raw) and raw[i + 1] in _SMALL and 0 < _SMALL[raw[i + 1]] < 10:
                n += _SMALL[raw[i + 1]]
                i += 1
            out.append(str(n))
        elif w in _SMALL and w not in ("one",):  # "one" is too often "the one in the kitchen"
            out.append(str(_SMALL[w]))
        elif w == "hundred":
            if out and out[-1].isdigit():
                out[-1] = str(int(out[-1]) * 100)
            elif out and out[-1] in ("a", "one"):
                out[-1] = "100"
            else:
                out.append("100")
        elif w == "half":
            out.append("50")
        elif w:
            out.append(w)
        i += 1
    return out


def _sound(w: str) -> str:
    """A crude spelling-independent key: whisper writes what it heard ("lite", "fann", "garaje")."""
    for a, b in (("ght", "t"), ("ph", "f"), ("ck", "k"), ("j", "g"), ("z", "s")):
        w = w.replace(a, b)
    w = re.sub(r"(.)\1+", r"\1", w)
    return w[:-1] if len(w) > 3 and w.endswith("e") else w


def _similar(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if abs(len(a) - len(b)) > 3:
        return 0.0
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    sa, sb = _sound(a), _sound(b)
    return max(ratio, 0.95 if sa == sb else difflib.SequenceMatcher(None, sa, sb).ratio() * 0.95)


def _phrase_score(phrase: list[str], text: list[str], optional: frozenset[str] = frozenset()) -> float:
    """Mean best per-word similarity of ``phrase`` inside ``text``; 0 if a required word is missing.

    ``optional`` words (the entity's own area in its name: "kitchen" in "kitchen light") may be left out, so
    "the light" still finds every light and the caller can ask which one.
    """
    total, n = 0.0, 0
    for p in phrase:
        best = max((_similar(p, t) for t in text), default=0.0)
        if best < _WORD_RATIO:
            if p in optional:
                continue
            return 0.0
        total += best
        n += 1
    return total / n if n else 0.0


def _value(ws: list[str]) -> float | None:
    """The number the sentence sets something *to* ("to 40", "40 percent"), not any number in it."""
    found = None
    for i, w in enumerate(ws):
        if not re.fullmatch(r"\d+(?:\.\d+)?", w):
            continue
        prev = ws[i - 1] if i else ""
        nxt = ws[i + 1] if i + 1 < len(ws) else ""
        if prev in ("to", "at") or nxt in ("percent", "degrees", "degree", "per"):
            found = float(w)
    return found


def _action(ws: list[str], joined: str) -> tuple[str, float | None]:
    value = _value(ws)
    if "unlock" in ws:
        return "unlock", None
    if "lock" in ws:
        return "lock", None
    if "toggle" in ws:
        return "toggle", None
    if value is not None and re.search(r"\b(set|dim|brighten|turn|put|make|to)\b", joined):
        return "set", value
    if "dim" in ws:
        return "set", 30.0
    if "brighten" in ws:
        return "set", 100.0
    if re.search(r"\b(off|stop|kill|disable|deactivate)\b", joined) or re.search(r"\bshut (off|down)\b", joined):
        return "off", None
    if "open" in ws or "raise" in ws:
        return "open", None
    if "close" in ws or "shut" in ws or "lower" in ws:
        return "close", None
    if re.search(r"\b(on|start|enable|activate)\b", joined):
        return "on", None
    return "", None


def _after_in(ws: list[str], w: str) -> bool:
    i = ws.index(w)
    return (i >= 1 and ws[i - 1] == "in") or (i >= 2 and ws[i - 2] == "in" and ws[i - 1] in ("the", "my"))


class DeviceGrammar:
    """Built from the registry's usable entities; rebuild it when a board says hello."""

    def __init__(self, entities: list[Entity]) -> None:
        self.entities = entities
        self.areas = {a for e in entities for a in [e.info.area.lower()] if a}
        self._phrases: list[tuple[Entity, list[str]]] = []
        for e in entities:
            for name in (e.info.name, *e.synonyms):
                ws = [w for w in words(name) if w not in _FILLER]
                if ws:
                    self._phrases.append((e, ws))

    def prompt_words(self) -> str:
        """Device names for whisper's prompt, as one lower-case sentence.

        A title-cased comma list ("Bedroom light, Fan, ...") made tiny.en continue the list: repeated
        phrases, temperature fallbacks and 1.3 s instead of 0.26 s per command (docs/benchmarks.md).
        """
        names = sorted({e.info.name.lower() for e in self.entities
                        if e.info.kind not in ("button", "status_led")})
        return f"Devices: {'; '.join(names)}." if names else ""

    def match(self, text: str) -> DeviceIntent | None:
        ws = words(text)
        if not ws or not self.entities:
            return None
        if _NEGATION & set(ws) or _LATER.search(" ".join(ws)):
            return None  # "don't turn off the fan", "turn it off in 5 minutes": not a command to run now
        joined = " ".join(ws)
        if joined.startswith(_QUESTION_START) or (joined.endswith(" on") and joined.startswith(("is", "are"))):
            return self._query(ws, joined)
        action, value = _action(ws, joined)
        if not action:
            return None
        kinds = {k for k, acts in CONTROLLABLE.items() if action in acts}
        return self._pick(ws, kinds, action, value)

    def _query(self, ws: list[str], joined: str) -> DeviceIntent | None:
        if re.search(r"\b(temperature|warm|hot|cold|degrees)\b", joined):
            kinds = {"temperature"}
        elif re.search(r"\b(humidity|humid)\b", joined):
            kinds = {"humidity"}
        else:
            kinds = {"switch", "dimmer", "cover", "lock", "contact"}
        intent = self._pick(ws, kinds, "query", None, allow_many=kinds <= {"temperature", "humidity"})
        return intent

    def _scored(self, ws: list[str], kinds: set[str]) -> list[tuple[float, Entity]]:
        base = [w for w in ws if w not in _FILLER and w not in _UNITS and not w[0].isdigit()]
        pairs = [(a, b, a + b) for a, b in itertools.pairwise(base)]
        content = base + [ab for _, _, ab in pairs]  # "bed room" -> "bedroom"
        named_areas = {a for a in self.areas if _phrase_score(a.split(), content) >= 0.85}
        area_words = {w for a in self.areas for w in a.split()}
        best: dict[tuple[str, str], tuple[float, Entity]] = {}
        for e, phrase in self._phrases:
            if e.info.kind not in kinds:
                continue
            s = _phrase_score(phrase, content, frozenset(e.info.area.lower().split()))
            if s == 0.0:
                continue
            # "turn on the porch light" must not find the kitchen light: every word has to be explained by
            # the entity's name, an area, or the action/question vocabulary.
            known = set(phrase) | area_words
            explained = {w for w in base if w in _VERBS or any(_similar(w, k) >= _WORD_RATIO for k in known)}
            explained |= {w for a, b, ab in pairs for w in (a, b) if any(_similar(ab, k) >= _WORD_RATIO for k in known)}
            unexplained = set(base) - explained
            # A word in the area slot ("in the madroom") is most likely a misheard area, and a known area
            # would already have ruled other rooms out; a word in the name ("porch light") is a different device.
            slot = {w for w in unexplained if _after_in(ws, w)}
            s -= _UNEXPLAINED_PENALTY * len(unexplained - slot) + 0.1 * len(slot)
            area = e.info.area.lower()
            if named_areas:
                if area in named_areas:
                    s += 0.3
                elif not any(a in " ".join(phrase) for a in named_areas):
                    continue  # "the bedroom light" is never the kitchen light
            key = (e.board, e.id)
            if s > best.get(key, (0.0, e))[0]:
                best[key] = (s, e)
        sensors_only = kinds <= {"temperature", "humidity"}
        if not best and named_areas and sensors_only:  # "the temperature in the kitchen": the area names it
            for e in self.entities:
                if e.info.kind in kinds and e.info.area.lower() in named_areas:
                    best[(e.board, e.id)] = (1.0, e)
        if not best and sensors_only and not named_areas:  # "what's the temperature": every sensor answers
            for e in self.entities:
                if e.info.kind in kinds:
                    best[(e.board, e.id)] = (_MIN_SCORE, e)
        return sorted(best.values(), key=lambda se: -se[0])

    def _pick(self, ws: list[str], kinds: set[str], action: str, value: float | None, *,
              allow_many: bool = False) -> DeviceIntent | None:
        scored = [(s, e) for s, e in self._scored(ws, kinds) if s >= _MIN_SCORE]
        if not scored:
            return None
        top = scored[0][0]
        tied = tuple(e for s, e in scored if top - s < 0.05)
        if action == "query" and len(tied) > 1:
            # "is the garage door open": the contact sensor knows; the door's relay only knows what it was told
            sensed = tuple(e for e in tied if e.info.kind == "contact")
            same_thing = len({(e.info.name.lower(), e.info.area.lower()) for e in tied}) == 1
            if same_thing and sensed:
                tied = sensed[:1]
        if len(tied) > 1 and not allow_many:
            return DeviceIntent("ambiguous", tied, score=top)
        return DeviceIntent(action, tied if allow_many else tied[:1], value, score=top)
