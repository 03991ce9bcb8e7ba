"""Agent ↔ board over a real pseudo-terminal and a real Mosquitto, with the simulator built from the firmware core."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.devices import DeviceHub
from edge.mqtt_link import MqttConfig, MqttLink
from edge.protocol import Hello, Message
from edge.registry import Registry
from edge.serial_link import SerialLink
from tests.hw import GARAGE_SPEC, RELAY_SPEC, BoardSim, Mosquitto

BOARD = "a1b2c3d4e5f6"


async def until(cond: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Agent:
    """Registry + hub + links, as House wires them, on a scratch database."""

    def __init__(self, tmp: Path, *, ack_timeout_s: float = 0.5, attempts: int = 3) -> None:
        self.registry = Registry(tmp / "agent.db")
        self.hub = DeviceHub(self.registry, ack_timeout_s=ack_timeout_s, attempts=attempts)
        self.buttons: list[tuple[str, str, str]] = []
        self.hub.on_button = lambda b, e, g: self.buttons.append((b, e, g))
        self.hellos: list[Hello] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.serial: SerialLink | None = None
        self.mqtt: MqttLink | None = None

    def on_message(self, board: str, msg: Message, link: Any) -> None:
        if isinstance(msg, Hello):
            self.hellos.append(msg)
        self.hub.on_message(board, msg, link)

    def start_serial(self, port: Path) -> SerialLink:
        self.serial = SerialLink(str(port), self.on_message, self.hub.on_lost, backoff_max_s=0.5)
        self.tasks.append(asyncio.create_task(self.serial.run()))
        return self.serial

    def start_mqtt(self, port: int, site: str = "home") -> MqttLink:
        self.mqtt = MqttLink(MqttConfig(port=port, site=site, client_id=f"agent-{time.monotonic_ns()}"),
                             self.on_message, self.hub.on_status)
        self.mqtt.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.mqtt.start()
        return self.mqtt

    def online(self, board: str = BOARD) -> bool:
        b = self.registry.board(board)
        return b is not None and b.status == "online" and self.hub.online(board)

    def state(self, entity: str, board: str = BOARD) -> Any:
        return {e.id: e.state for e in self.registry.entities(board)}.get(entity)

    async def stop(self) -> None:
        if self.serial:
            self.serial.stop()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.mqtt:
            self.mqtt.stop()
        self.registry.close()


@pytest.fixture
def sim_factory(tmp_path: Path) -> AsyncIterator[Callable[..., BoardSim]]:
    sims: list[BoardSim] = []

    def make(spec: str = RELAY_SPEC, **kw: Any) -> BoardSim:
        s = BoardSim(tmp_path, spec, board_id=kw.pop("board_id", BOARD), **kw).start()
        sims.append(s)
        return s

    yield make  # type: ignore[misc]
    for s in sims:
        s.stop()


@pytest.fixture
def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    b = Mosquitto(tmp_path).start()
    yield b  # type: ignore[misc]
    b.stop()


def outs(sim: BoardSim, entity: str) -> list[str]:
    return [line for line in sim.log if line.startswith(f"out {entity} ")]


# --- serial --------------------------------------------------------------------------------------------------------

def test_serial_hello_command_ack_state(tmp_path: Path, sim_factory: Callable[..., BoardSim]) -> None:
    sim = sim_factory()

    async def go() -> None:
        agent = Agent(tmp_path)
        agent.start_serial(sim.pty_link)
        try:
            await until(agent.online, what="board online over serial")
            ents = {e.id: e.info for e in agent.registry.entities(BOARD)}
            assert ents["kitchen_light"].kind == "switch" and ents["talk"].ptt and ents["temp"].unit == "C"
            r = await agent.hub.command(BOARD, "kitchen_light", "set", 1, source="test")
            assert r.ok and r.value == 1 and r.attempts == 1
            await until(lambda: outs(sim, "kitchen_light") == ["out kitchen_light 1"], what="the relay output")
            assert agent.state("kitchen_light") == 1
            bad = await agent.hub.command(BOARD, "temp", "set", 5)
            assert not bad.ok and bad.error == "read_only"
            rng = await agent.hub.command(BOARD, "fan", "set", 250)
            assert not rng.ok and rng.error == "bad_value"
            audit = agent.registry.commands()
            assert [c["result"] for c in audit][:3] == ["bad_value", "read_only", "ok"]
            sim.send("set temp 23.5")
            await until(lambda: agent.state("temp") == 23.5, what="temperature report")
            sim.send("press talk")
            await until(lambda: agent.buttons, what="button event")
            assert agent.buttons[0] == (BOARD, "talk", "press")
            await agent.hub.broadcast_led("listening")
            await until(lambda: "led listening" in sim.log, what="status LED in listening mode")
        finally:
            await agent.stop()

    asyncio.run(go())


def test_serial_garbage_and_boot_noise_then_recovery(tmp_path: Path, sim_factory: Callable[..., BoardSim]) -> None:
    sim = sim_factory(extra=["--boot-noise"])

    async def go() -> None:
        agent = Agent(tmp_path)
        link = agent.start_serial(sim.pty_link)
        try:
            await until(agent.online, what="board online despite boot noise")
            assert link.decoder.bad >= 1  # the ROM's boot text was dropped as a bad frame
            before = {e.id for e in agent.registry.entities(BOARD)}
            bad_before = link.decoder.bad
            for _ in range(5):
                sim.send("noise 400")
            await until(lambda: link.decoder.bad > bad_before, what="garbage counted as bad frames")
            r = await agent.hub.command(BOARD, "kitchen_light", "toggle")
            assert r.ok
            assert {e.id for e in agent.registry.entities(BOARD)} == before  # nothing misparsed into the registry
            assert agent.hub.stray_acks == 0 and agent.state("kitchen_light") == 1
        finally:
            await agent.stop()

    asyncio.run(go())


def test_unplug_replug_and_reboot(tmp_path: Path, sim_factory: Callable[..., BoardSim]) -> None:
    sim = sim_factory()

    async def go() -> None:
        agent = Agent(tmp_path)
        agent.start_serial(sim.pty_link)
        try:
            await until(agent.online, what="online")
            boot = agent.hellos[-1].boot
            sim.send("unplug")
            await until(lambda: not agent.online(), what="offline after unplug")
            r = await agent.hub.command(BOARD, "kitchen_light", "set", 1, attempts=1)
            assert not r.ok and r.error == "offline"
            sim.send("plug")
            await until(agent.online, timeout=8, what="back online after replug")
            assert agent.hellos[-1].boot == boot + 1
            assert (await agent.hub.command(BOARD, "kitchen_light", "set", 1)).ok
            sim.send("reboot")
            await until(lambda: agent.hellos[-1].boot == boot + 2, what="hello after reboot")
            assert (await agent.hub.command(BOARD, "kitchen_light", "set", 0)).ok
        finally:
            await agent.stop()

    asyncio.run(go())


def test_lost_ack_is_retried_with_the_same_id_and_executed_once(tmp_path: Path,
                                                                sim_factory: Callable[..., BoardSim]) -> None:
    sim = sim_factory(extra=["--drop-acks", "2"])

    async def go() -> None:
        agent = Agent(tmp_path, ack_timeout_s=0.3, attempts=4)
        agent.start_serial(sim.pty_link)
        try:
            await until(agent.online, what="online")
            r = await agent.hub.command(BOARD, "kitchen_light", "toggle")
            assert r.ok and r.attempts == 3
            await asyncio.sleep(0.2)
            assert outs(sim, "kitchen_light") == ["out kitchen_light 1"]  # a toggle executed twice would undo itself
        finally:
            await agent.stop()

    asyncio.run(go())


def test_late_ack_after_retry_is_ignored(tmp_path: Path, sim_factory: Callable[..., BoardSim]) -> None:
    sim = sim_factory(extra=["--ack-delay-ms", "450"])

    async def go() -> None:
        agent = Agent(tmp_path, ack_timeout_s=0.3, attempts=3)
        agent.start_serial(sim.pty_link)
        try:
            await until(agent.online, what="online")
            r = await agent.hub.command(BOARD, "kitchen_light", "toggle")
            assert r.ok and r.attempts >= 2
            await until(lambda: agent.hub.stray_acks >= 1, what="the duplicate ack")
            await asyncio.sleep(0.2)
            assert outs(sim, "kitchen_light") == ["out kitchen_light 1"]
            no = await agent.hub.command(BOARD, "kitchen_light", "set", 0, attempts=1)
            assert not no.ok and no.error == "timeout"  # 450 ms > 300 ms: a single attempt times out
        finally:
            await agent.stop()

    asyncio.run(go())


# --- MQTT ----------------------------------------------------------------------------------------------------------

def test_mqtt_command_state_lwt_and_broker_restart(tmp_path: Path, sim_factory: Callable[..., BoardSim],
                                                   broker: Mosquitto) -> None:
    sim = sim_factory(serial=False, mqtt_port=broker.port)
    sim.wait_for("mqtt connected", 5)

    async def go() -> None:
        agent = Agent(tmp_path)
        agent.registry.mark_provisioned(BOARD)
        agent.start_mqtt(broker.port)
        try:
            await until(agent.online, what="board online over MQTT (retained hello)")
            r = await agent.hub.command(BOARD, "fan", "set", 40)
            assert r.ok and r.value == 40 and agent.state("fan") == 40
            sim.send("mqtt-kill")  # no DISCONNECT: the broker publishes the Last Will
            await until(lambda: not agent.hub.online(BOARD), timeout=30, what="offline via Last Will")
            await until(agent.online, timeout=15, what="board reconnects")
            broker.stop()
            await until(lambda: not agent.mqtt.connected.is_set(), what="agent sees the broker go")  # type: ignore[union-attr]
            broker.start()
            await until(lambda: agent.mqtt.connected.is_set(), timeout=15, what="agent reconnects")  # type: ignore[union-attr]
            await until(agent.online, timeout=15, what="board back after broker restart")
            assert (await agent.hub.command(BOARD, "kitchen_light", "set", 1)).ok
        finally:
            await agent.stop()

    asyncio.run(go())


def test_mqtt_bad_payloads_and_unknown_boards(tmp_path: Path, broker: Mosquitto,
                                              sim_factory: Callable[..., BoardSim]) -> None:
    async def go() -> None:
        agent = Agent(tmp_path)
        link = agent.start_mqtt(broker.port)
        await until(link.connected.is_set, what="agent connected")
        pub = mqtt.Client(CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        try:
            hello = {"v": 1, "t": "hello", "board": "0badc0ffee00", "fw": "x", "profile": "p", "boot": 1,
                     "entities": [{"id": "heater", "kind": "switch", "name": "Heater"}]}
            for topic, payload in [
                ("hearth/home/0badc0ffee00/tele", b"{not json"),
                ("hearth/home/0badc0ffee00/tele", b"x" * 5000),
                ("hearth/home/0badc0ffee00/state/heater", json.dumps({"v": 1, "t": "state", "e": "other",
                                                                       "val": 1}).encode()),
                ("hearth/home/1111111111aa/hello", json.dumps(hello).encode()),  # board id spoofing
                ("hearth/home/0badc0ffee00/status", b"maybe"),
            ]:
                pub.publish(topic, payload, qos=1).wait_for_publish(2)
            await until(lambda: sum(link.rejected.values()) >= 5, what="5 rejections")
            assert agent.registry.boards() == []
            pub.publish("hearth/home/0badc0ffee00/hello", json.dumps(hello), qos=1).wait_for_publish(2)
            await until(lambda: agent.registry.board("0badc0ffee00"), what="unknown board listed")
            assert agent.registry.board("0badc0ffee00").status == "quarantined"  # type: ignore[union-attr]
            r = await agent.hub.command("0badc0ffee00", "heater", "set", 1)
            assert not r.ok and r.error == "quarantined"
        finally:
            pub.loop_stop()
            pub.disconnect()
            await agent.stop()

    asyncio.run(go())


def test_board_on_both_links_prefers_serial(tmp_path: Path, sim_factory: Callable[..., BoardSim],
                                            broker: Mosquitto) -> None:
    sim = sim_factory(GARAGE_SPEC, mqtt_port=broker.port)

    async def go() -> None:
        agent = Agent(tmp_path)
        agent.start_mqtt(broker.port)
        agent.start_serial(sim.pty_link)
        try:
            await until(lambda: agent.online() and len(agent.hub._links.get(BOARD, {})) == 2, what="both links")
            r = await agent.hub.command(BOARD, "garage_door", "set", 1)
            assert r.ok
            # the cover's relay pulses for 500 ms: a command meanwhile gets "busy" and is retried, same id
            busy = await agent.hub.command(BOARD, "garage_door", "set", 0)
            assert busy.ok and busy.attempts >= 2
            assert (await agent.hub.command(BOARD, "garage_door", "set", 1)).ok
            sim.send("unplug")  # serial gone: MQTT still reaches the board
            await until(lambda: "serial" not in agent.hub._links.get(BOARD, {}), what="serial dropped")
            assert (await agent.hub.command(BOARD, "garage_door", "set", 0)).ok
        finally:
            await agent.stop()

    asyncio.run(go())


def test_board_reboot_mid_command(tmp_path: Path, sim_factory: Callable[..., BoardSim]) -> None:
    """The board reboots after receiving a command but before acking it: the retry (same id) lands on the
    rebooted board, which has forgotten the id, so it executes once more; a `set` is idempotent by value."""
    sim = sim_factory(extra=["--ack-delay-ms", "1500"])

    async def go() -> None:
        agent = Agent(tmp_path, ack_timeout_s=2.5, attempts=3)
        agent.start_serial(sim.pty_link)
        try:
            await until(agent.online, what="online")
            boot = agent.hellos[-1].boot
            task = asyncio.create_task(agent.hub.command(BOARD, "fan", "set", 70))
            await until(lambda: any(line.startswith("out fan 70") for line in sim.log), what="fan set")
            sim.send("reboot")  # the delayed ack dies with the old boot; outputs come back off
            r = await task
            assert r.ok and r.value == 70 and r.attempts >= 2
            assert agent.hellos[-1].boot == boot + 1
            assert sim.log.count("out fan 70") == 2 and agent.state("fan") == 70
        finally:
            await agent.stop()

    asyncio.run(go())


@pytest.mark.parametrize(("spec", "entity", "action", "value"), [
    (GARAGE_SPEC, "garage_door", "set", 1),  # a second pulse of the opener's relay stops or reverses the door
    (RELAY_SPEC, "kitchen_light", "toggle", None),  # a second toggle undoes the first
])
def test_unrepeatable_command_is_not_retried_after_a_reboot(tmp_path: Path, sim_factory: Callable[..., BoardSim],
                                                             spec: str, entity: str, action: str,
                                                             value: float | None) -> None:
    sim = sim_factory(spec, extra=["--ack-delay-ms", "1500"])

    async def go() -> None:
        agent = Agent(tmp_path, ack_timeout_s=2.5, attempts=3)
        agent.start_serial(sim.pty_link)
        try:
            await until(agent.online, what="online")
            boot = agent.hellos[-1].boot
            task = asyncio.create_task(agent.hub.command(BOARD, entity, action, value))
            await until(lambda: any(line.startswith(f"out {entity}") for line in sim.log), what="executed")
            sim.send("reboot")
            await until(lambda: agent.hellos[-1].boot == boot + 1, what="hello after the reboot")
            r = await task
            assert not r.ok and r.error == "rebooted"
            assert agent.registry.commands(1)[0]["result"] == "rebooted"
            assert sim.log.count(f"out {entity} 1") == 1  # executed once (the reboot's reset prints a 0)
        finally:
            await agent.stop()

    asyncio.run(go())


def test_an_ack_from_another_board_is_not_believed(tmp_path: Path, sim_factory: Callable[..., BoardSim],
                                                   broker: Mosquitto) -> None:
    """A compromised board answering for a lock it does not own must not make the agent say "locked"."""
    sim_factory(serial=False, mqtt_port=broker.port, extra=["--drop-acks", "10"])
    evil = "0badc0ffee00"

    async def go() -> None:
        agent = Agent(tmp_path, ack_timeout_s=0.4, attempts=2)
        agent.registry.mark_provisioned(BOARD)
        agent.registry.mark_provisioned(evil)  # a provisioned board of this house, gone rogue
        link = agent.start_mqtt(broker.port)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        evil_hello = {"v": 1, "t": "hello", "board": evil, "fw": "x", "profile": "p", "boot": 1,
                      "entities": [{"id": "lamp", "kind": "switch", "name": "Lamp"}]}
        pub.publish(f"hearth/home/{evil}/status", "online", qos=1, retain=True).wait_for_publish(2)
        pub.publish(f"hearth/home/{evil}/hello", json.dumps(evil_hello), qos=1, retain=True).wait_for_publish(2)
        sniffed: list[str] = []
        spy = mqtt.Client(CallbackAPIVersion.VERSION2)
        spy.on_message = lambda c, u, m: sniffed.append(json.loads(m.payload)["id"])
        spy.connect("127.0.0.1", broker.port)
        spy.subscribe(f"hearth/home/{BOARD}/cmd")
        spy.loop_start()
        try:
            await until(agent.online, what="online")
            await until(lambda: agent.online(evil), what="the rogue board online")
            task = asyncio.create_task(agent.hub.command(BOARD, "kitchen_light", "set", 1))
            await until(lambda: sniffed, what="the command id on the wire")
            forged = {"v": 1, "t": "ack", "id": sniffed[0], "ok": True, "val": 1}
            pub.publish(f"hearth/home/{evil}/ack", json.dumps(forged), qos=1)
            r = await task
            assert not r.ok and r.error == "timeout"  # the real board dropped its acks; the forgery was refused
            assert agent.hub.spoofed_acks >= 1
            assert link.connected.is_set()
        finally:
            for c in (pub, spy):
                c.loop_stop()
                c.disconnect()
            await agent.stop()

    asyncio.run(go())


def test_agent_restart_does_not_revive_an_offline_board(tmp_path: Path, sim_factory: Callable[..., BoardSim],
                                                        broker: Mosquitto) -> None:
    """The broker replays the retained hello and states of a board that is gone; only its status counts."""
    sim = sim_factory(serial=False, mqtt_port=broker.port)
    sim.wait_for("mqtt connected", 5)
    sim.send("mqtt-kill")  # the broker publishes the board's Last Will: retained offline
    time.sleep(0.5)
    sim.kill()

    async def go() -> None:
        agent = Agent(tmp_path)
        agent.registry.mark_provisioned(BOARD)
        link = agent.start_mqtt(broker.port)
        try:
            await until(lambda: agent.registry.board(BOARD) and agent.registry.entities(BOARD), timeout=5,
                        what="retained hello registered")
            await asyncio.sleep(0.5)
            assert not agent.hub.online(BOARD) and agent.registry.board(BOARD).status == "offline"  # type: ignore[union-attr]
            r = await agent.hub.command(BOARD, "kitchen_light", "set", 1, attempts=1)
            assert not r.ok and r.error == "offline"
            assert link.connected.is_set()
        finally:
            await agent.stop()

    asyncio.run(go())


def test_bit_flips_on_the_live_line(tmp_path: Path, sim_factory: Callable[..., BoardSim]) -> None:
    """The board's next 6 frames each leave with one flipped bit: every one is dropped, none is misread,
    and commands still complete by retrying with the same id."""
    sim = sim_factory()

    async def go() -> None:
        agent = Agent(tmp_path, ack_timeout_s=0.3, attempts=8)
        link = agent.start_serial(sim.pty_link)
        try:
            await until(agent.online, what="online")
            bad_before = link.decoder.bad
            sim.send("flip 6")
            await asyncio.sleep(0.1)
            for i in range(12):
                r = await agent.hub.command(BOARD, "kitchen_light", "set", i % 2)
                assert r.ok and r.value == i % 2, r
            flipped = sum(line.startswith("flipped") for line in sim.log)
            assert flipped == 6
            assert link.decoder.bad - bad_before >= flipped  # each corrupted frame was dropped ...
            assert link.dropped == 0  # ... at the CRC, never as a valid frame carrying a wrong message
            assert agent.state("kitchen_light") == 1 and agent.online()
        finally:
            await agent.stop()

    asyncio.run(go())
