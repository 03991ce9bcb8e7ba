import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edge.errors import TurnLogError
from edge.turnlog import TurnLog

MODELS = {"stt_model": "tiny", "llm_model": "smol", "tts_voice": "joe"}


def test_turn_roundtrip(tmp_path: Path) -> None:
    log = TurnLog(tmp_path / "h.db")
    s = log.start_session("test")
    t = log.start_turn(s, transcript="hey hearth hi", activation="wake_phrase", audio_s=1.5, models=MODELS)
    log.finish_turn(t, reply="Hello!", timings_ms={"asr": 210.0, "end_of_speech_to_first_audio": 700.5},
                    error=None, output=None)
    (row,) = log.recent()
    assert row["status"] == "done" and row["reply"] == "Hello!" and row["asr_ms"] == 210.0
    assert row["end_of_speech_to_first_audio_ms"] == 700.5 and row["llm_model"] == "smol"
    assert log.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_error_turn(tmp_path: Path) -> None:
    log = TurnLog(tmp_path / "h.db")
    t = log.start_turn(log.start_session("x"), transcript="q", activation="typed", audio_s=0, models=MODELS)
    log.finish_turn(t, reply="", timings_ms={}, error="LLM timed out", output=None)
    assert log.recent()[0]["status"] == "error"


WRITER = """
import sys, time
from edge.turnlog import TurnLog
log = TurnLog(__import__("pathlib").Path(sys.argv[1]))
s = log.start_session("killtest")
i = 0
while True:
    t = log.start_turn(s, transcript=f"q{i}", activation="typed", audio_s=0, models={})
    if i == 5:
        print("midturn", flush=True)
        time.sleep(60)
    log.finish_turn(t, reply=f"a{i}" * 500, timings_ms={"asr": i}, error=None, output=None)
    i += 1
"""


def test_kill_mid_turn_keeps_completed_turns(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "midturn"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    log = TurnLog(db)
    assert log.interrupted == 1
    rows = log.recent(100)
    assert [r["transcript"] for r in rows] == [f"q{i}" for i in range(6)]
    assert all(r["status"] == "done" and r["reply"] == f"a{i}" * 500 for i, r in enumerate(rows[:5]))
    assert rows[5]["status"] == "interrupted"


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TurnLogError, match="cannot open the turn log"):
        TurnLog(blocker / "h.db")


def test_corrupt_database_file_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(TurnLogError, match="cannot open the turn log"):
        TurnLog(db)
    assert db.read_bytes().startswith(b"this is not"), "the file is never overwritten"


def test_old_database_gains_new_columns(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, started_at FLOAT, source TEXT)")
    conn.execute("CREATE TABLE turns (id INTEGER PRIMARY KEY, session_id INTEGER, started_at FLOAT, status TEXT,"
                 " transcript TEXT)")
    conn.execute("INSERT INTO turns (session_id, started_at, status, transcript) VALUES (1, 0, 'done', 'old turn')")
    conn.commit()
    conn.close()
    log = TurnLog(db)
    t = log.start_turn(log.start_session("x"), transcript="new", activation="typed", audio_s=0, models=MODELS)
    log.finish_turn(t, reply="ok", handled_by="llm", timings_ms={"asr": 1.0}, error=None, output=None)
    rows = log.recent()
    assert [r["transcript"] for r in rows] == ["old turn", "new"] and rows[1]["handled_by"] == "llm"
