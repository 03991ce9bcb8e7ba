"""The agent's side of the boards: routes messages from both links into the registry and sends commands.

A command gets a fresh correlation id, an audit row, and is retried with the *same* id until an ack arrives
(the board executes an id once and re-sends the remembered ack), so a lost ack never toggles a relay twice.
Late and duplicate acks find no waiting command and are dropped. A board reachable over both links is
commanded over serial (no broker in the path).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from edge.errors import HearthError
from edge.protocol import Ack, Command, Event, Heartbeat, Hello, Message, State, Tele
from edge.registry import Registry, RegistryError

log = logging.getLogger(__name__)


class Link(Protocol):
    """SerialLink or MqttLink."""

    name: str

    async def send(self, board: str, msg: Message) -> None: ...


@dataclass(frozen=True)
class CommandResult:
    ok: bool
    board: str
    entity: str
    value: float | str | None = None
    error: str = ""  # board error code, "timeout", "offline", "quarantined", "unknown_entity"
    attempts: int = 0
    latency_ms: float = 0.0


class DeviceHub:
    def __init__(self, registry: Registry, *, ack_timeout_s: float = 0.5, attempts: int = 3,
                 synonyms: Callable[[str], dict[str, tuple[str, ...]]] | None = None) -> None:
        self.registry = registry
        self.ack_timeout_s = ack_timeout_s
        self.attempts = attempts
        self.synonyms = synonyms or (lambda profile: {})
        self.on_button: Callable[[str, str, str], None] | None = None  # (board, entity, gesture)
        self.on_hello: Callable[[str], None] | None = None
        self._links: dict[str, dict[str, Link]] = {}
        self._pending: dict[str, tuple[str, asyncio.Future[Ack]]] = {}  # id -> (board it was sent to, ack)
        self._led_ids: deque[str] = deque(maxlen=64)
        self._mqtt_online: dict[str, bool] = {}  # from the retained status topic (the board's Last Will)
        self.boots: dict[str, int] = {}
        self._touched: dict[str, float] = {}
        self.stray_acks = 0
        self.spoofed_acks = 0

    # --- from the links ----------------------------------------------------------------------------------------

    def on_message(self, board: str, msg: Message, link: Link) -> None:
        try:
            self._handle(board, msg, link)
        except RegistryError as exc:  # a full disk must not take the link down; the message is lost, logged
            log.error("board %s: %s", board, exc)

    def _reachable(self, board: str, link: Link) -> bool:
        """Serial: the board is on the wire. MQTT: only while its availability topic says online, because the
        broker replays a retained hello and states for a board that is long gone."""
        return link.name != "mqtt" or self._mqtt_online.get(board, False)

    def _handle(self, board: str, msg: Message, link: Link) -> None:
        if isinstance(msg, Hello):
            self.boots[board] = msg.boot
            reachable = self._reachable(board, link)
            status = self.registry.board_hello(msg, link=link.name, trusted=link.name == "serial",
                                               online=reachable or bool(self._links.get(board)),
                                               synonyms=self.synonyms(msg.profile))
            if reachable:
                self._links.setdefault(board, {})[link.name] = link
            log.info("board %s (%s, fw %s, boot %d) is %s over %s", board, msg.profile, msg.fw, msg.boot, status,
                     link.name)
            if self.on_hello:
                self.on_hello(board)
            return
        if link.name not in self._links.get(board, {}):
            # A link that reconnected without a fresh hello (broker restart) is usable once the board is known.
            if self.registry.board(board) is None or not self._reachable(board, link):
                log.debug("board %s: %s before hello/availability, ignored", board, msg.T)
                return
            self._links.setdefault(board, {})[link.name] = link
        if isinstance(msg, Ack):
            self._ack(board, msg)
        elif isinstance(msg, State):
            self.registry.set_state(board, msg.e, msg.val)
        elif isinstance(msg, Event):
            if self.on_button:
                self.on_button(board, msg.e, msg.ev)
        elif isinstance(msg, (Tele, Heartbeat)):
            now = time.monotonic()
            if now - self._touched.get(board, 0.0) > 1.0:
                self._touched[board] = now
                self.registry.touch(board)

    def _ack(self, board: str, msg: Ack) -> None:
        pending = self._pending.get(msg.id)
        if pending is not None and pending[0] != board:
            self.spoofed_acks += 1  # a board answering for another board's command: never believed
            log.warning("board %s sent an ack for a command to %s: ignored", board, pending[0])
        elif pending is None or pending[1].done():
            if msg.id not in self._led_ids:
                self.stray_acks += 1
                log.info("board %s: late or duplicate ack %s ignored", board, msg.id)
        else:
            pending[1].set_result(msg)

    def on_lost(self, board: str, link: Link) -> None:
        links = self._links.get(board, {})
        if links.get(link.name) is link:
            del links[link.name]
        if not links:
            try:
                self.registry.set_status(board, "offline")
            except RegistryError as exc:
                log.error("board %s: %s", board, exc)
            log.warning("board %s is offline", board)

    def on_status(self, board: str, online: bool, link: Link) -> None:
        self._mqtt_online[board] = online
        if online:
            if self.registry.board(board) is not None:
                self._links.setdefault(board, {})[link.name] = link
                self.registry.set_status(board, "online")
        else:
            self.on_lost(board, link)

    def link_down(self, link: Link) -> None:
        """The broker connection dropped: every board reached through it is unreachable until it is back."""
        for board, links in list(self._links.items()):
            if links.get(link.name) is link:
                self.on_lost(board, link)
        if link.name == "mqtt":
            self._mqtt_online.clear()

    def online(self, board: str) -> bool:
        return bool(self._links.get(board))

    # --- commands ----------------------------------------------------------------------------------------------

    async def command(self, board: str, entity: str, action: str, val: float | None = None, *,
                      mode: str | None = None, source: str = "api", turn_id: int | None = None,
                      attempts: int | None = None) -> CommandResult:
        """Send, wait for the ack, retry with the same id; every outcome is in the audit log."""
        cid = os.urandom(6).hex()  # unguessable: a board only ever sees the ids of its own commands
        row = self.registry.command_sent(cid=cid, source=source, turn_id=turn_id, board=board, entity=entity,
                                         action=action, value=val if mode is None else mode)
        t0 = time.perf_counter()
        result = await self._command(cid, board, entity, action, val, mode, attempts or self.attempts, t0)
        self.registry.command_done(row, status="ok" if result.ok else "failed", result=result.error or "ok",
                                   attempts=result.attempts, latency_ms=result.latency_ms)
        if not result.ok:
            log.warning("command %s %s.%s failed: %s", action, board, entity, result.error)
        return result

    async def _command(self, cid: str, board: str, entity: str, action: str, val: float | None, mode: str | None,
                       attempts: int, t0: float) -> CommandResult:
        info = self.registry.board(board)
        kind = next((e.info.kind for e in self.registry.entities(board) if e.id == entity), None)
        if info is None or kind is None:
            return CommandResult(False, board, entity, error="unknown_entity")
        if info.status == "quarantined":
            return CommandResult(False, board, entity, error="quarantined")
        msg = Command(id=cid, e=entity, a=action, val=val, mode=mode)
        fut: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[cid] = (board, fut)
        boot = self.boots.get(board)
        repeatable = action in ("set", "get", "led") and kind != "cover"
        tried = 0
        try:
            for tried in range(1, attempts + 1):
                if tried > 1 and not repeatable and self.boots.get(board) != boot:
                    # A rebooted board forgot the id, so a retry runs again: fine for "set to 70", not for a
                    # toggle or a door opener's relay pulse, which would undo or reverse the first run.
                    return CommandResult(False, board, entity, error="rebooted", attempts=tried - 1,
                                         latency_ms=(time.perf_counter() - t0) * 1000)
                link = self._pick_link(board)
                if link is not None:
                    try:
                        await link.send(board, msg)
                    except HearthError as exc:
                        log.info("command %s to %s: send failed (%s), retrying", cid, board, exc)
                try:
                    ack = await asyncio.wait_for(asyncio.shield(fut), self.ack_timeout_s)
                except TimeoutError:
                    continue
                if not ack.ok and ack.err == "busy" and tried < attempts:
                    # the board is mid-action (a cover's relay pulse) and did not remember this id: ask again
                    fut = asyncio.get_running_loop().create_future()
                    self._pending[cid] = (board, fut)
                    await asyncio.sleep(self.ack_timeout_s)
                    continue
                ms = (time.perf_counter() - t0) * 1000
                if ack.ok:
                    if ack.val is not None:
                        self.registry.set_state(board, entity, ack.val)
                    return CommandResult(True, board, entity, value=ack.val, attempts=tried, latency_ms=ms)
                return CommandResult(False, board, entity, error=ack.err or "error", attempts=tried, latency_ms=ms)
        finally:
            self._pending.pop(cid, None)
        error = "timeout" if self.online(board) else "offline"
        return CommandResult(False, board, entity, error=error, attempts=tried,
                             latency_ms=(time.perf_counter() - t0) * 1000)

    def _pick_link(self, board: str) -> Link | None:
        links = self._links.get(board, {})
        return links.get("serial") or links.get("mqtt")

    async def broadcast_led(self, mode: str) -> None:
        """Show listening/thinking/speaking on every status LED; best effort, one try, no audit row."""
        for e in self.registry.entities(usable_only=True):
            if e.info.kind == "status_led" and self.online(e.board):
                link = self._pick_link(e.board)
                msg = Command(id=os.urandom(6).hex(), e=e.id, a="led", mode=mode)
                self._led_ids.append(msg.id)
                try:
                    await link.send(e.board, msg)  # type: ignore[union-attr]
                except HearthError as exc:
                    log.debug("LED %s on %s: %s", mode, e.board, exc)

    async def maintain(self, interval_s: float = 0.1, prune_every_s: float = 3600) -> None:
        """Flush telemetry in batches and prune it by age/size; one task for the agent's lifetime."""
        last_prune = 0.0
        while True:
            try:
                self.registry.flush_telemetry()
                if time.monotonic() - last_prune > prune_every_s:
                    last_prune = time.monotonic()
                    self.registry.prune_telemetry()
            except RegistryError as exc:
                log.error("%s", exc)
            await asyncio.sleep(interval_s)
