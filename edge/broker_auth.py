"""Per-board MQTT credentials and Mosquitto's password and ACL files.

Every board gets its own username (its board id) and a random password, and an ACL that lets it write only its
own topics and read only its own ``cmd``: a board whose flash is dumped (Wi-Fi and MQTT secrets sit in NVS)
can then neither command other boards nor fake their state. Mosquitto ACLs cannot subtract ("all of my
topics except cmd"), so the writable topics are listed one by one.

Passwords are hashed here, in mosquitto 2.0's own format (``$7$`` = PBKDF2-HMAC-SHA512), instead of calling
``mosquitto_passwd -b``: that would put the plain password on a command line that every local user can read
in ``ps``, and it would make provisioning depend on the broker package being installed on this host.
Files are rewritten atomically (temp file + rename, mode and owner kept) and lines this module did not write
are kept, so hand-made entries survive and a crash never leaves mosquitto a half-written file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge.errors import BrokerAuthError

NAME = re.compile(r"[a-z0-9_-]{1,32}")
RESERVED = frozenset({"agent"})  # hearth/<site>/agent/status is the agent's own topic
ITERATIONS = 101  # mosquitto_passwd's default; the 192-bit random passwords need no key stretching
SALT_BYTES = 12
PASSWORD_BYTES = 24
BOARD_WRITES = ("status", "hello", "state/#", "event", "tele", "ack")
MARK = "# hearth:"  # comment inside every block this module writes, so it can find its own blocks again


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    @property
    def client_id(self) -> str:
        return f"hearth-{self.username}"


def validate_name(value: str, what: str = "board id") -> str:
    """Refuse anything that could escape a topic level or an ACL line (``/``, ``+``, ``#``, spaces, upper case)."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        bad = sorted({c for c in str(value) if c in "/+#"})
        why = f"contains {' '.join(repr(c) for c in bad)}, MQTT topic separators/wildcards" if bad else \
            "must be 1-32 characters of a-z, 0-9, _ and -"
        raise BrokerAuthError(f"{what} {value!r} {why}; board ids are the board's MAC as 12 hex digits "
                              "(`esptool read-mac`)")
    return value


def _board(board_id: str) -> str:
    validate_name(board_id)
    if board_id in RESERVED:
        raise BrokerAuthError(f"board id {board_id!r} is reserved for the agent's own topics; use the board's MAC")
    return board_id


def generate_credentials(board_id: str) -> tuple[str, str]:
    """(username, password) for a board: the username is the board id, the password 192 random bits."""
    return _board(board_id), secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Mosquitto 2.0's password hash: ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512(password, salt)>``."""
    if not password or "\n" in password:
        raise BrokerAuthError("a password must be non-empty and on one line")
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Check a password against a ``$7$`` (or legacy ``$6$`` salted SHA-512) entry, as mosquitto does."""
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            salt, want = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(want))
        elif len(parts) == 4 and parts[1] == "6":
            salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(got, want)


# ------------------------------------------------------------------------------------------------ file I/O


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise BrokerAuthError(f"cannot read {path}: {exc}") from exc


def _atomic_write(path: Path, lines: list[str]) -> None:
    """Replace ``path`` in one rename, keeping its mode and owner (mosquitto must still be able to read it)."""
    tidy: list[str] = []
    for line in lines:  # removing blocks leaves runs of blank lines behind: keep one
        if line.strip() or (tidy and tidy[-1].strip()):
            tidy.append(line)
    text = "\n".join(tidy).strip("\n") + "\n" if tidy else ""
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, st.st_mode & 0o777 if st else 0o600)
            if st is not None and hasattr(os, "chown"):
                with contextlib.suppress(PermissionError):  # not root: the file stays ours, as it already was
                    os.chown(tmp, st.st_uid, st.st_gid)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise BrokerAuthError(f"cannot write {path}: {exc}; check the folder exists and is writable "
                              "(run with sudo for /etc/mosquitto)") from exc


# ----------------------------------------------------------------------------------------- password file


def read_password_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """username -> hash, for the entries that have one (comments and blank lines are skipped)."""
    out: dict[str, str] = {}
    for line in _read_lines(Path(path)):
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            user, _, hashed = line.partition(":")
            out[user] = hashed.strip()
    return out


def set_password(path: str | os.PathLike[str], username: str, password: str) -> None:
    """Add or replace ``username``'s entry; every other line stays as it was."""
    validate_name(username, "username")
    entry = f"{username}:{hash_password(password)}"
    lines = _read_lines(Path(path))
    idx = [i for i, line in enumerate(lines) if line.partition(":")[0] == username]
    if idx:
        lines[idx[0]] = entry
        lines = [line for i, line in enumerate(lines) if i not in idx[1:]]
    else:
        lines.append(entry)
    _atomic_write(Path(path), lines)


def remove_password(path: str | os.PathLike[str], username: str) -> bool:
    validate_name(username, "username")
    lines = _read_lines(Path(path))
    kept = [line for line in lines if line.partition(":")[0] != username]
    if len(kept) == len(lines):
        return False
    _atomic_write(Path(path), kept)
    return True


# ------------------------------------------------------------------------------------------------- ACL file


def board_acl(site: str, board_id: str) -> list[str]:
    """ACL lines for one board: write its own topics (not cmd), read its own cmd, nothing else."""
    validate_name(site, "site")
    base = f"hearth/{site}/{_board(board_id)}"
    return [f"user {board_id}", f"{MARK} board {board_id} at site {site}",
            *(f"topic write {base}/{t}" for t in BOARD_WRITES), f"topic read {base}/cmd"]


def agent_acl(site: str, username: str = "agent") -> list[str]:
    validate_name(site, "site")
    validate_name(username, "agent username")
    return [f"user {username}", f"{MARK} agent for site {site}", f"topic readwrite hearth/{site}/#",
            "topic readwrite homeassistant/#"]


def _without_user(lines: list[str], username: str) -> tuple[list[str], int | None]:
    """Drop ``username``'s block (its user line, topic lines and our marker); keep foreign lines such as patterns."""
    kept: list[str] = []
    first: int | None = None
    inside = False
    for line in lines:
        words = line.split()
        if words[:1] == ["user"]:
            inside = len(words) == 2 and words[1] == username
            if inside:
                first = len(kept) if first is None else first
                continue
        if inside and (words[:1] == ["topic"] or line.startswith(MARK)):
            continue
        kept.append(line)
    return kept, first


def set_acl(path: str | os.PathLike[str], block: list[str]) -> None:
    """Insert or replace the block for the user named in ``block[0]`` (``user NAME``), in place."""
    username = block[0].split()[1]
    lines, at = _without_user(_read_lines(Path(path)), username)
    if at is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines += block
    else:
        lines[at:at] = block
    _atomic_write(Path(path), lines)


def remove_acl(path: str | os.PathLike[str], username: str) -> bool:
    validate_name(username, "username")
    lines = _read_lines(Path(path))
    kept, at = _without_user(lines, username)
    if at is None:
        return False
    _atomic_write(Path(path), kept)
    return True


# ------------------------------------------------------------------------------------------ whole operations


def provision_board(password_file: str | os.PathLike[str], acl_file: str | os.PathLike[str], site: str,
                    board_id: str) -> Credentials:
    """New credentials for a board (a re-provisioned board gets a new password), written to both files.

    Mosquitto reads the files at start and on SIGHUP: reload it (``systemctl reload mosquitto``) afterwards.
    """
    username, password = generate_credentials(board_id)
    block = board_acl(site, board_id)
    set_acl(acl_file, block)
    set_password(password_file, username, password)
    return Credentials(username, password)


def provision_agent(password_file: str | os.PathLike[str], acl_file: str | os.PathLike[str], site: str,
                    username: str = "agent", password: str | None = None) -> Credentials:
    """The agent's account: read and write everything under ``hearth/<site>/``."""
    password = password or secrets.token_urlsafe(PASSWORD_BYTES)
    set_acl(acl_file, agent_acl(site, username))
    set_password(password_file, username, password)
    return Credentials(username, password)


def remove_board(password_file: str | os.PathLike[str], acl_file: str | os.PathLike[str], board_id: str) -> bool:
    """Forget a board in both files; returns whether it was there. Reload mosquitto to drop it."""
    validate_name(board_id)
    had_password = remove_password(password_file, board_id)
    had_acl = remove_acl(acl_file, board_id)
    return had_password or had_acl


def mosquitto_conf_snippet(password_file: str | os.PathLike[str], acl_file: str | os.PathLike[str], *,
                           port: int = 1883, bind: str = "0.0.0.0") -> str:
    """A mosquitto.conf fragment (e.g. /etc/mosquitto/conf.d/hearth.conf) that uses the generated files."""
    return (
        "# Hearth: boards and the agent log in with per-board accounts (edge/broker_auth.py).\n"
        "# The files must be readable by the mosquitto user: chown mosquitto: FILE; chmod 0600 FILE.\n"
        "# After provisioning a board: systemctl reload mosquitto (SIGHUP re-reads both files).\n"
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        "set_tcp_nodelay true\n"
        f"password_file {Path(password_file)}\n"
        f"acl_file {Path(acl_file)}\n"
        f"listener {port} {bind}\n"
    )
