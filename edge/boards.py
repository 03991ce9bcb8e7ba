"""Board profiles: one TOML file per kind of board, validated here before anything is built or flashed.

A profile is the single description of a board's hardware. The firmware and the simulator get it as the
*entity spec* text of docs/protocol.md (one parser in the C++ core), the agent's voice grammar gets the names
and synonyms, and people get a wiring table. Validation is strict and early because a wrong pin found on the
bench costs a reflash (or a board that does not boot), while a wrong pin found here costs one error message.
Chip GPIO facts live in ``edge.board_pins``, rendering (header, wiring, README) in ``edge.board_render``;
``python -m edge.boards`` is the CLI.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.board_pins import CHIPS, Chip
from edge.board_pins import check_pin as _check_pin
from edge.errors import BoardProfileError
from edge.protocol import EntityInfo

BOARDS_DIR: Path = Path(__file__).resolve().parent.parent / "hardware" / "boards"
MAX_ENTITIES = 15  # EntityTable holds 16, and the firmware adds the status LED as entity "status_led"
MAX_NAME, MAX_AREA = 48, 32  # bytes; the firmware's Entity struct has fixed-size fields
MAX_MESSAGE = 1024  # protocol limit for one message, including the hello that lists every entity
HELLO_RESERVE = 40  # room for a long fw version string in hello
STATUS_LED_ENTITY = {"id": "status_led", "kind": "status_led", "name": "Status LED", "area": "", "unit": "",
                     "min": 0, "max": 1}  # about what the firmware announces for status_led=PIN

ENTITY_ID = re.compile(r"[a-z0-9_]{1,24}")
PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SYNONYM = re.compile(r"[a-z0-9][a-z0-9 '-]{0,39}")


@dataclass(frozen=True)
class Kind:
    drivers: tuple[str, ...]  # the first is the default
    output: bool  # accepts set/toggle commands
    lo: float
    hi: float
    unit: str
    ranged: bool = False  # min/max may be narrowed in the profile (dimmers, sensors)


KINDS: dict[str, Kind] = {
    "switch": Kind(("gpio",), True, 0, 1, ""),
    "dimmer": Kind(("pwm",), True, 0, 100, "%", ranged=True),
    "lock": Kind(("gpio",), True, 0, 1, ""),
    "cover": Kind(("gpio",), True, 0, 1, ""),
    "button": Kind(("gpio",), False, 0, 1, ""),
    "contact": Kind(("gpio",), False, 0, 1, ""),
    "temperature": Kind(("dht22", "bme280"), False, -40, 80, "C", ranged=True),
    "humidity": Kind(("dht22", "bme280"), False, 0, 100, "%", ranged=True),
    "status_led": Kind(("led",), True, 0, 1, ""),
}
DRIVERS = ("gpio", "pwm", "dht22", "bme280", "led")
SENSITIVE_BY_DEFAULT = frozenset({"lock", "cover"})
SHARED_BUS = frozenset({"dht22", "bme280"})  # one device, several entities on the same pin(s)
DRIVES_PIN = frozenset({"pwm", "dht22", "bme280", "led"})  # needs an output-capable pin whatever the kind

BOARD_KEYS = ("profile", "title", "chip", "pio_env", "status_led")
ENTITY_KEYS = ("id", "kind", "name", "area", "pin", "pin2", "drv", "unit", "min", "max", "inverted", "sensitive",
               "ptt", "synonyms")


@dataclass(frozen=True)
class Entity:
    id: str
    kind: str
    name: str
    area: str
    pin: int
    drv: str
    unit: str
    min: float
    max: float
    pin2: int | None = None
    inverted: bool = False
    sensitive: bool = False
    ptt: bool = False
    synonyms: tuple[str, ...] = ()

    @property
    def pins(self) -> tuple[int, ...]:
        return (self.pin,) if self.pin2 is None else (self.pin, self.pin2)

    def spec_line(self) -> str:
        """Every key written out, so the firmware's defaults never decide what a profile means."""
        parts = [("id", self.id), ("kind", self.kind), ("name", self.name), ("area", self.area), ("unit", self.unit),
                 ("min", _num(self.min)), ("max", _num(self.max)), ("pin", str(self.pin))]
        if self.pin2 is not None:
            parts.append(("pin2", str(self.pin2)))
        parts += [("drv", self.drv), ("sens", _flag(self.sensitive)), ("ptt", _flag(self.ptt)),
                  ("inv", _flag(self.inverted))]
        return ";".join(f"{k}={v}" for k, v in parts)

    def descriptor(self) -> dict[str, Any]:
        """The entity as the firmware announces it in ``hello.entities`` (used to check the 1024-byte limit)."""
        return EntityInfo(id=self.id, kind=self.kind, name=self.name, area=self.area, unit=self.unit, min=self.min,
                          max=self.max, sensitive=self.sensitive, ptt=self.ptt).to_wire()


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    chip: str
    pio_env: str
    status_led: int
    entities: tuple[Entity, ...]
    source: Path | None = None
    warnings: tuple[str, ...] = ()  # usable but risky pins (strapping, PSRAM): shown in the wiring notes

    def entity(self, entity_id: str) -> Entity:
        for e in self.entities:
            if e.id == entity_id:
                return e
        raise KeyError(entity_id)

    def to_spec(self) -> str:
        """The entity spec of docs/protocol.md: what EntityTable::load parses in firmware and simulator."""
        src = self.source.name if self.source else f"{self.name}.toml"
        lines = [f"# Hearth entity spec, generated by edge.boards from {src}: edit the profile, not this",
                 f"profile={self.name}", f"status_led={self.status_led}"]
        lines += [e.spec_line() for e in self.entities]
        return "\n".join(lines) + "\n"

    def to_header(self) -> str:
        from edge.board_render import header

        return header(self)

    def wiring_markdown(self) -> str:
        from edge.board_render import wiring_markdown

        return wiring_markdown(self)

    def hello_size(self) -> int:
        """Bytes of this board's hello (with its status LED entity) and a short fw string; see HELLO_RESERVE."""
        hello = {"v": 1, "t": "hello", "board": "a1b2c3d4e5f6", "fw": "0.0.0", "profile": self.name,
                 "boot": 4294967295, "entities": [*(e.descriptor() for e in self.entities), STATUS_LED_ENTITY]}
        return len(json.dumps(hello, separators=(",", ":"), ensure_ascii=False).encode())


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _flag(b: bool) -> str:
    return "1" if b else "0"


# ---------------------------------------------------------------------------------------------- loading


def list_profiles(directory: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the profiles in ``directory`` (default: the bundled hardware/boards), sorted."""
    d = Path(directory) if directory is not None else BOARDS_DIR
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def profile_path(path_or_name: str | os.PathLike[str], directory: str | os.PathLike[str] | None = None) -> Path:
    s = os.fspath(path_or_name)
    p = Path(s)
    if p.suffix == ".toml" or os.sep in s or "/" in s or p.is_file():
        return p
    return (Path(directory) if directory is not None else BOARDS_DIR) / f"{s}.toml"


def load_profile(path_or_name: str | os.PathLike[str], directory: str | os.PathLike[str] | None = None) -> Profile:
    """Load and validate a profile given as a file path or a bundled profile name (``relay-board``)."""
    p = profile_path(path_or_name, directory)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(list_profiles(directory if directory is not None else p.parent)) or "none"
        raise BoardProfileError(
            f"board profile {p} does not exist; profiles in {p.parent}: {known} (format: hardware/README.md)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BoardProfileError(f"cannot read board profile {p}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BoardProfileError(f"{p} is not valid TOML: {exc}; compare with hardware/boards/relay-board.toml") from exc
    try:
        profile = profile_from_dict(data, source=p)
    except BoardProfileError as exc:
        raise BoardProfileError(f"{p}: {exc}") from None
    if profile.name != p.stem:
        raise BoardProfileError(f"{p}: [board] profile = {profile.name!r} must match the file name {p.stem!r}")
    return profile


class _Table:
    """Typed access to one TOML table; every error names the table and the key."""

    def __init__(self, where: str, data: Any, keys: tuple[str, ...]) -> None:
        if not isinstance(data, dict):
            raise BoardProfileError(f"{where} must be a table, got {data!r}")
        unknown = sorted(set(data) - set(keys))
        if unknown:
            raise BoardProfileError(f"{where}: unknown key {unknown[0]!r}; valid keys are: {', '.join(keys)}")
        self.where, self.data = where, data

    def has(self, key: str) -> bool:
        return key in self.data

    def fail(self, key: str, problem: str) -> BoardProfileError:
        return BoardProfileError(f"{self.where} {key}: {problem}")

    def text(self, key: str, default: str | None = None) -> str:
        v = self.data.get(key, default)
        if v is None:
            raise self.fail(key, f'is required (e.g. {key} = "...")')
        if not isinstance(v, str):
            raise self.fail(key, f"must be a string in quotes, got {v!r}")
        if any(c in v for c in ";=\n\r\0"):
            raise self.fail(key, f"{v!r} must not contain ';', '=' or a line break (they delimit the entity spec)")
        return v.strip()

    def integer(self, key: str, default: int | None = None) -> int:
        v = self.data.get(key, default)
        if v is None:
            raise self.fail(key, f"is required (a GPIO number, e.g. {key} = 4)")
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(key, f"must be a whole number, got {v!r}")
        return v

    def number(self, key: str, default: float) -> float:
        v = self.data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(key, f"must be a number, got {v!r}")
        return float(v)

    def flag(self, key: str, default: bool) -> bool:
        v = self.data.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(key, f"must be true or false, got {v!r}")
        return v

    def strings(self, key: str) -> tuple[str, ...]:
        v = self.data.get(key, [])
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise self.fail(key, f'must be a list of strings, e.g. ["lamp", "ceiling light"], got {v!r}')
        return tuple(" ".join(s.lower().split()) for s in v)


def _entity(chip: Chip, t: _Table) -> Entity:
    kind_name = t.text("kind")
    kind = KINDS.get(kind_name)
    if kind is None:
        raise t.fail("kind", f"unknown kind {kind_name!r}; valid kinds: {', '.join(KINDS)}")
    if kind_name == "status_led":
        raise t.fail("kind", "the status LED is declared once as [board] status_led = PIN, not as an [[entity]]")
    eid = t.text("id")
    if not ENTITY_ID.fullmatch(eid):
        raise t.fail("id", f"{eid!r} must be 1-24 characters of a-z, 0-9 and _ (it is used in MQTT topics)")
    if eid == "status_led":
        raise t.fail("id", "'status_led' is the id the firmware gives the [board] status_led; choose another")
    name = t.text("name")
    if not name:
        raise t.fail("name", "must not be empty: it is what people say to the assistant")
    if len(name.encode()) > MAX_NAME:
        raise t.fail("name", f"{name!r} is longer than the firmware's {MAX_NAME} bytes")
    drv = t.text("drv", kind.drivers[0])
    if drv not in kind.drivers:
        hint = f"one of {', '.join(kind.drivers)}" if drv in DRIVERS else f"a driver ({', '.join(DRIVERS)})"
        raise t.fail("drv", f"{drv!r} cannot drive a {kind_name}; use {hint}")
    unit = t.text("unit", kind.unit)
    if unit != kind.unit:
        raise t.fail("unit", f"a {kind_name} reports in {kind.unit or 'no unit'!r}, got {unit!r}")
    if not kind.ranged and (t.has("min") or t.has("max")):
        raise t.fail("min" if t.has("min") else "max", f"a {kind_name} is always 0..1; min/max apply to "
                     "dimmers and sensors only")
    lo, hi = t.number("min", kind.lo), t.number("max", kind.hi)
    if not lo < hi:
        raise t.fail("min", f"min ({_num(lo)}) must be below max ({_num(hi)})")
    if kind_name in ("dimmer", "humidity") and (lo < 0 or hi > 100):
        raise t.fail("max" if hi > 100 else "min", f"a {kind_name} is a percentage: min/max must lie in 0..100")
    pin = t.integer("pin")
    pin2: int | None = None
    if drv == "bme280":
        pin2 = t.integer("pin2")  # SCL; pin is SDA
        if pin2 == pin:
            raise t.fail("pin2", "SCL (pin2) must differ from SDA (pin)")
    elif t.has("pin2"):
        raise t.fail("pin2", f"only the bme280 driver uses a second pin (I2C SCL), not {drv}")
    output = kind.output or drv in DRIVES_PIN
    _check_pin(chip, pin, f"{t.where} pin", output=output)
    if pin2 is not None:
        _check_pin(chip, pin2, f"{t.where} pin2", output=True)
    if t.has("inverted") and drv in SHARED_BUS:
        raise t.fail("inverted", f"means nothing for a {drv} sensor (it only flips gpio/pwm levels)")
    if t.has("sensitive") and not kind.output:
        raise t.fail("sensitive", f"applies to outputs only; a {kind_name} cannot be commanded")
    if t.has("ptt") and kind_name != "button":
        raise t.fail("ptt", "push-to-talk applies to buttons only")
    area = t.text("area", "").lower()
    if len(area.encode()) > MAX_AREA:
        raise t.fail("area", f"{area!r} is longer than the firmware's {MAX_AREA} bytes")
    synonyms = t.strings("synonyms")
    for s in synonyms:
        if not SYNONYM.fullmatch(s):
            raise t.fail("synonyms", f"{s!r} must be 1-40 characters of a-z, 0-9, space, ' and - (spoken words)")
    return Entity(
        id=eid, kind=kind_name, name=name, area=area, pin=pin, pin2=pin2, drv=drv, unit=unit,
        min=lo, max=hi, inverted=t.flag("inverted", False),
        sensitive=t.flag("sensitive", kind_name in SENSITIVE_BY_DEFAULT), ptt=t.flag("ptt", False),
        synonyms=synonyms,
    )


def _check_board(chip: Chip, status_led: int, entities: list[Entity]) -> list[str]:
    """Cross-entity rules: unique ids/names/synonyms/pins. Returns warnings for risky-but-legal pins."""
    ids: dict[str, int] = {}
    spoken: dict[str, str] = {}
    pins: dict[int, tuple[str, Entity | None]] = {status_led: ("[board] status_led", None)}
    for i, e in enumerate(entities, 1):
        where = f"[[entity]] {i} ({e.id})"
        if e.id in ids:
            raise BoardProfileError(f"{where} id: {e.id!r} is already used by [[entity]] {ids[e.id]}; "
                                    "ids must be unique")
        ids[e.id] = i
        for word, key in [(e.name.lower(), "name"), *((s, "synonyms") for s in e.synonyms)]:
            owner = spoken.get(word)
            if owner is not None and owner != e.id:
                raise BoardProfileError(f"{where} {key}: {word!r} is already the name or a synonym of {owner!r}; "
                                        "the assistant could not tell them apart")
            spoken[word] = e.id
        for key, pin in zip(("pin", "pin2"), e.pins, strict=False):
            if pin in pins:
                other_where, other = pins[pin]
                shared = other is not None and e.drv in SHARED_BUS and other.drv == e.drv and other.pins == e.pins
                if not shared:
                    raise BoardProfileError(f"{where} {key}: GPIO{pin} is already used by {other_where}; "
                                            "every device needs its own pin (only one sensor's readings share)")
            else:
                pins[pin] = (where, e)
    warnings = []
    for pin, (_, user) in sorted(pins.items()):
        if user is None:
            continue  # the status LED: on dev boards it sits on a strapping pin by design
        if pin in chip.caution and user.kind != "button":
            warnings.append(f"GPIO{pin} ({user.id}): {chip.caution[pin]}")
        if pin in chip.no_pullup and user.kind in ("button", "contact"):
            warnings.append(f"GPIO{pin} ({user.id}): has no internal pull-up on {chip.name}; "
                            "add a 10k resistor to 3.3 V")
    return warnings


def profile_from_dict(data: dict[str, Any], source: Path | None = None) -> Profile:
    """Validate parsed TOML. Errors name the table and key (``[[entity]] 2 (fan) pin: ...``)."""
    unknown = sorted(set(data) - {"board", "entity"})
    if unknown:
        raise BoardProfileError(f"unknown table [{unknown[0]}]; a profile has one [board] and [[entity]] tables")
    if "board" not in data:
        raise BoardProfileError("missing [board] table (profile, title, chip, pio_env, status_led)")
    b = _Table("[board]", data["board"], BOARD_KEYS)
    name = b.text("profile")
    if not PROFILE_NAME.fullmatch(name):
        raise b.fail("profile", f"{name!r} must be 1-32 characters of a-z, 0-9 and - (it names files and envs)")
    chip_name = b.text("chip")
    chip = CHIPS.get(chip_name)
    if chip is None:
        raise b.fail("chip", f"unknown chip {chip_name!r}; supported: {', '.join(CHIPS)}")
    status_led = b.integer("status_led")
    _check_pin(chip, status_led, "[board] status_led", output=True)
    raw = data.get("entity", [])
    if not isinstance(raw, list) or not raw:
        raise BoardProfileError("a profile needs at least one [[entity]] table")
    if len(raw) > MAX_ENTITIES:
        raise BoardProfileError(f"{len(raw)} entities; the firmware holds at most {MAX_ENTITIES} per board "
                                "(16 with the status LED)")
    entities = []
    for i, item in enumerate(raw, 1):
        label = item.get("id") if isinstance(item, dict) else None
        where = f"[[entity]] {i}" + (f" ({label})" if isinstance(label, str) else "")
        entities.append(_entity(chip, _Table(where, item, ENTITY_KEYS)))
    warnings = _check_board(chip, status_led, entities)
    profile = Profile(name=name, title=b.text("title", name), chip=chip_name, pio_env=b.text("pio_env", name),
                      status_led=status_led, entities=tuple(entities), source=source, warnings=tuple(warnings))
    size = profile.hello_size()
    if size + HELLO_RESERVE > MAX_MESSAGE:
        raise BoardProfileError(f"the board's hello message would be about {size + HELLO_RESERVE} bytes, over the "
                                f"protocol's {MAX_MESSAGE}-byte limit: shorten names and areas or split the board")
    return profile


if __name__ == "__main__":
    import sys

    from edge.board_render import main

    sys.exit(main())
