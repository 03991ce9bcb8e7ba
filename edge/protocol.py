"""The board protocol (docs/protocol.md): one typed message model for serial, MQTT and the pipeline.

Messages are small frozen dataclasses; ``decode`` validates a JSON payload into one of them and raises
``ProtocolError`` naming what is wrong, so both links can drop bad input with a logged reason instead of
crashing. Serial framing (COBS + CRC-16/CCITT-FALSE, 0x00 delimited) lives here too because the firmware's
C++ core implements the same bytes and the two are tested against each other through the simulator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from edge.errors import HearthError

VERSION = 1
MAX_MESSAGE = 1024
ENTITY_ID = re.compile(r"^[a-z0-9_]{1,24}$")
BOARD_ID = re.compile(r"^[a-z0-9_-]{1,32}$")
KINDS = ("switch", "dimmer", "lock", "cover", "button", "contact", "temperature", "humidity", "status_led")
OUTPUT_KINDS = frozenset({"switch", "dimmer", "lock", "cover", "status_led"})
LED_MODES = ("idle", "listening", "thinking", "speaking", "error")


class ProtocolError(HearthError):
    """A payload or frame that is not a valid protocol-v1 message."""


@dataclass(frozen=True)
class EntityInfo:
    id: str
    kind: str
    name: str
    area: str = ""
    unit: str = ""
    min: float = 0
    max: float = 1
    sensitive: bool = False
    ptt: bool = False

    @property
    def is_output(self) -> bool:
        return self.kind in OUTPUT_KINDS

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "kind": self.kind, "name": self.name, "area": self.area,
                             "unit": self.unit, "min": self.min, "max": self.max}
        if self.sensitive:
            d["sens"] = 1
        if self.ptt:
            d["ptt"] = 1
        return d

    @classmethod
    def from_wire(cls, d: Any) -> EntityInfo:
        if not isinstance(d, dict):
            raise ProtocolError("hello.entities must hold objects")
        eid = _str(d, "id")
        if not ENTITY_ID.match(eid):
            raise ProtocolError(f"entity id {eid!r} must match [a-z0-9_]{{1,24}}")
        kind = _str(d, "kind")
        if kind not in KINDS:
            raise ProtocolError(f"entity {eid}: unknown kind {kind!r}")
        return cls(id=eid, kind=kind, name=_str(d, "name", eid), area=_str(d, "area", ""), unit=_str(d, "unit", ""),
                   min=_num(d, "min", 0), max=_num(d, "max", 1), sensitive=bool(d.get("sens")),
                   ptt=bool(d.get("ptt")))


@dataclass(frozen=True)
class Hello:
    T: ClassVar[str] = "hello"
    board: str
    fw: str
    profile: str
    boot: int
    entities: tuple[EntityInfo, ...] = ()


@dataclass(frozen=True)
class State:
    T: ClassVar[str] = "state"
    e: str
    val: float | str


@dataclass(frozen=True)
class Event:
    T: ClassVar[str] = "event"
    e: str
    ev: str


@dataclass(frozen=True)
class Tele:
    T: ClassVar[str] = "tele"
    seq: int
    up: int
    heap: int = 0
    rssi: int = 0
    bad: int = 0


@dataclass(frozen=True)
class Heartbeat:
    T: ClassVar[str] = "hb"
    seq: int
    up: int


@dataclass(frozen=True)
class Command:
    T: ClassVar[str] = "cmd"
    id: str
    e: str
    a: str
    val: float | None = None
    mode: str | None = None


@dataclass(frozen=True)
class Ack:
    T: ClassVar[str] = "ack"
    id: str
    ok: bool
    val: float | str | None = None
    err: str | None = None


@dataclass(frozen=True)
class Ping:
    T: ClassVar[str] = "ping"
    hello: bool = False


@dataclass(frozen=True)
class Provision:
    T: ClassVar[str] = "prov"
    id: str
    ssid: str
    password: str = field(repr=False)
    host: str
    port: int
    user: str
    mqpass: str = field(repr=False)
    site: str


Message = Hello | State | Event | Tele | Heartbeat | Command | Ack | Ping | Provision


def encode(msg: Message) -> bytes:
    """Compact JSON bytes, as the firmware writes them."""
    d: dict[str, Any] = {"v": VERSION, "t": msg.T}
    if isinstance(msg, Hello):
        d.update(board=msg.board, fw=msg.fw, profile=msg.profile, boot=msg.boot,
                 entities=[e.to_wire() for e in msg.entities])
    elif isinstance(msg, Provision):
        d.update(id=msg.id, ssid=msg.ssid, host=msg.host, port=msg.port, user=msg.user, site=msg.site)
        d["pass"] = msg.password
        d["mqpass"] = msg.mqpass
    elif isinstance(msg, Ping):
        d["hello"] = int(msg.hello)
    else:
        d.update({k: v for k, v in asdict(msg).items() if v is not None})
        if isinstance(msg, Ack):
            d["ok"] = msg.ok
    data = json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"{msg.T} message is {len(data)} bytes, over the {MAX_MESSAGE}-byte limit")
    return data


def decode(data: bytes) -> Message:
    """Validate one JSON payload into a message; ``ProtocolError`` says what is wrong with it."""
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"payload is {len(data)} bytes, over the {MAX_MESSAGE}-byte limit")
    try:
        d = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"payload is not JSON ({exc})") from exc
    if not isinstance(d, dict):
        raise ProtocolError("payload is not a JSON object")
    if d.get("v") != VERSION:
        raise ProtocolError(f"protocol version {d.get('v')!r} is not supported (this agent speaks v{VERSION})")
    t = d.get("t")
    if t == "hello":
        ents = d.get("entities", [])
        if not isinstance(ents, list) or len(ents) > 16:
            raise ProtocolError("hello.entities must be a list of at most 16 entities")
        board = _str(d, "board")
        if not BOARD_ID.match(board):
            raise ProtocolError(f"board id {board!r} must match [a-z0-9_-]{{1,32}}")
        return Hello(board=board, fw=_str(d, "fw", ""), profile=_str(d, "profile", ""), boot=_int(d, "boot", 0),
                     entities=tuple(EntityInfo.from_wire(e) for e in ents))
    if t == "state":
        val = d.get("val")
        if isinstance(val, bool) or not isinstance(val, (int, float, str)):
            raise ProtocolError("state.val must be a number or a string")
        return State(e=_entity(d), val=val)
    if t == "event":
        return Event(e=_entity(d), ev=_str(d, "ev"))
    if t == "tele":
        return Tele(seq=_int(d, "seq", 0), up=_int(d, "up", 0), heap=_int(d, "heap", 0), rssi=_int(d, "rssi", 0),
                    bad=_int(d, "bad", 0))
    if t == "hb":
        return Heartbeat(seq=_int(d, "seq", 0), up=_int(d, "up", 0))
    if t == "cmd":
        val = d.get("val")
        return Command(id=_str(d, "id"), e=_entity(d), a=_str(d, "a"),
                       val=None if val is None else _num(d, "val", 0), mode=d.get("mode"))
    if t == "ack":
        ok = d.get("ok")
        if not isinstance(ok, bool):
            raise ProtocolError("ack.ok must be true or false")
        val = d.get("val")
        if isinstance(val, bool) or not isinstance(val, (int, float, str, type(None))):
            raise ProtocolError("ack.val must be a number or a string")
        err = d.get("err")
        return Ack(id=_str(d, "id"), ok=ok, val=val, err=err if isinstance(err, str) else None)
    if t == "ping":
        return Ping(hello=bool(d.get("hello")))
    if t == "prov":
        return Provision(id=_str(d, "id"), ssid=_str(d, "ssid"), password=_str(d, "pass", ""), host=_str(d, "host"),
                         port=_int(d, "port", 1883), user=_str(d, "user"), mqpass=_str(d, "mqpass"),
                         site=_str(d, "site"))
    raise ProtocolError(f"unknown message type {t!r}")


def _str(d: dict[str, Any], key: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise ProtocolError(f"{d.get('t', 'message')}.{key} must be a string")
    return v


def _num(d: dict[str, Any], key: str, default: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProtocolError(f"{d.get('t', 'message')}.{key} must be a number")
    return v


def _int(d: dict[str, Any], key: str, default: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f"{d.get('t', 'message')}.{key} must be an integer")
    return v


def _entity(d: dict[str, Any]) -> str:
    e = _str(d, "e")
    if not ENTITY_ID.match(e):
        raise ProtocolError(f"entity id {e!r} must match [a-z0-9_]{{1,24}}")
    return e


# --- serial framing -------------------------------------------------------------------------------------------

def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF); check value of b"123456789" is 0x29B1."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ProtocolError("COBS: zero byte inside a frame")
        end = i + code
        if end > n:
            raise ProtocolError("COBS: block runs past the end of the frame")
        out += data[i + 1:end]
        i = end
        if code != 255 and i < n:
            out.append(0)
    return bytes(out)


def frame(payload: bytes) -> bytes:
    """Wire bytes for one message: a leading 0x00 ends any junk before it (docs/protocol.md)."""
    body = payload + crc16(payload).to_bytes(2, "big")
    return b"\x00" + cobs_encode(body) + b"\x00"


class FrameDecoder:
    """Byte stream → payloads. Garbage, boot text, bit flips and stale partial frames are dropped and counted."""

    PARTIAL_TIMEOUT_S = 0.25

    def __init__(self) -> None:
        self._buf = bytearray()
        self._last_byte_at = 0.0
        self.bad = 0
        self.last_error = ""

    def expire(self, now: float) -> None:
        """Drop a partial frame whose bytes stopped arriving (a board reset mid-frame)."""
        if self._buf and now - self._last_byte_at > self.PARTIAL_TIMEOUT_S:
            self._drop("partial frame timed out")

    def feed(self, data: bytes, now: float) -> Iterator[bytes]:
        self.expire(now)
        if data:
            self._last_byte_at = now
        for byte in data:
            if byte != 0:
                if len(self._buf) <= 2 * MAX_MESSAGE:  # bound memory on a line that never sends 0x00
                    self._buf.append(byte)
                continue
            if not self._buf:
                continue
            raw = bytes(self._buf)
            self._buf.clear()
            try:
                yield self._unframe(raw)
            except ProtocolError as exc:
                self._drop(str(exc))

    def _unframe(self, raw: bytes) -> bytes:
        if len(raw) > MAX_MESSAGE + 2 + MAX_MESSAGE // 254 + 2:
            raise ProtocolError(f"frame of {len(raw)} bytes is over the limit")
        body = cobs_decode(raw)
        if len(body) < 3:
            raise ProtocolError("frame too short")
        payload, crc = body[:-2], int.from_bytes(body[-2:], "big")
        if crc16(payload) != crc:
            raise ProtocolError("CRC mismatch")
        return payload

    def _drop(self, reason: str) -> None:
        self._buf.clear()
        self.bad += 1
        self.last_error = reason
