#!/usr/bin/env python3
"""End-to-end check of hearth-board-sim: a real pty, and a real mosquitto broker when one is installed.

Standard library only (ctest runs it before any virtualenv exists). The framing is re-implemented here from
docs/protocol.md on purpose: an independent encoder/decoder checks the C++ one.

usage: sim_e2e.py PATH/TO/hearth-board-sim SPEC_FILE
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import termios
import time
import tty

TIMEOUT = 5.0


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs_encode(data: bytes) -> bytes:
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block.clear()
    return bytes(out + bytes([len(block) + 1]) + block)


def cobs_decode(data: bytes) -> bytes | None:
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            return None
        out += data[i + 1:i + code]
        i += code
        if code != 255 and i < len(data):
            out.append(0)
    return bytes(out)


def frame(msg: dict) -> bytes:
    payload = json.dumps(msg, separators=(",", ":")).encode()
    return b"\x00" + cobs_encode(payload + crc16(payload).to_bytes(2, "big")) + b"\x00"


class Fail(Exception):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Fail(what)
    print(f"ok   {what}", flush=True)


class Sim:
    """The simulator process: control lines in, event lines out."""

    def __init__(self, args: list[str]) -> None:
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr)
        self.buf = b""
        self.events: list[str] = []

    def send(self, line: str) -> None:
        assert self.p.stdin
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def pump(self, wait: float) -> None:
        assert self.p.stdout
        r, _, _ = select.select([self.p.stdout], [], [], wait)
        if r:
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                raise Fail(f"simulator exited (rc={self.p.wait()})")
            self.buf += chunk
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                self.events.append(line.decode())

    def expect(self, prefix: str, timeout: float = TIMEOUT) -> str:
        end = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.startswith(prefix):
                    del self.events[i]
                    return e
            left = end - time.monotonic()
            if left <= 0:
                raise Fail(f"no event {prefix!r} in {timeout} s; saw {self.events[-10:]}")
            self.pump(min(left, 0.1))

    def absent(self, prefix: str, wait: float) -> bool:
        end = time.monotonic() + wait
        while time.monotonic() < end:
            self.pump(0.05)
        return not any(e.startswith(prefix) for e in self.events)


class Port:
    """The host side of the serial link, opened like the agent does (raw, 115200)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        self.raw = b""
        self.messages: list[dict] = []
        self.bad = 0

    def close(self) -> None:
        os.close(self.fd)

    def send(self, msg: dict) -> None:
        os.write(self.fd, frame(msg))

    def pump(self, wait: float) -> None:
        r, _, _ = select.select([self.fd], [], [], wait)
        if not r:
            return
        self.raw += os.read(self.fd, 65536)
        while b"\x00" in self.raw:
            chunk, self.raw = self.raw.split(b"\x00", 1)
            if not chunk:
                continue
            body = cobs_decode(chunk)
            if body is None or len(body) < 3 or crc16(body[:-2]) != int.from_bytes(body[-2:], "big"):
                self.bad += 1
                continue
            self.messages.append(json.loads(body[:-2]))

    def expect(self, t: str, timeout: float = TIMEOUT, **fields: object) -> dict:
        end = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.messages):
                if m.get("t") == t and all(m.get(k) == v for k, v in fields.items()):
                    del self.messages[i]
                    return m
            left = end - time.monotonic()
            if left <= 0:
                raise Fail(f"no {t} {fields} on serial in {timeout} s; saw {self.messages[-6:]}")
            self.pump(min(left, 0.1))

    def drain(self, wait: float) -> list[dict]:
        end = time.monotonic() + wait
        while time.monotonic() < end:
            self.pump(0.05)
        got, self.messages = self.messages, []
        return got


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto on a free port plus a mosquitto_sub watching the site's whole tree."""

    def __init__(self, tmp: str, site: str) -> None:
        self.port = free_port()
        conf = os.path.join(tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Fail("mosquitto did not start") from None
                time.sleep(0.05)
        self.site = site
        self.sub = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.port), "-t", f"hearth/{site}/#", "-q", "1",
             "-F", "%r %q %t %p"], stdout=subprocess.PIPE)
        self.buf = b""
        self.lines: list[tuple[bool, int, str, str]] = []

    def pump(self, wait: float) -> None:
        assert self.sub.stdout
        r, _, _ = select.select([self.sub.stdout], [], [], wait)
        if r:
            self.buf += os.read(self.sub.stdout.fileno(), 65536)
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                retained, qos, topic, payload = line.decode().split(" ", 3)
                self.lines.append((retained == "1", int(qos), topic, payload))

    def expect(self, topic: str, pred=lambda p: True, timeout: float = TIMEOUT) -> tuple[bool, int, str]:
        end = time.monotonic() + timeout
        while True:
            for i, (retained, qos, t, p) in enumerate(self.lines):
                if t == topic and pred(p):
                    del self.lines[i]
                    return retained, qos, p
            left = end - time.monotonic()
            if left <= 0:
                raise Fail(f"nothing on {topic} in {timeout} s; saw {self.lines[-6:]}")
            self.pump(min(left, 0.1))

    def retained(self, topic: str) -> tuple[bool, int, str]:
        """What a fresh subscriber gets at once on `topic` (the retained message), with its flags."""
        out = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.port), "-t", topic, "-q", "1",
                              "-C", "1", "-W", "3", "-F", "%r %q %p"], capture_output=True, text=True)
        if not out.stdout.strip():
            raise Fail(f"no retained message on {topic}")
        retained, qos, payload = out.stdout.strip().split(" ", 2)
        return retained == "1", int(qos), payload

    def publish(self, topic: str, payload: str) -> None:
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-t", topic, "-q", "1",
                        "-m", payload], check=True)

    def stop(self) -> None:
        for p in (self.sub, self.broker):
            p.terminate()
            p.wait()


def main() -> int:
    sim_bin, spec = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="hearth-sim-")
    link = os.path.join(tmp, "ttyHEARTH0")
    nvs = os.path.join(tmp, "nvs.txt")
    have_broker = shutil.which("mosquitto") and shutil.which("mosquitto_sub") and shutil.which("mosquitto_pub")
    broker = Broker(tmp, "test") if have_broker else None
    board = "0a1b2c3d4e5f"
    args = [sim_bin, "--spec", spec, "--board-id", board, "--pty-link", link, "--nvs", nvs, "--boot-noise",
            "--hb-ms", "500", "--tele-ms", "1500", "--sensor-ms", "200", "--seed", "1"]
    if broker:
        args += ["--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port), "--site", "test"]
    sim = Sim(args)
    port = None
    try:
        check(sim.expect("ready").startswith(f"ready pty={link} board={board}"), "ready line names the link")
        check(os.path.islink(link), "pty symlink exists")
        port = Port(link)
        port.send({"v": 1, "t": "ping", "hello": 1})
        hello = port.expect("hello")
        check(hello["board"] == board and hello["boot"] == 1 and hello["profile"] == "relay-board", "hello over serial")
        check([e["id"] for e in hello["entities"]][0] == "status_led", "status LED is an entity")
        check(port.bad >= 1, "boot ROM text arrived and was dropped as a bad frame")
        port.expect("hb")

        port.send({"v": 1, "t": "cmd", "id": "c1", "e": "kitchen_light", "a": "set", "val": 1})
        ack = port.expect("ack", id="c1")
        check(ack["ok"] is True and ack["val"] == 1, "set -> ack ok val 1")
        check(port.expect("state", e="kitchen_light")["val"] == 1, "state follows the ack")
        sim.expect("out kitchen_light 1")
        sim.expect("ack c1 ok")
        port.send({"v": 1, "t": "cmd", "id": "c1", "e": "kitchen_light", "a": "toggle"})
        check(port.expect("ack", id="c1")["val"] == 1, "duplicate id answered from memory")
        check(sim.absent("out kitchen_light", 0.3), "duplicate id not executed again")
        for cid, cmd, err in [("e1", {"e": "nope", "a": "get"}, "unknown_entity"),
                              ("e2", {"e": "temp", "a": "set", "val": 1}, "read_only"),
                              ("e3", {"e": "hall_dimmer", "a": "set", "val": 150}, "bad_value"),
                              ("e4", {"e": "kitchen_light", "a": "jump"}, "bad_action")]:
            port.send({"v": 1, "t": "cmd", "id": cid, **cmd})
            a = port.expect("ack", id=cid)
            check(a["ok"] is False and a["err"] == err, f"error {err}")
        port.send({"v": 1, "t": "cmd", "id": "l1", "e": "status_led", "a": "led", "mode": "listening"})
        check(port.expect("ack", id="l1")["val"] == "listening", "led mode acked")
        sim.expect("led listening")

        sim.send("press talk")
        ev = port.expect("event", e="talk")
        check(ev["ev"] == "press", "ptt button press event")
        sim.send("set garage_door 1")
        check(port.expect("state", e="garage_door")["val"] == 1, "contact change reported")
        sim.send("set temp 25.5")
        check(port.expect("state", e="temp", val=25.5)["val"] == 25.5, "sensor change reported")
        check(port.expect("tele", timeout=3)["rssi"] == 0, "tele over serial (rssi 0)")

        os.write(port.fd, os.urandom(300))  # line noise towards the board, then a good command
        port.send({"v": 1, "t": "cmd", "id": "n1", "e": "kitchen_light", "a": "get"})
        check(port.expect("ack", id="n1")["ok"] is True, "board recovers from noise")
        sim.expect("rx bad")
        check(port.expect("tele", timeout=3)["bad"] >= 1, "tele counts the bad frames")
        sim.send("noise 200")  # line noise towards the host
        port.send({"v": 1, "t": "ping"})
        port.expect("hb")

        if broker:
            sim.expect("mqtt connected")
            pre = f"hearth/test/{board}/"
            broker.expect(pre + "status", lambda p: p == "online")
            broker.expect(pre + "hello")
            check(broker.retained(pre + "status") == (True, 1, "online"), "status online, retained, QoS 1")
            retained, qos, p = broker.retained(pre + "hello")
            check(retained and qos == 1 and json.loads(p)["board"] == board, "hello retained on MQTT")
            retained, qos, p = broker.retained(pre + "state/kitchen_light")
            check(retained and qos == 1 and json.loads(p)["val"] == 1, "current states retained on MQTT")
            broker.publish(pre + "cmd", json.dumps({"v": 1, "t": "cmd", "id": "m1", "e": "hall_dimmer",
                                                    "a": "set", "val": 40}))
            retained, qos, p = broker.expect(pre + "ack")
            check(not retained and qos == 1 and json.loads(p) == {"v": 1, "t": "ack", "id": "m1", "ok": True,
                                                                  "val": 40}, "MQTT command acked on MQTT")
            check(port.expect("state", e="hall_dimmer")["val"] == 40, "state reaches serial too")
            check(not any(m.get("t") == "ack" for m in port.drain(0.3)), "MQTT ack not sent on serial")
            sim.send("mqtt-kill")
            sim.expect("mqtt disconnected")
            broker.expect(pre + "status", lambda p: p == "offline")
            check(broker.retained(pre + "status")[2] in ("offline", "online"), "Last Will 'offline' after an abrupt drop")
            broker.lines.clear()  # from here on only what the new session publishes
            sim.expect("mqtt connected", timeout=8)
            broker.expect(pre + "status", lambda p: p == "online")
            broker.expect(pre + "hello")
            broker.expect(pre + "state/hall_dimmer", lambda p: json.loads(p)["val"] == 40)
            check(True, "reconnect republishes online, hello and the current state")

        sim.send("reboot")
        check(port.expect("hello", boot=2)["boot"] == 2, "reboot: hello with boot 2 (port stays open)")
        sim.expect("out kitchen_light 0")

        sim.events.clear()
        sim.send("unplug")
        sim.expect("unplugged")
        check(not os.path.lexists(link), "unplug removes the symlink")
        try:
            gone = select.select([port.fd], [], [], 1.0)[0] != [] and os.read(port.fd, 10) == b""  # hung up: EOF
        except OSError:
            gone = True  # EIO
        check(gone, "host sees the port vanish")
        port.close()
        port = None
        if broker:
            broker.publish(f"hearth/test/{board}/cmd", json.dumps({"v": 1, "t": "cmd", "id": "u1",
                                                                   "e": "kitchen_light", "a": "toggle"}))
            sim.expect("ack u1 ok")
            check(sim.absent("mqtt disconnected", 0.2), "unplugged board still works over MQTT")
        sim.send("plug")
        sim.expect("ready")
        port = Port(link)
        port.send({"v": 1, "t": "ping", "hello": 1})
        check(port.expect("hello", boot=3)["boot"] == 3, "plug: new pty at the same path, hello with boot 3")
        check(port.bad >= 1, "plug: boot noise before the hello")

        port.send({"v": 1, "t": "prov", "id": "p1", "ssid": "wifi", "pass": "pw", "host": "127.0.0.1",
                   "port": broker.port if broker else 1883, "user": board, "mqpass": "", "site": "lab"})
        check(port.expect("ack", id="p1")["ok"] is True, "prov acked")
        sim.expect("prov ok site=lab host=127.0.0.1")
        with open(nvs) as f:
            stored = f.read()
        check("site=lab" in stored and "host=127.0.0.1" in stored and "boot=3" in stored, "prov stored in the NVS file")
        if broker:
            sim.expect("mqtt connected", timeout=8)

        sim.send("quit")
        check(sim.p.wait(timeout=TIMEOUT) == 0, "quit exits 0")
        check(not os.path.lexists(link), "quit removes the symlink")
        print("sim_e2e: all checks passed" + ("" if broker else " (MQTT part skipped: no mosquitto)"))
        return 0
    except Fail as exc:
        print(f"FAIL {exc}", flush=True)
        return 1
    finally:
        if port is not None:
            port.close()
        if sim.p.poll() is None:
            sim.p.kill()
            sim.p.wait()
        if broker:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
