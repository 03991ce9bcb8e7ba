"""MQTT link (paho-mqtt): the site's topic tree (docs/protocol.md) in, board commands out.

paho's network loop runs in its own thread and reconnects with exponential backoff by itself; every
received message is validated there (size, topic shape, JSON, protocol version, topic/payload agreement)
and handed to the event loop with ``call_soon_threadsafe``. Bad input is dropped with a logged reason and
counted; it never reaches the registry. The agent announces itself with a retained ``online`` and a Last Will
``offline`` on ``hearth/<site>/agent/status``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.errors import HearthError
from edge.protocol import BOARD_ID, ENTITY_ID, MAX_MESSAGE, Hello, Message, ProtocolError, State, decode, encode

log = logging.getLogger(__name__)

OnMessage = Callable[[str, Message, "MqttLink"], None]
OnStatus = Callable[[str, bool, "MqttLink"], None]
_BOARD_TOPICS = ("status", "hello", "state/+", "event", "tele", "ack")


class MqttLinkError(HearthError):
    """The broker cannot be reached or refused us."""


@dataclass(frozen=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    site: str = "home"
    username: str = ""
    password: str = ""
    client_id: str = "hearth-agent"
    keepalive: int = 15
    announce: bool = True  # publish the agent's availability (false for short-lived CLI commands)


def _no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Commands and acks are tiny: with Nagle on, each waits ~40 ms for the peer's delayed ACK."""
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class MqttLink:
    name = "mqtt"

    def __init__(self, config: MqttConfig, on_message: OnMessage, on_status: OnStatus,
                 on_down: Callable[[MqttLink], None] | None = None,
                 on_other: Callable[[str, bytes], None] | None = None,
                 other_topics: tuple[str, ...] = ()) -> None:
        """``other_topics``/``on_other``: extra subscriptions outside the board tree (the Home Assistant bridge);
        their messages are handed over raw, on the event loop, size-checked."""
        if not BOARD_ID.match(config.site):
            raise MqttLinkError(f"[boards] site {config.site!r} must match [a-z0-9_-]{{1,32}}")
        self.config = config
        self.prefix = f"hearth/{config.site}"
        self.on_message = on_message
        self.on_status = on_status
        self.on_down = on_down
        self.on_other = on_other
        self.other_topics = other_topics
        self.connected = asyncio.Event()
        self.rejected: Counter[str] = Counter()  # reason -> count, for `hearth doctor` and the tests
        self._loop: asyncio.AbstractEventLoop | None = None
        self._topic = re.compile(rf"^{re.escape(self.prefix)}/([^/]+)/(status|hello|event|tele|ack|state/([^/]+))$")
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.client_id, protocol=mqtt.MQTTv311)
        if config.username:
            c.username_pw_set(config.username, config.password or None)
        if config.announce:
            c.will_set(f"{self.prefix}/agent/status", "offline", qos=1, retain=True)
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.max_queued_messages_set(256)  # bounded: commands are not queued while offline anyway
        c.on_socket_open = _no_delay
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_raw
        self.client = c

    # --- lifecycle (event loop side) ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho keeps reconnecting with backoff until ``stop``."""
        self._loop = asyncio.get_running_loop()
        self.client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive)
        self.client.loop_start()

    async def wait_connected(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.connected.wait(), timeout)
        except TimeoutError:
            raise MqttLinkError(f"no connection to the MQTT broker at {self.config.host}:{self.config.port} "
                                f"after {timeout:.0f} s: is it running, and are [boards] mqtt_* right?") from None

    def stop(self) -> None:
        if self.client.is_connected() and self.config.announce:
            self.client.publish(f"{self.prefix}/agent/status", "offline", qos=1, retain=True).wait_for_publish(1)
        self.client.disconnect()
        self.client.loop_stop()

    async def send(self, board: str, msg: Message) -> None:
        """Publish a command: QoS 0 and never retained (docs/protocol.md).

        QoS 1 would let paho re-send a command after a reconnect, minutes after the user was told it failed;
        the hub's own retries (same id, deduplicated by the board) are the delivery guarantee instead.
        """
        if not self.connected.is_set():
            raise MqttLinkError("not connected to the MQTT broker")
        info = self.client.publish(f"{self.prefix}/{board}/cmd", encode(msg), qos=0, retain=False)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise MqttLinkError(f"publish to {board} failed: {mqtt.error_string(info.rc)}")

    def publish(self, topic: str, payload: str | bytes, *, retain: bool, qos: int = 1) -> None:
        """Publish outside the command path (discovery configs); dropped with a log line when offline."""
        if not self.connected.is_set():
            log.debug("not connected: %s not published", topic)
            return
        self.client.publish(topic, payload, qos=qos, retain=retain)

    # --- paho thread side --------------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the connection: %s (check [boards] mqtt_username/mqtt_password)", reason)
            return
        # Subscriptions are not kept by a clean session: (re)subscribe on every connect.
        client.subscribe([(f"{self.prefix}/+/{t}", 1) for t in _BOARD_TOPICS] + [(t, 1) for t in self.other_topics])
        if self.on_other is not None:
            self._call(self.on_other, "", b"")  # "(re)connected": the bridge republishes what it owns
        if self.config.announce:
            client.publish(f"{self.prefix}/agent/status", "online", qos=1, retain=True)
        log.info("MQTT connected to %s:%d", self.config.host, self.config.port)
        self._call(self.connected.set)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        log.warning("MQTT disconnected (%s); paho reconnects with backoff", reason)
        self._call(self.connected.clear)
        if self.on_down is not None:
            self._call(self.on_down, self)

    def _on_raw(self, client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        if self.on_other is not None and any(mqtt.topic_matches_sub(t, m.topic) for t in self.other_topics):
            if len(m.payload) > MAX_MESSAGE:
                self._call(self._reject, m.topic, f"payload of {len(m.payload)} bytes is over the limit")
            else:
                self._call(self.on_other, m.topic, bytes(m.payload))
            return
        try:
            board, msg = self.parse(m.topic, bytes(m.payload))
        except ProtocolError as exc:
            reason = str(exc)
            self._call(self._reject, m.topic, reason)
            return
        if msg is None:
            return
        if isinstance(msg, bool):
            self._call(self.on_status, board, msg, self)
        else:
            self._call(self.on_message, board, msg, self)

    def parse(self, topic: str, payload: bytes) -> tuple[str, Message | bool | None]:
        """(board, message) for a topic in the tree; ``True/False`` for availability; raises ProtocolError."""
        if len(payload) > MAX_MESSAGE:
            raise ProtocolError(f"payload of {len(payload)} bytes is over the {MAX_MESSAGE}-byte limit")
        match = self._topic.match(topic)
        if match is None:
            raise ProtocolError("topic is not in the hearth tree")
        board, kind, entity = match.group(1), match.group(2), match.group(3)
        if board == "agent":
            return board, None  # our own availability (and other agents')
        if not BOARD_ID.match(board):
            raise ProtocolError(f"board id {board!r} in the topic must match [a-z0-9_-]{{1,32}}")
        if kind == "status":
            if payload in (b"online", b"offline"):
                return board, payload == b"online"
            if payload == b"":
                return board, None  # retained status cleared
            raise ProtocolError("status payload must be online or offline")
        if not payload:
            return board, None  # a retained message being deleted
        msg = decode(payload)
        if isinstance(msg, Hello) and msg.board != board:
            raise ProtocolError(f"hello from board {msg.board!r} published under {board!r}")
        if kind.startswith("state/"):
            if not isinstance(msg, State) or entity is None or not ENTITY_ID.match(entity) or msg.e != entity:
                raise ProtocolError("state topic and payload disagree")
        elif kind != msg.T:
            raise ProtocolError(f"a {msg.T!r} message on the {kind!r} topic")
        return board, msg

    def _reject(self, topic: str, reason: str) -> None:
        self.rejected[reason.split(" (")[0]] += 1
        log.warning("MQTT: dropped a message on %s: %s", topic[:120], reason)

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)
