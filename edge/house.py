"""Wires the boards side together for a running agent: registry, hub, voice control and the links.

``House.start`` runs one task per serial port (new USB boards are picked up by a rescan), the MQTT link, and
the registry's maintenance task. Board buttons marked push-to-talk trigger listening; the pipeline's phases
drive every status LED.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from edge.devices import DeviceHub
from edge.errors import HearthError
from edge.ha_bridge import HomeAssistantBridge
from edge.home import HomeControl
from edge.mqtt_link import MqttConfig, MqttLink
from edge.protocol import LED_MODES, Hello, Message
from edge.registry import Registry
from edge.serial_link import SerialLink, find_ports
from edge.settings import Settings

log = logging.getLogger(__name__)
RESCAN_S = 3.0


def profile_synonyms(profile: str) -> dict[str, tuple[str, ...]]:
    """Synonyms from the board's profile in hardware/boards, if this checkout has it."""
    try:
        from edge.boards import load_profile
    except ImportError:  # pragma: no cover - edge.boards ships with the package
        return {}
    if not re.fullmatch(r"[a-z0-9_-]{1,40}", profile):  # the name comes from the board: never a path
        return {}
    try:
        p = load_profile(profile)
    except HearthError:
        return {}
    return {e.id: tuple(e.synonyms) for e in p.entities}


class House:
    def __init__(self, settings: Settings, *, on_button: Callable[[str], None] | None = None,
                 client_id: str = "hearth-agent", announce: bool = True) -> None:
        """``client_id``/``announce``: a short-lived CLI command must not take over the running agent's broker
        session (same client id) nor mark the agent offline when it exits."""
        self.client_id, self.announce = client_id, announce
        cfg = settings.boards
        self.settings = settings
        self.registry = Registry(settings.storage.database_path, telemetry_keep_s=cfg.telemetry_keep_days * 86400,
                                 telemetry_max_rows=cfg.telemetry_max_rows)
        self.hub = DeviceHub(self.registry, ack_timeout_s=cfg.ack_timeout_s, attempts=cfg.command_attempts,
                             synonyms=profile_synonyms)
        self.home = HomeControl(self.hub, self.registry, confirm_window_s=cfg.confirm_window_s)
        self.on_button = on_button
        self.hub.on_button = self._button
        self.serial: dict[str, SerialLink] = {}
        self.mqtt: MqttLink | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._led_task: asyncio.Task[None] | None = None
        self.on_entities_changed: Callable[[], None] | None = None  # e.g. pre-synthesize the confirmations
        self._not_boards: set[str] = set()  # auto-discovered ports that never said hello
        self.ha: HomeAssistantBridge | None = None
        self._ha_tasks: set[asyncio.Task[None]] = set()

    def _button(self, board: str, entity: str, gesture: str) -> None:
        ent = next((e for e in self.registry.entities(board, usable_only=True) if e.id == entity), None)
        if ent is not None and ent.info.ptt and gesture == "press" and self.on_button:
            self.on_button(f"button:{board}.{entity}")

    def _on_message(self, board: str, msg: Message, link: object) -> None:
        self.hub.on_message(board, msg, link)  # type: ignore[arg-type]
        if isinstance(msg, Hello):
            self.home.invalidate()
            if self.ha is not None:
                self.ha.announce(board)
            if self.on_entities_changed is not None:
                self.on_entities_changed()

    async def start(self) -> None:
        cfg = self.settings.boards
        self._tasks.append(asyncio.create_task(self.hub.maintain()))
        explicit = [p for p in cfg.serial_ports if p != "auto"]
        for port in explicit:
            self._add_serial(port)
        if "auto" in cfg.serial_ports:
            self._tasks.append(asyncio.create_task(self._rescan()))
        if cfg.mqtt_host:
            if not cfg.mqtt_username:
                log.warning("MQTT without an account: if the broker allows anonymous clients, anything on the "
                            "network can publish as a board (quarantine still applies); see `hearth boards "
                            "broker-setup`")
            self.mqtt = MqttLink(MqttConfig(host=cfg.mqtt_host, port=cfg.mqtt_port, site=cfg.site,
                                            username=cfg.mqtt_username, password=cfg.mqtt_password,
                                            client_id=self.client_id, announce=self.announce),
                                 self._on_message, self.hub.on_status, on_down=self.hub.link_down)
            if cfg.home_assistant and self.announce:
                self.ha = HomeAssistantBridge(cfg.site, self.registry, self.mqtt.publish, self.hub.command)
                self.mqtt.on_other, self.mqtt.other_topics = self._ha_message, self.ha.topics()
            self.mqtt.start()

    def _ha_message(self, topic: str, payload: bytes) -> None:
        if self.ha is not None:
            task = asyncio.get_running_loop().create_task(self.ha.on_message(topic, payload))
            self._ha_tasks.add(task)
            task.add_done_callback(self._ha_tasks.discard)

    def _add_serial(self, port: str, *, hello_timeout_s: float | None = None) -> None:
        link = SerialLink(port, self._on_message, self.hub.on_lost, hello_timeout_s=hello_timeout_s)
        self.serial[port] = link
        self._tasks.append(asyncio.create_task(link.run()))

    async def _rescan(self) -> None:
        while True:
            try:
                ports = await asyncio.to_thread(find_ports)
            except OSError as exc:
                log.debug("serial port scan failed: %s", exc)
                ports = []
            present = {device for device, _ in ports}
            for device in list(self.serial):
                link = self.serial[device]
                if link.not_a_board:
                    self._not_boards.add(device)
                    del self.serial[device]
            self._not_boards &= present  # unplugged: the next device on that path gets a fresh chance
            for device, desc in ports:
                if device not in self.serial and device not in self._not_boards:
                    log.info("trying %s (%s)", device, desc)
                    self._add_serial(device, hello_timeout_s=6.0)
            await asyncio.sleep(RESCAN_S)

    def phase(self, phase: str) -> None:
        """Pipeline phase -> status LEDs, without ever delaying the turn (latest phase wins)."""
        if phase not in LED_MODES:
            log.debug("no LED mode for phase %s", phase)
            return
        if self._led_task is not None and not self._led_task.done():
            self._led_task.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop: the LED is skipped, never the turn
            log.debug("LED phase %s outside the event loop", phase)
            return
        self._led_task = loop.create_task(self.hub.broadcast_led(phase))

    async def stop(self) -> None:
        for link in self.serial.values():
            link.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.mqtt is not None:
            self.mqtt.stop()
            await asyncio.sleep(0.05)  # let messages paho already handed to the loop land before the registry closes
        self.registry.close()
