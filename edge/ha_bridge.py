"""Home Assistant MQTT discovery for the boards the agent knows, and HA's commands relayed through the hub.

HA finds every usable entity as a retained config under ``homeassistant/<component>/hearth_<board>/<entity>/
config``: its state and availability come straight from the board's own retained topics, so a dashboard works
even while the agent restarts. Commands go to ``hearth/<site>/agent/ha/<board>/<entity>/set`` and the agent
turns them into protocol commands, so they get ids, retries, range checks and a line in the audit log
(source ``ha``). Quarantined boards are never announced, and their configs are withdrawn.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from edge.registry import Entity, Registry

log = logging.getLogger(__name__)

DISCOVERY_PREFIX = "homeassistant"
_COMPONENT = {"switch": "switch", "dimmer": "number", "cover": "cover", "lock": "lock", "contact": "binary_sensor",
              "temperature": "sensor", "humidity": "sensor"}
# HA payload -> protocol value, per kind
_COMMANDS: dict[str, dict[str, float]] = {
    "switch": {"ON": 1, "OFF": 0}, "cover": {"OPEN": 1, "CLOSE": 0}, "lock": {"LOCK": 1, "UNLOCK": 0},
}
_SET = re.compile(r"^hearth/([a-z0-9_-]+)/agent/ha/([a-z0-9_-]{1,32})/([a-z0-9_]{1,24})/set$")

Command = Callable[..., Coroutine[Any, Any, Any]]


def config_for(site: str, board: str, profile: str, fw: str, e: Entity) -> tuple[str, dict[str, Any]] | None:
    """(config topic, payload) for one entity, or None for kinds HA has no use for (status LED)."""
    component = _COMPONENT.get(e.info.kind)
    if component is None:
        return None
    base = f"hearth/{site}/{board}"
    uid = f"hearth_{board}_{e.id}"
    cfg: dict[str, Any] = {
        "name": e.info.name, "unique_id": uid, "object_id": uid,
        "state_topic": f"{base}/state/{e.id}",
        "availability": [{"topic": f"{base}/status"}, {"topic": f"hearth/{site}/agent/status"}],
        "availability_mode": "all" if e.info.is_output else "latest",
        "device": {"identifiers": [f"hearth_{board}"], "name": f"Hearth {profile or 'board'} {board[-4:]}",
                   "manufacturer": "Hearth", "model": profile or "board", "sw_version": fw,
                   "suggested_area": e.info.area.title() if e.info.area else None},
    }
    command_topic = f"hearth/{site}/agent/ha/{board}/{e.id}/set"
    kind = e.info.kind
    binary = "{{ 'ON' if value_json.val | float > 0 else 'OFF' }}"
    if kind == "switch":
        cfg.update(command_topic=command_topic, value_template=binary)
    elif kind == "dimmer":
        cfg.update(command_topic=command_topic, value_template="{{ value_json.val }}", min=e.info.min,
                   max=e.info.max, step=1, unit_of_measurement=e.info.unit or "%", mode="slider")
    elif kind == "cover":
        cfg.update(command_topic=command_topic, value_template="{{ 'open' if value_json.val | float > 0 else "
                   "'closed' }}", state_open="open", state_closed="closed", payload_stop=None, device_class="garage")
    elif kind == "lock":
        cfg.update(command_topic=command_topic, value_template="{{ 'LOCKED' if value_json.val | float > 0 else "
                   "'UNLOCKED' }}")
    elif kind == "contact":
        cfg.update(value_template=binary, device_class="door")
    else:
        cfg.update(value_template="{{ value_json.val }}", state_class="measurement",
                   device_class=kind, unit_of_measurement="°C" if kind == "temperature" else "%")
    return f"{DISCOVERY_PREFIX}/{component}/hearth_{board}/{e.id}/config", cfg


class HomeAssistantBridge:
    def __init__(self, site: str, registry: Registry, publish: Callable[..., None], command: Command) -> None:
        self.site = site
        self.registry = registry
        self.publish = publish
        self.command = command
        self._announced: dict[str, set[str]] = {}  # board -> config topics we published

    def topics(self) -> tuple[str, ...]:
        return (f"hearth/{self.site}/agent/ha/+/+/set", f"{DISCOVERY_PREFIX}/status")

    def announce(self, board: str | None = None) -> None:
        """Publish (retained) the configs of one board, or of all; withdraw those of quarantined boards."""
        for b in self.registry.boards():
            if board is not None and b.id != board:
                continue
            old = self._announced.pop(b.id, set())
            new: set[str] = set()
            if b.status != "quarantined":
                for e in self.registry.entities(b.id):
                    item = config_for(self.site, b.id, b.profile, b.fw, e)
                    if item is not None:
                        self.publish(item[0], json.dumps(item[1]), retain=True)
                        new.add(item[0])
            for gone in old - new:  # an entity that disappeared (reflash) or a board now quarantined
                self.publish(gone, b"", retain=True)
            self._announced[b.id] = new

    async def on_message(self, topic: str, payload: bytes) -> None:
        if topic in ("", f"{DISCOVERY_PREFIX}/status"):
            if topic == "" or payload == b"online":  # we (re)connected, or HA restarted: (re)announce all
                self.announce()
            return
        m = _SET.match(topic)
        if m is None or m.group(1) != self.site:
            log.warning("Home Assistant: ignored a command on %s", topic[:120])
            return
        board, entity = m.group(2), m.group(3)
        ent = next((e for e in self.registry.entities(board, usable_only=True) if e.id == entity), None)
        if ent is None:
            log.warning("Home Assistant: no usable entity %s.%s", board, entity)
            return
        text = payload.decode("utf-8", "replace").strip()
        value = _COMMANDS.get(ent.info.kind, {}).get(text.upper())
        if value is None and ent.info.kind == "dimmer":
            try:
                value = float(text)
            except ValueError:
                value = None
        if value is None:
            log.warning("Home Assistant: %r is not a command for %s (%s)", text[:40], entity, ent.info.kind)
            return
        result = await self.command(board, entity, "set", value, source="ha")
        if not result.ok:
            log.warning("Home Assistant command %s.%s=%s failed: %s", board, entity, value, result.error)
