"""USB serial link to one board: framed protocol messages, reconnect with backoff, heartbeat watchdog.

One task per port. Reads are driven by the event loop (``add_reader`` on the port's file descriptor), so a
silent, noisy or vanished board never blocks the voice loop; writes go through a bounded queue. The port is
opened with DTR/RTS held inactive so opening it does not reset a dev board (docs/protocol.md); if the board
does reboot, its new ``hello`` says so.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

import serial

from edge.errors import HearthError
from edge.protocol import FrameDecoder, Heartbeat, Hello, Message, Ping, ProtocolError, decode, encode, frame

log = logging.getLogger(__name__)

BAUD = 115200
HEARTBEAT_TIMEOUT_S = 6.0  # 3 missed 2 s heartbeats
# USB-serial bridges found on ESP32 dev boards, and Espressif's own USB (S3/C3 native USB-CDC/JTAG).
KNOWN_USB_IDS = {
    (0x10C4, 0xEA60): "CP210x",
    (0x1A86, 0x7523): "CH340",
    (0x1A86, 0x55D4): "CH9102",
    (0x0403, 0x6001): "FT232R",
    (0x0403, 0x6015): "FT231X",
    (0x303A, 0x1001): "ESP32 USB-JTAG/serial",
    (0x303A, 0x0002): "ESP32-S2/S3 USB-CDC",
}

OnMessage = Callable[[str, Message, "SerialLink"], None]
OnLost = Callable[[str, "SerialLink"], None]


class SerialLinkError(HearthError):
    """A serial port that cannot be opened or used."""


def find_ports() -> list[tuple[str, str]]:
    """(device, description) of every attached USB serial port that looks like an ESP32 board."""
    from serial.tools import list_ports

    found = []
    for p in list_ports.comports():
        if p.vid is not None and (p.vid, p.pid) in KNOWN_USB_IDS:
            found.append((p.device, f"{KNOWN_USB_IDS[(p.vid, p.pid)]} {p.serial_number or ''}".strip()))
    return found


def open_port(port: str) -> serial.Serial:
    """Open without toggling DTR/RTS (which would hold EN low / reboot into the bootloader on most boards)."""
    ser = serial.Serial()
    ser.port = port
    ser.baudrate = BAUD
    ser.timeout = 0
    ser.write_timeout = 1.0
    # RTS first: on the usual two-transistor auto-reset circuit, DTR low with RTS still high pulls EN low.
    ser.rts = False
    ser.dtr = False
    ser.exclusive = True  # a second opener (provisioning while the agent runs) gets a clear error, not our acks
    try:
        ser.open()
    except serial.SerialException as exc:
        text = str(exc)
        if "Resource temporarily unavailable" in text or "exclusively" in text:
            raise SerialLinkError(f"{port} is in use by another program (is `hearth run` running? stop it, or "
                                  "provision through it)") from exc
        if "Permission denied" in text:
            raise SerialLinkError(f"no permission to open {port}: add yourself to the dialout group "
                                  "(sudo usermod -aG dialout $USER) and log in again") from exc
        if "No such file" in text:
            raise SerialLinkError(f"serial port {port} does not exist: is the board plugged in with a data cable? "
                                  "`hearth boards ports` lists the ports") from exc
        raise SerialLinkError(f"cannot open {port}: {text}") from exc
    return ser


class SerialLink:
    """Keeps one port open, reconnecting after unplug/replug; delivers decoded messages to ``on_message``."""

    name = "serial"

    def __init__(self, port: str, on_message: OnMessage, on_lost: OnLost, *, queue_size: int = 64,
                 backoff_max_s: float = 5.0, hello_timeout_s: float | None = None) -> None:
        """``hello_timeout_s``: give the port up if nothing on it speaks the protocol within that time (for
        auto-discovered ports, which may be a Zigbee stick or a 3D printer behind the same USB chip)."""
        self.port = port
        self.on_message = on_message
        self.on_lost = on_lost
        self.board: str | None = None
        self.decoder = FrameDecoder()
        self.connected = asyncio.Event()
        self.dropped = 0  # invalid messages inside good frames
        self._out: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self._backoff_max_s = backoff_max_s
        self._last_rx = 0.0
        self._stopping = False
        self.hello_timeout_s = hello_timeout_s
        self.not_a_board = False

    async def send(self, board: str | None, msg: Message) -> None:
        """Queue a message (``board`` is implied by the port); raises ``SerialLinkError`` when down or full."""
        if not self.connected.is_set():
            raise SerialLinkError(f"{self.port} is not connected")
        try:
            self._out.put_nowait(frame(encode(msg)))
        except asyncio.QueueFull:
            raise SerialLinkError(f"{self.port}: send queue full ({self._out.maxsize} frames)") from None

    async def run(self) -> None:
        """Open → serve → on failure close and retry with exponential backoff, until cancelled."""
        delay = 0.2
        while not self._stopping:
            try:
                ser = await asyncio.to_thread(open_port, self.port)
            except SerialLinkError as exc:
                log.debug("%s", exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self._backoff_max_s)
                continue
            log.info("serial %s open", self.port)
            opened = time.monotonic()
            try:
                await self._serve(ser)
            except SerialLinkError as exc:
                log.warning("serial %s lost: %s", self.port, exc)
            finally:
                self._close(ser)
            if self.not_a_board:
                return
            if time.monotonic() - opened > 10:
                delay = 0.2  # it worked for a while: reconnect quickly; a port failing at once backs off
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff_max_s)

    async def _serve(self, ser: serial.Serial) -> None:
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[str] = loop.create_future()
        fd = ser.fileno()

        def readable() -> None:
            try:
                data = ser.read(4096)
            except (serial.SerialException, OSError) as exc:
                if not failed.done():
                    failed.set_result(str(exc))
                return
            if data:
                self._rx(data)

        self.decoder = FrameDecoder()
        self._last_rx = opened = time.monotonic()
        self._drain()
        loop.add_reader(fd, readable)
        self.connected.set()
        writer = asyncio.create_task(self._writer(ser, failed))
        try:
            await self.send(None, Ping(hello=True))  # a board that booted before we opened the port introduces itself
            while not failed.done():
                try:
                    reason = await asyncio.wait_for(asyncio.shield(failed), timeout=0.5)
                    raise SerialLinkError(reason)
                except TimeoutError:
                    pass
                now = time.monotonic()
                self.decoder.expire(now)
                if self.board is None and self.hello_timeout_s and now - opened > self.hello_timeout_s:
                    self.not_a_board = True
                    raise SerialLinkError(f"no Hearth board answered on {self.port}; leaving the port alone")
                if self.board and now - self._last_rx > HEARTBEAT_TIMEOUT_S:
                    log.warning("serial %s: board %s silent for %.0f s", self.port, self.board, now - self._last_rx)
                    self._lost()
            raise SerialLinkError(failed.result())
        finally:
            loop.remove_reader(fd)
            writer.cancel()
            self.connected.clear()

    async def _writer(self, ser: serial.Serial, failed: asyncio.Future[str]) -> None:
        while True:
            data = await self._out.get()
            try:
                await asyncio.to_thread(ser.write, data)
            except (serial.SerialException, OSError) as exc:
                if not failed.done():
                    failed.set_result(f"write failed: {exc}")
                return

    def _rx(self, data: bytes) -> None:
        now = time.monotonic()
        for payload in self.decoder.feed(data, now):
            try:
                msg = decode(payload)
            except ProtocolError as exc:
                self.dropped += 1
                log.info("serial %s: dropped a message: %s", self.port, exc)
                continue
            self._last_rx = now
            if isinstance(msg, Hello):
                if self.board and self.board != msg.board:
                    self._lost()  # another board on the same port (swapped while we were reading)
                self.board = msg.board
            if self.board is None:
                if not isinstance(msg, Heartbeat):
                    log.debug("serial %s: %s before hello, asking for one", self.port, msg.T)
                if self._out.qsize() < 2 and self.connected.is_set():
                    self._out.put_nowait(frame(encode(Ping(hello=True))))
                continue
            self.on_message(self.board, msg, self)

    def _lost(self) -> None:
        if self.board:
            board, self.board = self.board, None
            self.on_lost(board, self)

    def _drain(self) -> None:
        while not self._out.empty():
            self._out.get_nowait()

    def _close(self, ser: serial.Serial) -> None:
        self._lost()
        try:
            ser.close()
        except OSError:
            log.debug("closing %s failed", self.port)

    def stop(self) -> None:
        self._stopping = True

