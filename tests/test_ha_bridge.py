"""Home Assistant discovery and commands through a real Mosquitto, a simulated board and the agent's House."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import queue
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.house import House
from edge.settings import Settings, StorageSettings, replace
from tests.hw import RELAY_SPEC, BoardSim, Mosquitto

BOARD = "a1b2c3d4e5f6"


def test_discovery_and_commands(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    sim = BoardSim(tmp_path, RELAY_SPEC, board_id=BOARD, serial=False, mqtt_port=broker.port).start()
    s = dataclasses.replace(Settings(), storage=StorageSettings(home=str(tmp_path), database=str(tmp_path / "h.db")))
    s = replace(s, "boards", serial_ports=(), mqtt_port=broker.port)
    seen: queue.Queue[tuple[str, bytes]] = queue.Queue()
    ha = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fake-home-assistant")
    ha.on_message = lambda c, u, m: seen.put((m.topic, m.payload))
    ha.connect("127.0.0.1", broker.port)
    ha.subscribe("homeassistant/#")
    ha.loop_start()

    def configs(timeout: float = 5.0) -> dict[str, Any]:
        out: dict[str, Any] = {}
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                topic, payload = seen.get(timeout=0.2)
            except queue.Empty:
                if out:
                    break
                continue
            if topic.endswith("/config"):
                out[topic] = json.loads(payload) if payload else None
        return out

    async def go() -> None:
        house = House(s)
        house.registry.mark_provisioned(BOARD)
        await house.start()
        try:
            found = await asyncio.to_thread(configs)
            switch = found[f"homeassistant/switch/hearth_{BOARD}/kitchen_light/config"]
            assert switch["state_topic"] == f"hearth/home/{BOARD}/state/kitchen_light"
            assert {"topic": f"hearth/home/{BOARD}/status"} in switch["availability"]
            assert switch["device"]["identifiers"] == [f"hearth_{BOARD}"]
            number = found[f"homeassistant/number/hearth_{BOARD}/fan/config"]
            assert (number["min"], number["max"]) == (0, 100)
            sensor = found[f"homeassistant/sensor/hearth_{BOARD}/temp/config"]
            assert sensor["device_class"] == "temperature" and sensor["unit_of_measurement"] == "°C"
            assert not any("/talk/" in t for t in found if "switch" in t)  # a button is not a switch
            # HA switches the light: the command goes through the hub (id, ack, audit)
            ha.publish(switch["command_topic"], "ON", qos=1)
            deadline = time.monotonic() + 5
            while "out kitchen_light 1" not in sim.log:
                assert time.monotonic() < deadline, sim.log[-10:]
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            audit = house.registry.commands(1)[0]
            assert (audit["source"], audit["entity"], audit["status"]) == ("ha", "kitchen_light", "ok")
            ha.publish(number["command_topic"], "not a number", qos=1)  # refused with a log line, no command
            ha.publish(f"hearth/home/agent/ha/{BOARD}/nope/set", "ON", qos=1)
            await asyncio.sleep(0.5)
            assert len(house.registry.commands()) == 1
            # HA restarts and asks for discovery again
            while not seen.empty():
                seen.get_nowait()
            ha.publish("homeassistant/status", "online", qos=1)
            again = await asyncio.to_thread(configs)
            assert f"homeassistant/switch/hearth_{BOARD}/kitchen_light/config" in again
        finally:
            await house.stop()

    try:
        asyncio.run(go())
    finally:
        ha.loop_stop()
        ha.disconnect()
        sim.stop()
        broker.stop()


def test_quarantined_boards_are_not_announced(tmp_path: Path) -> None:
    from edge.ha_bridge import HomeAssistantBridge
    from edge.protocol import EntityInfo, Hello
    from edge.registry import Registry

    reg = Registry(tmp_path / "q.db")
    reg.board_hello(Hello("0badc0ffee00", "1", "p", 1, (EntityInfo("heater", "switch", "Heater"),)), link="mqtt",
                    trusted=False)
    published: list[tuple[str, Any]] = []

    async def no_command(*a: Any, **k: Any) -> None:
        raise AssertionError("no command expected")

    bridge = HomeAssistantBridge("home", reg, lambda t, p, retain: published.append((t, p)), no_command)
    bridge.announce()
    assert published == []
    reg.mark_provisioned("0badc0ffee00")
    reg.set_status("0badc0ffee00", "online")
    bridge.announce()
    assert [t for t, _ in published] == ["homeassistant/switch/hearth_0badc0ffee00/heater/config"]
