"""The Python side of docs/protocol.md: message validation and serial framing under hostile input."""

from __future__ import annotations

import json
import random

import pytest

from edge.protocol import (
    MAX_MESSAGE,
    Ack,
    Command,
    EntityInfo,
    FrameDecoder,
    Hello,
    Ping,
    ProtocolError,
    Provision,
    State,
    cobs_decode,
    cobs_encode,
    crc16,
    decode,
    encode,
    frame,
)

HELLO = Hello(board="a1b2c3d4e5f6", fw="0.1.0", profile="relay-board", boot=3,
              entities=(EntityInfo("kitchen_light", "switch", "Kitchen light", "kitchen"),
                        EntityInfo("garage", "cover", "Garage door", "garage", sensitive=True)))


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00", b"abc", bytes(range(256)), b"\x01" * 254,
                                  b"\x01" * 255, b"\x01" * 253 + b"\x00", b"\x00" * 600])
def test_cobs_round_trip_has_no_zero(data: bytes) -> None:
    enc = cobs_encode(data)
    assert 0 not in enc
    assert cobs_decode(enc) == data


@pytest.mark.parametrize("msg", [
    HELLO, State("kitchen_light", 1), State("temp", 21.5), Command("c1", "kitchen_light", "set", 1.0),
    Command("c2", "status", "led", mode="listening"), Ack("c1", True, 1), Ack("c3", False, err="read_only"),
    Ping(True), Provision("p1", "wifi", "secret pw", "10.0.0.2", 1883, "a1b2c3d4e5f6", "pw", "home"),
])
def test_every_message_round_trips(msg: object) -> None:
    assert decode(encode(msg)) == msg  # type: ignore[arg-type]


def test_provision_secrets_not_in_repr() -> None:
    p = Provision("p1", "wifi", "wifi-secret", "h", 1883, "u", "mqtt-secret", "home")
    assert "secret" not in repr(p)


@pytest.mark.parametrize(("payload", "problem"), [
    (b"not json", "not JSON"),
    (b"[1,2]", "not a JSON object"),
    (b'{"v":2,"t":"state","e":"x","val":1}', "version 2"),
    (b'{"v":1,"t":"reboot"}', "unknown message type"),
    (b'{"v":1,"t":"state","e":"Bad Id","val":1}', "entity id"),
    (b'{"v":1,"t":"state","e":"x","val":true}', "number or a string"),
    (b'{"v":1,"t":"ack","id":"c1","ok":"yes"}', "true or false"),
    (b'{"v":1,"t":"hello","board":"../etc","entities":[]}', "board id"),
    (b'{"v":1,"t":"hello","board":"ab","entities":[{"id":"x","kind":"toaster"}]}', "unknown kind"),
    (b'\xff\xfe{"v":1}', "not JSON"),
])
def test_bad_payloads_name_the_problem(payload: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        decode(payload)


def test_oversized_payload_refused_both_ways() -> None:
    big = json.dumps({"v": 1, "t": "event", "e": "b", "ev": "x" * MAX_MESSAGE}).encode()
    with pytest.raises(ProtocolError, match="limit"):
        decode(big)
    with pytest.raises(ProtocolError, match="limit"):
        encode(State("x", "y" * MAX_MESSAGE))


def frames_from(data: bytes, dec: FrameDecoder, now: float = 0.0) -> list[bytes]:
    return list(dec.feed(data, now))


def test_decoder_skips_boot_noise_and_garbage() -> None:
    dec = FrameDecoder()
    noise = b"ets Jun  8 2016 00:22:57\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n\xff\xfe"
    good = encode(State("kitchen_light", 1))
    out = frames_from(noise + frame(good) + b"\x13\x37garbage" + frame(good), dec)
    assert out == [good, good]
    assert dec.bad == 2  # the noise and the garbage, each dropped as one bad frame


def test_every_single_bit_flip_is_rejected() -> None:
    good = frame(encode(Ack("c1", True, 1)))
    inner = good[1:-1]
    for i in range(len(inner) * 8):
        flipped = bytearray(inner)
        flipped[i // 8] ^= 1 << (i % 8)
        dec = FrameDecoder()
        got = frames_from(b"\x00" + bytes(flipped) + b"\x00", dec)
        # a flip that creates a 0x00 splits the frame: both halves must be dropped too, never decoded
        assert got == [], f"bit {i}: a corrupted frame was accepted"


def test_random_noise_never_yields_a_message() -> None:
    rng = random.Random(7)
    dec = FrameDecoder()
    for _ in range(200):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        for payload in dec.feed(blob, 0.0):
            with pytest.raises(ProtocolError):
                decode(payload)  # CRC passes by chance at most 1 in 65536; the JSON check catches that too


def test_frame_split_across_reads_and_partial_timeout() -> None:
    dec = FrameDecoder()
    data = frame(encode(State("a", 1)))
    assert frames_from(data[:5], dec, 0.0) == []
    assert frames_from(data[5:], dec, 0.1) == [encode(State("a", 1))]
    # a half frame, then silence past the timeout, then a fresh frame without a leading delimiter
    assert frames_from(data[1:8], dec, 1.0) == []
    assert frames_from(data[1:], dec, 1.5) == [encode(State("a", 1))]
    assert dec.bad == 1 and "timed out" in dec.last_error


def test_unterminated_stream_is_bounded() -> None:
    dec = FrameDecoder()
    for _ in range(100):
        frames_from(b"\x01" * 1000, dec, 0.0)
    assert len(dec._buf) <= 2 * MAX_MESSAGE + 1
    assert frames_from(frame(encode(Ping())), dec, 0.0) == [encode(Ping())]
