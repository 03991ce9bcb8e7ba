"""`hearth boards provision`: give a USB-attached board its Wi-Fi, broker and its own MQTT account.

The board introduces itself (``hello``: its MAC is its id), the agent generates a fresh password, writes the
board's entry into Mosquitto's password and ACL files (edge/broker_auth.py), sends everything in one ``prov``
message over the serial protocol and waits for the ack; the board stores it in NVS and connects. Only then is
the board marked provisioned in the registry, so an interrupted run leaves nothing half-trusted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import serial

from edge import broker_auth
from edge.errors import HearthError
from edge.protocol import Ack, FrameDecoder, Hello, Message, Ping, ProtocolError, Provision, decode, encode, frame
from edge.registry import Registry
from edge.serial_link import SerialLinkError, open_port
from edge.settings import Settings


class ProvisionError(HearthError):
    """Provisioning could not finish; nothing was marked as provisioned."""


@dataclass(frozen=True)
class ProvisionResult:
    board: str
    profile: str
    username: str
    password_file: Path
    acl_file: Path


def broker_files(settings: Settings) -> tuple[Path, Path]:
    b = settings.boards
    home = settings.storage.home_path / "mosquitto"
    return (Path(b.broker_password_file).expanduser() if b.broker_password_file else home / "passwd",
            Path(b.broker_acl_file).expanduser() if b.broker_acl_file else home / "acl")


class _Port:
    """Blocking request/answer over the framed protocol, for a CLI command (the agent uses SerialLink)."""

    def __init__(self, port: str) -> None:
        try:
            self.ser = open_port(port)
        except SerialLinkError as exc:
            raise ProvisionError(str(exc)) from exc
        self.port = port
        self.decoder = FrameDecoder()

    def send(self, msg: Message) -> None:
        try:
            self.ser.write(frame(encode(msg)))
        except (serial.SerialException, OSError) as exc:
            raise ProvisionError(f"writing to {self.port} failed: {exc}; is the board still plugged in?") from exc

    def wait(self, want: Callable[[Message], bool], timeout: float, resend: Message | None = None) -> Message:
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if resend is not None and now >= next_send:
                self.send(resend)
                next_send = now + 1.0
            try:
                data = self.ser.read(4096)
            except (serial.SerialException, OSError) as exc:
                raise ProvisionError(f"reading {self.port} failed: {exc}; is the board still plugged in?") from exc
            if not data:
                time.sleep(0.02)
            for payload in self.decoder.feed(data, time.monotonic()):
                try:
                    msg = decode(payload)
                except ProtocolError:
                    continue
                if want(msg):
                    return msg
        raise ProvisionError(f"no answer from a Hearth board on {self.port} within {timeout:.0f} s: is the Hearth "
                             "firmware flashed (`hearth boards flash`) and the port right (`hearth boards ports`)?")

    def close(self) -> None:
        self.ser.close()


def provision(settings: Settings, port: str, *, ssid: str, wifi_password: str, broker_host: str,
              broker_port: int | None = None, timeout: float = 10.0,
              progress: Callable[[str], None] = print) -> ProvisionResult:
    site = settings.boards.site
    if not ssid:
        raise ProvisionError("give the Wi-Fi network (--ssid): provisioning is for boards that join over Wi-Fi "
                             "and MQTT; a board on USB needs none, `hearth run` finds it by itself")
    pw_file, acl_file = broker_files(settings)
    link = _Port(port)
    try:
        progress(f"Waiting for the board on {port} to introduce itself ...")
        hello = link.wait(lambda m: isinstance(m, Hello), timeout, resend=Ping(hello=True))
        assert isinstance(hello, Hello)
        progress(f"Board {hello.board} ({hello.profile or 'no profile'}, firmware {hello.fw}) with "
                 f"{len(hello.entities)} entities")
        # Written to the broker's files only after the board has acked: a failed run must not lock a working,
        # already provisioned board out with a password it never received.
        username, password = broker_auth.generate_credentials(hello.board)
        msg_id = f"p{os.urandom(3).hex()}"
        prov = Provision(id=msg_id, ssid=ssid, password=wifi_password, host=broker_host,
                         port=broker_port or settings.boards.mqtt_port, user=username, mqpass=password,
                         site=site)
        progress("Sending Wi-Fi and broker settings ...")
        ack = link.wait(lambda m: isinstance(m, Ack) and m.id == msg_id, timeout, resend=prov)
        assert isinstance(ack, Ack)
        if not ack.ok:
            raise ProvisionError(f"the board refused the settings ({ack.err}); check the Wi-Fi name and broker "
                                 "address, then try again")
        try:
            broker_auth.set_acl(acl_file, broker_auth.board_acl(site, hello.board))
            broker_auth.set_password(pw_file, username, password)
        except (OSError, HearthError) as exc:
            raise ProvisionError(f"the board has its new settings but the broker files {pw_file} / {acl_file} "
                                 f"could not be written ({exc}); fix that and provision again") from exc
    finally:
        link.close()
    registry = Registry(settings.storage.database_path)
    try:
        registry.board_hello(hello, link="serial", trusted=True, port=port)
        registry.mark_provisioned(hello.board)
    finally:
        registry.close()
    return ProvisionResult(board=hello.board, profile=hello.profile, username=username,
                           password_file=pw_file, acl_file=acl_file)
