"""Device registry in SQLite: boards, entities, current state, telemetry and the command audit log.

It shares the agent's database file (WAL) through its own connection. Board and entity rows are updated in
place; sensor readings are appended to ``telemetry`` in batches (one transaction per batch is what makes
thousands of readings per second cheap) and pruned by age and row count. Every command gets an audit row
before it is sent and its result when it settles, so a crash mid-command leaves a ``sent`` row behind.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from edge.errors import HearthError
from edge.protocol import EntityInfo, Hello

MAX_PENDING = 200_000  # buffered readings kept while writes fail (~20 MB), then the oldest go
log = logging.getLogger(__name__)


class RegistryError(HearthError):
    """The registry database cannot be opened or written."""


@dataclass(frozen=True)
class Entity:
    board: str
    info: EntityInfo
    state: float | str | None
    synonyms: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.info.id


@dataclass(frozen=True)
class Board:
    id: str
    profile: str
    fw: str
    link: str
    status: str  # online | offline | quarantined
    boot: int
    last_seen: float


class Registry:
    def __init__(self, path: Path, *, telemetry_keep_s: float = 30 * 86400, telemetry_max_rows: int = 2_000_000):
        self.path = path
        self.telemetry_keep_s = telemetry_keep_s
        self.telemetry_max_rows = telemetry_max_rows
        self._lock = threading.Lock()  # links may write from the event loop and from worker threads
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=5, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode never corrupts and keeps everything on a crash of the agent; a power cut may
            # lose the last fraction of a second of readings, which is the price of the ingest rate.
            conn.execute("PRAGMA synchronous=NORMAL")
            self.db = sqlite_utils.Database(conn)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise RegistryError(f"cannot open the device registry {path}: {exc}; check the folder is writable") from exc
        self._pending: list[tuple[float, str, str, float]] = []
        self._states: dict[tuple[str, str], tuple[str, float]] = {}
        self._known: set[tuple[str, str]] | None = None

    def _migrate(self) -> None:
        self.db.table("boards").create(
            {"id": str, "profile": str, "fw": str, "link": str, "port": str, "status": str, "boot": int,
             "provisioned": int, "first_seen": float, "last_seen": float}, pk="id", if_not_exists=True)
        self.db.table("entities").create(
            {"board": str, "id": str, "kind": str, "name": str, "area": str, "unit": str, "min": float,
             "max": float, "sensitive": int, "ptt": int, "synonyms": str, "state": str, "state_at": float},
            pk=("board", "id"), if_not_exists=True)
        self.db.table("telemetry").create(
            {"id": int, "ts": float, "board": str, "entity": str, "value": float}, pk="id", if_not_exists=True)
        self.db.table("telemetry").create_index(["board", "entity", "ts"], if_not_exists=True)
        self.db.table("telemetry").create_index(["ts"], if_not_exists=True)  # pruning by age
        self.db.table("commands").create(
            {"id": int, "cid": str, "ts": float, "source": str, "turn_id": int, "board": str, "entity": str,
             "action": str, "value": str, "status": str, "result": str, "attempts": int, "latency_ms": float,
             "finished_at": float}, pk="id", if_not_exists=True)

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self.db.execute(sql, params)
            except sqlite3.Error as exc:
                raise RegistryError(f"device registry write failed: {exc}") from exc

    # --- boards -------------------------------------------------------------------------------------------------

    def board_hello(self, hello: Hello, *, link: str, trusted: bool, online: bool = True, port: str = "",
                    synonyms: dict[str, tuple[str, ...]] | None = None) -> str:
        """Record a hello. Returns the board's status: ``online``, or ``quarantined`` for an untrusted unknown board.

        ``trusted`` is true for boards on a USB port of this machine (physical access) and for provisioned
        MQTT boards; an MQTT board nobody provisioned is listed but never commanded.
        """
        now = time.time()
        row = self._row(hello.board)
        provisioned = bool(row and row["provisioned"]) or trusted
        status = ("online" if online else "offline") if provisioned else "quarantined"
        try:
            self._hello(hello, link, port, status, provisioned, now, synonyms)
        except sqlite3.Error as exc:
            raise RegistryError(f"device registry write failed: {exc}") from exc
        self._known = None
        return status

    def _hello(self, hello: Hello, link: str, port: str, status: str, provisioned: bool, now: float,
               synonyms: dict[str, tuple[str, ...]] | None) -> None:
        with self._lock, self.db.conn:
            self.db.execute(
                "INSERT INTO boards (id, profile, fw, link, port, status, boot, provisioned, first_seen, last_seen)"
                " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET profile=excluded.profile,"
                " fw=excluded.fw, link=excluded.link, port=excluded.port, status=excluded.status,"
                " boot=excluded.boot, provisioned=excluded.provisioned, last_seen=excluded.last_seen",
                (hello.board, hello.profile, hello.fw, link, port, status, hello.boot, int(provisioned), now, now))
            known = {r[0] for r in self.db.execute("SELECT id FROM entities WHERE board = ?", (hello.board,))}
            for e in hello.entities:
                syn = json.dumps(list((synonyms or {}).get(e.id, ())))
                self.db.execute(
                    "INSERT INTO entities (board, id, kind, name, area, unit, min, max, sensitive, ptt, synonyms)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(board, id) DO UPDATE SET kind=excluded.kind,"
                    " name=excluded.name, area=excluded.area, unit=excluded.unit, min=excluded.min,"
                    " max=excluded.max, sensitive=excluded.sensitive, ptt=excluded.ptt, synonyms=excluded.synonyms",
                    (hello.board, e.id, e.kind, e.name, e.area, e.unit, e.min, e.max, int(e.sensitive), int(e.ptt),
                     syn))
                known.discard(e.id)
            for gone in known:  # the board was reflashed with another profile
                self.db.execute("DELETE FROM entities WHERE board = ? AND id = ?", (hello.board, gone))

    def mark_provisioned(self, board: str, *, link: str = "mqtt") -> None:
        now = time.time()
        self._exec("INSERT INTO boards (id, profile, fw, link, port, status, boot, provisioned, first_seen, last_seen)"
                   " VALUES (?, '', '', ?, '', 'offline', 0, 1, ?, ?) ON CONFLICT(id) DO UPDATE SET provisioned=1,"
                   " status=CASE WHEN status='quarantined' THEN 'offline' ELSE status END", (board, link, now, now))

    def set_status(self, board: str, status: str) -> None:
        """online/offline; a quarantined board stays quarantined whatever its link says."""
        self._exec("UPDATE boards SET status = ?, last_seen = ? WHERE id = ? AND status != 'quarantined'",
                   (status, time.time(), board))

    def touch(self, board: str) -> None:
        self._exec("UPDATE boards SET last_seen = ? WHERE id = ?", (time.time(), board))

    def _row(self, board: str) -> dict[str, Any] | None:
        with self._lock:
            rows = list(self.db.query("SELECT * FROM boards WHERE id = ?", (board,)))
        return rows[0] if rows else None

    def board(self, board: str) -> Board | None:
        r = self._row(board)
        return None if r is None else _board(r)

    def boards(self) -> list[Board]:
        with self._lock:
            return [_board(r) for r in self.db.query("SELECT * FROM boards ORDER BY id")]

    # --- entities and state -------------------------------------------------------------------------------------

    def entities(self, board: str | None = None, *, usable_only: bool = False) -> list[Entity]:
        if self._states:
            self.flush_telemetry()  # readers see the latest value, not the last flush
        sql = "SELECT e.* FROM entities e JOIN boards b ON b.id = e.board"
        params: tuple[Any, ...] = ()
        where = []
        if board is not None:
            where.append("e.board = ?")
            params = (board,)
        if usable_only:
            where.append("b.status != 'quarantined'")
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._lock:
            rows = list(self.db.query(sql + " ORDER BY e.board, e.id", params))
        return [_entity(r) for r in rows]

    def set_state(self, board: str, entity: str, val: float | str, *, ts: float | None = None) -> bool:
        """Buffer an entity's current value (and a telemetry row for numbers); False for an unknown entity.

        Written by :meth:`flush_telemetry` in one transaction with the other buffered readings: one commit per
        reading would cap ingest at a few thousand per second on a Pi's SD card.
        """
        if self._known is None:
            with self._lock:
                self._known = {(r[0], r[1]) for r in self.db.execute("SELECT board, id FROM entities")}
        if (board, entity) not in self._known:
            return False
        ts = time.time() if ts is None else ts
        self._states[(board, entity)] = (json.dumps(val), ts)
        if isinstance(val, (int, float)):
            if len(self._pending) >= MAX_PENDING:  # the disk has been failing for a while: keep the newest
                del self._pending[: MAX_PENDING // 10]
                log.error("telemetry buffer full (writes are failing): dropped the oldest %d readings",
                          MAX_PENDING // 10)
            self._pending.append((ts, board, entity, float(val)))
        return True

    def flush_telemetry(self) -> int:
        """Write buffered states and readings in one transaction (the hub calls this every ~100 ms)."""
        if not self._pending and not self._states:
            return 0
        rows, self._pending = self._pending, []
        states, self._states = self._states, {}
        with self._lock:
            try:
                with self.db.conn:
                    self.db.conn.executemany(
                        "UPDATE entities SET state = ?, state_at = ? WHERE board = ? AND id = ?",
                        [(v, ts, b, e) for (b, e), (v, ts) in states.items()])
                    self.db.conn.executemany(
                        "INSERT INTO telemetry (ts, board, entity, value) VALUES (?,?,?,?)", rows)
            except sqlite3.Error as exc:
                self._pending = rows + self._pending  # kept (bounded by MAX_PENDING) for the next try
                for k, v in states.items():
                    self._states.setdefault(k, v)
                raise RegistryError(f"telemetry write failed: {exc}") from exc
        return len(rows)

    def prune_telemetry(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        n = self._exec("DELETE FROM telemetry WHERE ts < ?", (now - self.telemetry_keep_s,)).rowcount
        n += self._exec("DELETE FROM telemetry WHERE id <= (SELECT MAX(id) FROM telemetry) - ?",
                        (self.telemetry_max_rows,)).rowcount
        return n

    def telemetry(self, board: str, entity: str, since: float = 0) -> list[tuple[float, float]]:
        with self._lock:
            return [(r["ts"], r["value"]) for r in self.db.query(
                "SELECT ts, value FROM telemetry WHERE board = ? AND entity = ? AND ts >= ? ORDER BY ts",
                (board, entity, since))]

    # --- command audit ------------------------------------------------------------------------------------------

    def command_sent(self, *, cid: str, source: str, turn_id: int | None, board: str, entity: str, action: str,
                     value: Any) -> int:
        cur = self._exec("INSERT INTO commands (cid, ts, source, turn_id, board, entity, action, value, status,"
                         " attempts) VALUES (?,?,?,?,?,?,?,?, 'sent', 0)",
                         (cid, time.time(), source, turn_id, board, entity, action, json.dumps(value)))
        return int(cur.lastrowid or 0)

    def command_done(self, row: int, *, status: str, result: str, attempts: int, latency_ms: float | None) -> None:
        self._exec("UPDATE commands SET status = ?, result = ?, attempts = ?, latency_ms = ?, finished_at = ?"
                   " WHERE id = ?", (status, result, attempts, latency_ms, time.time(), row))

    def commands(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query("SELECT * FROM commands ORDER BY id DESC LIMIT ?", (limit,)))

    def close(self) -> None:
        self.flush_telemetry()
        self.db.conn.close()


def _board(r: dict[str, Any]) -> Board:
    return Board(id=r["id"], profile=r["profile"] or "", fw=r["fw"] or "", link=r["link"] or "",
                 status=r["status"] or "offline", boot=r["boot"] or 0, last_seen=r["last_seen"] or 0.0)


def _entity(r: dict[str, Any]) -> Entity:
    info = EntityInfo(id=r["id"], kind=r["kind"], name=r["name"], area=r["area"] or "", unit=r["unit"] or "",
                      min=r["min"], max=r["max"], sensitive=bool(r["sensitive"]), ptt=bool(r["ptt"]))
    state = json.loads(r["state"]) if r["state"] is not None else None
    return Entity(board=r["board"], info=info, state=state, synonyms=tuple(json.loads(r["synonyms"] or "[]")))
