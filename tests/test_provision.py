"""Provisioning over the serial protocol against the simulator, then MQTT through a broker that enforces auth."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge import broker_auth
from edge.devices import DeviceHub
from edge.mqtt_link import MqttConfig, MqttLink
from edge.provision import ProvisionError, broker_files, provision
from edge.registry import Registry
from edge.settings import BoardsSettings, Settings, StorageSettings
from tests.hw import RELAY_SPEC, BoardSim, free_port
from tests.test_broker_auth import start_broker, stop_broker

BOARD = "c0ffee000001"


def make_settings(tmp: Path, mqtt_port: int) -> Settings:
    s = Settings()
    return dataclasses.replace(s, storage=StorageSettings(home=str(tmp), database=str(tmp / "h.db")),
                               boards=BoardsSettings(mqtt_port=mqtt_port, site="home"))


def test_provision_then_the_board_joins_the_authenticated_broker(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, port)
    pw, acl = broker_files(settings)
    agent_creds = broker_auth.provision_agent(pw, acl, "home")
    broker = start_broker(tmp_path, port, pw, acl)
    sim = BoardSim(tmp_path, RELAY_SPEC, board_id=BOARD).start()  # serial only, nothing in NVS yet
    try:
        lines: list[str] = []
        r = provision(settings, str(sim.pty_link), ssid="testnet", wifi_password="wifi pw", broker_host="127.0.0.1",
                      broker_port=port, progress=lines.append)
        assert r.board == BOARD and r.username == BOARD
        assert BOARD in broker_auth.read_password_file(pw)
        assert f"topic read hearth/home/{BOARD}/cmd" in acl.read_text()
        sim.wait_for("prov ok", 5)
        broker.reload()  # mosquitto re-reads the password and ACL files on SIGHUP
        sim.wait_for("mqtt connected", 20)
        assert "wifi pw" not in " ".join(lines) and r.username in (tmp_path / "mosquitto" / "passwd").read_text()

        async def agent_side() -> None:
            reg = Registry(settings.storage.database_path)
            hub = DeviceHub(reg)
            link = MqttLink(MqttConfig(port=port, username=agent_creds.username, password=agent_creds.password),
                            hub.on_message, hub.on_status)
            link.start()
            try:
                deadline = time.monotonic() + 10
                while not hub.online(BOARD):
                    assert time.monotonic() < deadline, "provisioned board never came online over MQTT"
                    await asyncio.sleep(0.05)
                assert reg.board(BOARD).status == "online"  # type: ignore[union-attr]
                res = await hub.command(BOARD, "kitchen_light", "set", 1)
                assert res.ok
            finally:
                link.stop()
                reg.close()

        asyncio.run(agent_side())
        # credentials survive a power cycle: a restarted board (no serial) connects from NVS alone
        sim.stop()
        again = BoardSim(tmp_path, RELAY_SPEC, board_id=BOARD, serial=False).start()
        try:
            again.wait_for("mqtt connected", 20)
        finally:
            again.stop()
    finally:
        sim.stop()
        stop_broker(broker)


def test_wrong_credentials_keep_a_board_out(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, port)
    pw, acl = broker_files(settings)
    broker_auth.provision_agent(pw, acl, "home")
    broker_auth.provision_board(pw, acl, "home", BOARD)
    broker = start_broker(tmp_path, port, pw, acl)
    sim = BoardSim(tmp_path, RELAY_SPEC, board_id=BOARD, serial=False, mqtt_port=port, user=BOARD,
                   password="not-the-password").start()
    try:
        time.sleep(2.0)
        assert "mqtt connected" not in sim.log
    finally:
        sim.stop()
        stop_broker(broker)


def test_provision_errors_are_clear(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, 1883)
    with pytest.raises(ProvisionError, match="--ssid"):
        provision(settings, str(tmp_path / "no-such-tty"), ssid="", wifi_password="", broker_host="10.0.0.2",
                  progress=lambda _: None)
    with pytest.raises(ProvisionError, match="does not exist"):
        provision(settings, str(tmp_path / "no-such-tty"), ssid="net", wifi_password="", broker_host="10.0.0.2",
                  progress=lambda _: None)
    # a port where nothing speaks the protocol: a pty pair with no board on the other end
    master, slave = os.openpty()
    try:
        with pytest.raises(ProvisionError, match="no answer from a Hearth board"):
            provision(settings, os.ttyname(slave), ssid="net", wifi_password="", broker_host="10.0.0.2",
                      timeout=1.5, progress=lambda _: None)
    finally:
        os.close(master)
        os.close(slave)
    assert Registry(settings.storage.database_path).boards() == []  # nothing half-registered
    assert not broker_files(settings)[0].exists()  # and no broker account for a board that never acked


def test_cli_provision(tmp_path: Path) -> None:
    sim = BoardSim(tmp_path, RELAY_SPEC, board_id=BOARD).start()
    cfg = tmp_path / "hearth.toml"
    cfg.write_text(f'[storage]\nhome = "{tmp_path}"\n[boards]\nsite = "flat"\n')
    try:
        env = dict(os.environ, HEARTH_WIFI_PASSWORD="secret-wifi")
        proc = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(cfg), "boards", "provision",
                               "--port", str(sim.pty_link), "--ssid", "home-net", "--broker", "192.168.1.10"],
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert f"Provisioned board {BOARD}" in proc.stdout and "secret-wifi" not in proc.stdout + proc.stderr
        line = sim.wait_for("prov ok", 5)
        assert "site=flat" in line and "192.168.1.10" in line
        listed = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(cfg), "boards", "list", "--json"],
                                capture_output=True, text=True, timeout=60)
        board = json.loads(listed.stdout.splitlines()[0])
        assert board["board"] == BOARD and {e["id"] for e in board["entities"]} >= {"kitchen_light", "temp"}
        # without --broker, a loopback [boards] mqtt_host is refused for a Wi-Fi board, with the fix named
        bad = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(cfg), "boards", "provision",
                              "--port", str(sim.pty_link), "--ssid", "home-net"],
                             capture_output=True, text=True, env=env, timeout=60)
        assert bad.returncode == 1 and "--broker" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        sim.stop()
