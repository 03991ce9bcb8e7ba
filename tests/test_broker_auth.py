"""Broker auth against a real Mosquitto: generated password and ACL files, enforced by the broker itself.

Each broker runs on a free loopback port with `allow_anonymous false`, the generated password_file and
acl_file (written through mosquitto_conf_snippet), and is stopped at the end. "Cannot publish" is proven with
an ordering sentinel: MQTT keeps one client's messages in order, so when the agent has received the board's
allowed message sent *after* the forbidden ones, the forbidden ones would already have arrived.
"""

from __future__ import annotations

import getpass
import os
import queue
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge import broker_auth as ba
from edge.errors import BrokerAuthError, HearthError

SITE = "home"
BOARD_A = "a1b2c3d4e5f6"
BOARD_B = "0badc0ffee00"


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """A fresh free TCP port on 127.0.0.1 for each call (never the same one twice in a session)."""
    used: set[int] = set()

    def pick() -> int:
        for _ in range(50):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in used:
                used.add(port)
                return port
        raise RuntimeError("no free port")

    return pick


@dataclass
class Broker:
    port: int
    proc: subprocess.Popen[bytes]
    password_file: Path
    acl_file: Path
    log: Path

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)  # mosquitto re-reads both files in its main loop


def start_broker(d: Path, port: int, password_file: Path, acl_file: Path) -> Broker:
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if mosquitto is None:
        pytest.fail("mosquitto is required: run scripts/setup.sh (apt-get install mosquitto mosquitto-clients)")
    conf = d / "mosquitto.conf"
    log = d / "mosquitto.log"
    conf.write_text(ba.mosquitto_conf_snippet(password_file, acl_file, port=port, bind="127.0.0.1")
                    + f"user {getpass.getuser()}\npersistence false\nlog_dest file {log}\nlog_type all\n")
    proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"mosquitto exited ({proc.returncode}): {err} {log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Broker(port, proc, password_file, acl_file, log)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("mosquitto did not start listening within 10 s")


def stop_broker(b: Broker) -> None:
    b.proc.terminate()
    try:
        b.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        b.proc.kill()
        b.proc.wait()
    if b.proc.stderr:
        b.proc.stderr.close()


@dataclass
class Site:
    broker: Broker
    agent: ba.Credentials
    board_a: ba.Credentials
    board_b: ba.Credentials


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]) -> Iterator[Site]:
    d = tmp_path_factory.mktemp("mosquitto")
    pw, acl = d / "passwords", d / "acl"
    agent = ba.provision_agent(pw, acl, SITE)
    a = ba.provision_board(pw, acl, SITE, BOARD_A)
    b = ba.provision_board(pw, acl, SITE, BOARD_B)
    broker = start_broker(d, free_port(), pw, acl)
    try:
        yield Site(broker, agent, a, b)
    finally:
        stop_broker(broker)


class Client:
    """A paho client that records what it receives; connect() returns the broker's answer."""

    def __init__(self, port: int, creds: ba.Credentials | None, client_id: str) -> None:
        self.port = port
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected: queue.Queue[Any] = queue.Queue()
        self.subscribed: queue.Queue[list[Any]] = queue.Queue()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        if creds is not None:
            self.c.username_pw_set(creds.username, creds.password)
        self.c.on_connect = lambda c, u, f, rc, p: self.connected.put(rc)
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.put(list(rcs))

    def connect(self) -> Any:
        self.c.connect("127.0.0.1", self.port, keepalive=15)
        self.c.loop_start()
        rc = self.connected.get(timeout=10)
        if rc.is_failure:
            self.c.loop_stop()
        return rc

    def subscribe(self, topic: str) -> list[Any]:
        self.c.subscribe(topic, qos=1)
        return self.subscribed.get(timeout=10)

    def publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout=10)

    def until(self, topic: str, timeout: float = 10) -> list[tuple[str, bytes]]:
        """Everything received up to and including the first message on ``topic``."""
        got: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + timeout
        while True:
            got.append(self.messages.get(timeout=max(0.01, deadline - time.monotonic())))
            if got[-1][0] == topic:
                return got

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def clients(site: Site) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(creds: ba.Credentials | None, client_id: str | None = None) -> Client:
        cl = Client(site.broker.port, creds, client_id or f"test-{len(made)}-{os.getpid()}")
        made.append(cl)
        return cl

    yield make
    for cl in made:
        cl.close()


def topic(board: str, sub: str) -> str:
    return f"hearth/{SITE}/{board}/{sub}"


# --------------------------------------------------------------------------------------------- real broker


def test_provisioned_board_connects(site: Site, clients: Callable[..., Client]) -> None:
    rc = clients(site.board_a, site.board_a.client_id).connect()
    assert not rc.is_failure, rc


def test_wrong_password_is_refused(site: Site, clients: Callable[..., Client]) -> None:
    rc = clients(ba.Credentials(BOARD_A, "not-the-password")).connect()
    assert rc.is_failure and str(rc) in ("Not authorized", "Bad user name or password"), rc


def test_anonymous_is_refused(site: Site, clients: Callable[..., Client]) -> None:
    assert clients(None).connect().is_failure


def test_other_boards_password_is_refused(site: Site, clients: Callable[..., Client]) -> None:
    assert clients(ba.Credentials(BOARD_A, site.board_b.password)).connect().is_failure


def test_board_publishes_own_state_but_not_other_topics_or_own_cmd(site: Site, clients: Callable[..., Client]) -> None:
    agent = clients(site.agent)
    assert not agent.connect().is_failure
    assert agent.subscribe(f"hearth/{SITE}/#") == [mqtt.ReasonCode(mqtt.PacketTypes.SUBACK, identifier=1)]
    board = clients(site.board_a)
    assert not board.connect().is_failure
    board.publish(topic(BOARD_B, "state/lamp"), '{"v":1,"t":"state","e":"lamp","val":1}')  # forged state
    board.publish(topic(BOARD_B, "cmd"), '{"v":1,"t":"cmd","id":"x","e":"lamp","a":"toggle"}')  # command a peer
    board.publish(topic(BOARD_A, "cmd"), '{"v":1,"t":"cmd","id":"y","e":"lamp","a":"toggle"}')  # its own cmd
    board.publish(f"hearth/{SITE}/agent/status", "offline")
    board.publish("hearth/othersite/x/state/a", "1")
    board.publish(topic(BOARD_A, "state/kitchen_light"), '{"v":1,"t":"state","e":"kitchen_light","val":1}',
                  retain=True)
    got = agent.until(topic(BOARD_A, "state/kitchen_light"))
    assert [t for t, _ in got] == [topic(BOARD_A, "state/kitchen_light")], got
    for sub in ("status", "hello", "event", "tele", "ack"):
        board.publish(topic(BOARD_A, sub), sub)
        assert agent.until(topic(BOARD_A, sub))[-1] == (topic(BOARD_A, sub), sub.encode())


def test_board_reads_only_its_own_cmd(site: Site, clients: Callable[..., Client]) -> None:
    board = clients(site.board_a)
    assert not board.connect().is_failure
    board.subscribe(topic(BOARD_A, "cmd"))
    board.subscribe(topic(BOARD_B, "cmd"))
    board.subscribe(topic(BOARD_B, "state/#"))
    agent = clients(site.agent)
    assert not agent.connect().is_failure
    agent.publish(topic(BOARD_B, "cmd"), "for b")
    agent.publish(topic(BOARD_B, "state/lamp"), "b state")
    agent.publish(topic(BOARD_A, "cmd"), "for a")
    assert board.until(topic(BOARD_A, "cmd")) == [(topic(BOARD_A, "cmd"), b"for a")]


def test_removed_board_is_refused_after_reload(tmp_path: Path, free_port: Callable[[], int]) -> None:
    pw, acl = tmp_path / "passwords", tmp_path / "acl"
    ba.provision_agent(pw, acl, SITE)
    creds = ba.provision_board(pw, acl, SITE, BOARD_A)
    broker = start_broker(tmp_path, free_port(), pw, acl)
    try:
        first = Client(broker.port, creds, "before")
        assert not first.connect().is_failure
        first.close()
        assert ba.remove_board(pw, acl, BOARD_A)
        broker.reload()
        assert Client(broker.port, creds, "after").connect().is_failure
        again = ba.provision_board(pw, acl, SITE, BOARD_A)  # re-provisioning issues a new password
        broker.reload()
        assert again.password != creds.password
        assert Client(broker.port, creds, "old").connect().is_failure
        ok = Client(broker.port, again, "new")
        assert not ok.connect().is_failure
        ok.close()
    finally:
        stop_broker(broker)


def test_entries_made_by_mosquitto_passwd_survive_and_verify(tmp_path: Path, free_port: Callable[[], int]) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.fail("mosquitto_passwd is required: apt-get install mosquitto")
    pw, acl = tmp_path / "passwords", tmp_path / "acl"
    subprocess.run([tool, "-c", "-b", str(pw), "legacy", "s3cret"], check=True)
    assert ba.verify_password("s3cret", ba.read_password_file(pw)["legacy"])
    assert not ba.verify_password("wrong", ba.read_password_file(pw)["legacy"])
    acl.write_text("# hand-written\nuser legacy\ntopic readwrite legacy/#\n\npattern read public/%u\n")
    creds = ba.provision_board(pw, acl, SITE, BOARD_A)
    assert set(ba.read_password_file(pw)) == {"legacy", BOARD_A}
    broker = start_broker(tmp_path, free_port(), pw, acl)
    try:
        for who in (ba.Credentials("legacy", "s3cret"), creds):
            cl = Client(broker.port, who, f"c-{who.username}")
            assert not cl.connect().is_failure
            cl.close()
    finally:
        stop_broker(broker)


# -------------------------------------------------------------------------------------------- files, no broker


def test_hash_matches_mosquitto_format() -> None:
    h = ba.hash_password("secret", salt=bytes(range(12)))
    assert h.startswith("$7$101$AAECAwQFBgcICQoL$") and len(h.split("$")[4]) == 88  # 64 bytes of base64
    assert ba.verify_password("secret", h) and not ba.verify_password("Secret", h)
    assert not ba.verify_password("secret", "plaintext")
    with pytest.raises(BrokerAuthError):
        ba.hash_password("")


def test_generate_credentials() -> None:
    user, password = ba.generate_credentials(BOARD_A)
    assert user == BOARD_A and len(password) >= 32
    assert password != ba.generate_credentials(BOARD_A)[1]


@pytest.mark.parametrize("name", ["a/b", "a+", "#", "home/#", "", "A1B2", "with space", "x" * 33, "é", "agent"])
def test_unsafe_board_ids_are_refused(name: str) -> None:
    with pytest.raises(BrokerAuthError) as ei:
        ba.generate_credentials(name)
    if any(c in name for c in "/+#"):
        assert "topic separators/wildcards" in str(ei.value)


def test_site_is_validated() -> None:
    with pytest.raises(BrokerAuthError, match="site 'home/#'"):
        ba.board_acl("home/#", BOARD_A)


def test_acl_lists_writable_topics_explicitly() -> None:
    lines = ba.board_acl(SITE, BOARD_A)
    base = f"hearth/{SITE}/{BOARD_A}"
    assert lines[0] == f"user {BOARD_A}"
    assert [line for line in lines if line.startswith("topic")] == [
        f"topic write {base}/status", f"topic write {base}/hello", f"topic write {base}/state/#",
        f"topic write {base}/event", f"topic write {base}/tele", f"topic write {base}/ack", f"topic read {base}/cmd"]
    assert ba.agent_acl(SITE)[-2:] == [f"topic readwrite hearth/{SITE}/#", "topic readwrite homeassistant/#"]


def test_files_keep_foreign_entries_and_replace_in_place(tmp_path: Path) -> None:
    pw, acl = tmp_path / "pw", tmp_path / "acl"
    pw.write_text("alice:$7$101$abc$def\n")
    pw.chmod(0o640)
    acl.write_text("# site rules\npattern read public/#\n\nuser alice\ntopic read alice/#\n")
    ba.provision_board(pw, acl, SITE, BOARD_A)
    ba.provision_board(pw, acl, SITE, BOARD_B)
    ba.provision_board(pw, acl, "cabin", BOARD_A)  # moved to another site: block replaced, not duplicated
    assert list(ba.read_password_file(pw)) == ["alice", BOARD_A, BOARD_B]
    assert stat_mode(pw) == 0o640
    text = acl.read_text()
    assert text.startswith("# site rules\npattern read public/#\n\nuser alice\ntopic read alice/#\n")
    assert text.count(f"user {BOARD_A}") == 1 and f"hearth/cabin/{BOARD_A}/cmd" in text
    assert f"hearth/{SITE}/{BOARD_A}" not in text and f"hearth/{SITE}/{BOARD_B}/cmd" in text
    assert text.index(f"user {BOARD_A}") < text.index(f"user {BOARD_B}")  # kept its place
    assert ba.remove_board(pw, acl, BOARD_A) and not ba.remove_board(pw, acl, BOARD_A)
    assert list(ba.read_password_file(pw)) == ["alice", BOARD_B]
    assert BOARD_A not in acl.read_text() and "pattern read public/#" in acl.read_text()
    assert "\n\n\n" not in acl.read_text()
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_new_files_are_private(tmp_path: Path) -> None:
    ba.provision_board(tmp_path / "pw", tmp_path / "acl", SITE, BOARD_A)
    assert stat_mode(tmp_path / "pw") == 0o600 and stat_mode(tmp_path / "acl") == 0o600


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BrokerAuthError, match=r"cannot (read|write) .*file/pw"):
        ba.set_password(blocker / "pw", BOARD_A, "x")


def test_conf_snippet() -> None:
    s = ba.mosquitto_conf_snippet("/etc/mosquitto/hearth.passwd", "/etc/mosquitto/hearth.acl")
    assert "allow_anonymous false\n" in s and "password_file /etc/mosquitto/hearth.passwd\n" in s
    assert "acl_file /etc/mosquitto/hearth.acl\n" in s and "listener 1883 0.0.0.0\n" in s
    assert issubclass(BrokerAuthError, HearthError)


def stat_mode(p: Path) -> int:
    return p.stat().st_mode & 0o777
