"""Test helpers for the boards side: a real Mosquitto on a free port, and the board simulator process.

The simulator (firmware/sim, built from the firmware's own C++ core by scripts/build_firmware.sh) is the
only stand-in in these tests, for the ESP32 chip that cannot exist here. It speaks the serial protocol on a
pseudo-terminal and MQTT through libmosquitto, and reports what its "hardware" does on stdout.
"""

from __future__ import annotations

import getpass
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SIM = ROOT / "firmware" / "build-host" / "hearth-board-sim"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sim_binary() -> Path:
    """Build the simulator once if this checkout has not (scripts/build_firmware.sh also runs its unit tests)."""
    if not SIM.exists():
        found = list((ROOT / "firmware" / "build-host").rglob("hearth-board-sim")) if (
            ROOT / "firmware" / "build-host").exists() else []
        if found:
            return found[0]
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "build_firmware.sh")], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.fail(f"building the board simulator failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        found = list((ROOT / "firmware" / "build-host").rglob("hearth-board-sim"))
        if not found:
            pytest.fail("scripts/build_firmware.sh did not produce hearth-board-sim")
        return found[0]
    return SIM


class Mosquitto:
    """A private broker (anonymous, loopback) that tests can stop and restart on the same port."""

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
        if exe is None:
            pytest.fail("mosquitto is required: run scripts/setup.sh (apt-get install mosquitto)")
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        f"set_tcp_nodelay true\nuser {getpass.getuser()}\n{self.extra_conf}")
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None


class BoardSim:
    """One simulated board; ``events`` collects its stdout lines (``out kitchen_light 1``, ``mqtt connected``)."""

    def __init__(self, workdir: Path, spec_text: str, *, board_id: str, serial: bool = True,
                 mqtt_port: int | None = None, site: str = "home", extra: list[str] | None = None,
                 user: str = "", password: str = "") -> None:
        self.workdir = workdir
        self.board_id = board_id
        self.spec = workdir / f"{board_id}.spec"
        self.spec.write_text(spec_text)
        self.pty_link = workdir / f"tty-{board_id}"
        self.nvs = workdir / f"{board_id}.nvs"
        args = [str(sim_binary()), "--spec", str(self.spec), "--board-id", board_id, "--nvs", str(self.nvs)]
        args += ["--pty-link", str(self.pty_link)] if serial else ["--no-serial"]
        if mqtt_port is not None:
            args += ["--mqtt-host", "127.0.0.1", "--mqtt-port", str(mqtt_port), "--site", site]
            if user:
                args += ["--user", user, "--password", password]
        self.args = args + (extra or [])
        self.events: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> BoardSim:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("ready", 10)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.log.append(line)
            self.events.put(line)

    def wait_for(self, prefix: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"simulator never printed {prefix!r}; last lines: {self.log[-15:]}")
            try:
                line = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line

    def drain(self) -> None:
        while not self.events.empty():
            self.events.get_nowait()

    def send(self, command: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(3)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(3)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(3)
            self.proc = None


RELAY_SPEC = """profile=relay-board
status_led=2
id=kitchen_light;kind=switch;name=Kitchen light;area=kitchen;pin=26;drv=gpio
id=fan;kind=dimmer;name=Fan;area=bedroom;unit=%;min=0;max=100;pin=27;drv=pwm
id=talk;kind=button;name=Talk button;area=kitchen;pin=0;drv=gpio;ptt=1;inv=1
id=temp;kind=temperature;name=Temperature;area=kitchen;unit=C;min=-40;max=80;pin=4;drv=dht22
"""

GARAGE_SPEC = """profile=garage-controller
id=garage_door;kind=cover;name=Garage door;area=garage;pin=5;drv=gpio;sens=1
id=garage_contact;kind=contact;name=Garage door;area=garage;pin=6;drv=gpio
"""


def env_without_proxy() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
