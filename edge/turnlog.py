"""SQLite turn log: sessions and turns with transcripts, replies, per-stage timings and errors.

A turn row is written when the turn starts and completed when it ends, each in its own committed
transaction (WAL, synchronous=FULL). If the agent is killed mid-turn the database stays consistent, every
completed turn is kept, and the half-done turn is marked ``interrupted`` at the next start.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from edge.errors import TurnLogError

TIMING_KEYS = ("asr", "llm_first_token", "llm_done", "tts_first_audio", "end_of_speech_to_first_audio", "total")


class TurnLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self.db = sqlite_utils.Database(conn)
            self._migrate()
            self.interrupted = self.db.execute(
                "UPDATE turns SET status = 'interrupted' WHERE status = 'started'"
            ).rowcount
        except (sqlite3.Error, OSError) as exc:
            raise TurnLogError(
                f"cannot open the turn log {path}: {exc}; check the folder is writable "
                "(or set [storage] database in the settings)"
            ) from exc

    def _migrate(self) -> None:
        self.db.table("sessions").create(
            {"id": int, "started_at": float, "source": str}, pk="id", if_not_exists=True
        )
        cols: dict[str, Any] = {
            "id": int, "session_id": int, "started_at": float, "finished_at": float, "status": str,
            "activation": str, "transcript": str, "reply": str, "handled_by": str, "error": str, "audio_s": float,
            "stt_model": str, "llm_model": str, "tts_voice": str, "output": str,
        }
        cols.update({f"{k}_ms": float for k in TIMING_KEYS})
        turns = self.db.table("turns")
        turns.create(cols, pk="id", foreign_keys=[("session_id", "sessions", "id")], if_not_exists=True)
        for name, typ in cols.items():  # a database from an older version gains the new columns
            if name not in turns.columns_dict:
                turns.add_column(name, typ)
        self.db.table("turns").create_index(["started_at"], if_not_exists=True)

    def start_session(self, source: str) -> int:
        return int(self._write(lambda: self.db.table("sessions").insert(
            {"started_at": time.time(), "source": source}).last_pk))

    def start_turn(self, session_id: int, *, transcript: str, activation: str, audio_s: float,
                   models: dict[str, str]) -> int:
        row = {"session_id": session_id, "started_at": time.time(), "status": "started",
               "transcript": transcript, "activation": activation, "audio_s": round(audio_s, 3), **models}
        return int(self._write(lambda: self.db.table("turns").insert(row).last_pk))

    def finish_turn(self, turn_id: int, *, reply: str, handled_by: str = "", timings_ms: dict[str, float | None],
                    error: str | None, output: str | None) -> None:
        row: dict[str, Any] = {"finished_at": time.time(), "status": "error" if error and not reply else "done",
                               "reply": reply, "handled_by": handled_by, "error": error, "output": output}
        row.update({f"{k}_ms": timings_ms.get(k) for k in TIMING_KEYS})
        self._write(lambda: self.db.table("turns").update(turn_id, row))

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT * FROM turns ORDER BY id DESC LIMIT ?", [limit]))[::-1]

    def _write(self, op: Any) -> Any:
        try:
            return op()
        except sqlite3.Error as exc:
            raise TurnLogError(f"cannot write to the turn log {self.path}: {exc}") from exc

    def close(self) -> None:
        self.db.close()
