"""Device registry on a real SQLite file: boards, entities, state, telemetry batches and retention, audit log."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edge.protocol import EntityInfo, Hello
from edge.registry import Registry, RegistryError

E = EntityInfo
HELLO = Hello("a1b2c3d4e5f6", "0.1.0", "relay-board", 1, (
    E("kitchen_light", "switch", "Kitchen light", "kitchen"),
    E("temp", "temperature", "Temperature", "kitchen", unit="C", min=-40, max=80),
))


def test_hello_registers_board_and_entities(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "h.db")
    assert reg.board_hello(HELLO, link="serial", trusted=True, synonyms={"kitchen_light": ("lamp",)}) == "online"
    b = reg.board("a1b2c3d4e5f6")
    assert b is not None and (b.status, b.link, b.boot, b.profile) == ("online", "serial", 1, "relay-board")
    ents = {e.id: e for e in reg.entities()}
    assert ents["kitchen_light"].synonyms == ("lamp",) and ents["temp"].info.unit == "C"


def test_reflash_with_fewer_entities_drops_the_old_ones(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "h.db")
    reg.board_hello(HELLO, link="serial", trusted=True)
    reg.board_hello(Hello(HELLO.board, "0.2.0", "other", 2, HELLO.entities[:1]), link="serial", trusted=True)
    assert [e.id for e in reg.entities()] == ["kitchen_light"]


def test_unknown_mqtt_board_is_quarantined_until_provisioned(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "h.db")
    assert reg.board_hello(HELLO, link="mqtt", trusted=False) == "quarantined"
    reg.set_status(HELLO.board, "online")  # its availability topic must not lift the quarantine
    assert reg.board(HELLO.board).status == "quarantined"  # type: ignore[union-attr]
    assert reg.entities(usable_only=True) == []
    reg.mark_provisioned(HELLO.board)
    assert reg.board_hello(HELLO, link="mqtt", trusted=False) == "online"
    assert len(reg.entities(usable_only=True)) == 2


def test_state_and_telemetry_batches(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "h.db")
    reg.board_hello(HELLO, link="serial", trusted=True)
    assert reg.set_state(HELLO.board, "temp", 21.5, ts=100.0)
    assert reg.set_state(HELLO.board, "temp", 22.0, ts=101.0)
    assert not reg.set_state(HELLO.board, "nope", 1)  # unknown entity: nothing stored
    assert reg.telemetry(HELLO.board, "temp") == []  # buffered until the flush
    assert reg.flush_telemetry() == 2
    assert reg.telemetry(HELLO.board, "temp") == [(100.0, 21.5), (101.0, 22.0)]
    assert {e.id: e.state for e in reg.entities()}["temp"] == 22.0


def test_retention_by_age_and_rows(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "h.db", telemetry_keep_s=100, telemetry_max_rows=5)
    reg.board_hello(HELLO, link="serial", trusted=True)
    for i in range(10):
        reg.set_state(HELLO.board, "temp", float(i), ts=1000.0 + i)
    reg.flush_telemetry()
    reg.prune_telemetry(now=1000.0 + 9)
    assert [v for _, v in reg.telemetry(HELLO.board, "temp")] == [5.0, 6.0, 7.0, 8.0, 9.0]
    reg.prune_telemetry(now=1000.0 + 107)  # older than 100 s is gone
    assert [v for _, v in reg.telemetry(HELLO.board, "temp")] == [7.0, 8.0, 9.0]


def test_command_audit(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "h.db")
    row = reg.command_sent(cid="c1", source="voice", turn_id=7, board=HELLO.board, entity="kitchen_light",
                           action="set", value=1)
    assert reg.commands()[0]["status"] == "sent"  # written before anything is on the wire
    reg.command_done(row, status="ok", result="ok", attempts=2, latency_ms=12.5)
    c = reg.commands()[0]
    assert (c["cid"], c["turn_id"], c["status"], c["attempts"]) == ("c1", 7, "ok", 2)


def test_unwritable_database_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # root ignores permissions, so block with a file where a folder must be
    with pytest.raises(RegistryError, match="writable"):
        Registry(blocker / "sub" / "h.db")


def test_killed_writer_keeps_flushed_rows(tmp_path: Path) -> None:
    """A process killed after a flush loses nothing that was flushed, and the file opens cleanly."""
    db = tmp_path / "k.db"
    code = f"""
import os, signal
from edge.registry import Registry
from edge.protocol import EntityInfo, Hello
reg = Registry(__import__('pathlib').Path({str(db)!r}))
reg.board_hello(Hello('a1b2c3d4e5f6', '0', 'p', 1, (EntityInfo('temp', 'temperature', 'T'),)), link='serial',
                trusted=True)
for i in range(1000):
    reg.set_state('a1b2c3d4e5f6', 'temp', float(i), ts=float(i))
reg.flush_telemetry()
for i in range(50):
    reg.set_state('a1b2c3d4e5f6', 'temp', -1.0, ts=5000.0)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0] == 1000
    reg = Registry(db)
    assert len(reg.telemetry("a1b2c3d4e5f6", "temp")) == 1000
