"""The `hearth` command as a user runs it: real subprocesses, real models, real files."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import espeak_to_wav


def hearth(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Models from the shared store, but a private database and reply folder per test."""
    cfg = tmp_path / "hearth.toml"
    models = Path(os.environ.get("HEARTH_HOME", Path.home() / ".local/share/hearth")) / "models"
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(models)
    cfg.write_text(f'[storage]\nhome = "{home}"\n')
    return {**os.environ, "HEARTH_CONFIG": str(cfg)}


def test_demo_json(env: dict[str, str]) -> None:
    r = hearth("demo", "--json", env=env)
    assert r.returncode == 0, r.stderr
    (turn,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert "capital" in turn["transcript"].lower() and turn["accepted"]
    assert set(turn["timings_ms"]) >= {"asr", "llm_first_token", "tts_first_audio", "end_of_speech_to_first_audio"}
    wav = Path(turn["output_wav"])
    assert wav.is_file() and wav.stat().st_size > 20_000
    log = hearth("log", "--json", env=env)
    assert json.loads(log.stdout.splitlines()[-1])["reply"] == turn["reply"]


def test_run_input_converts_other_rates(env: dict[str, str], tmp_path: Path) -> None:
    wav = espeak_to_wav("Hey Hearth, what time is it?", tmp_path / "q44.wav", rate=44100)
    r = hearth("run", "--input", str(wav), "--once", "--json", "--out", str(tmp_path / "a.wav"), env=env)
    assert r.returncode == 0, r.stderr
    turn = json.loads(r.stdout.splitlines()[0])
    assert turn["handled_by"] == "intent:time" and (tmp_path / "a.wav").is_file()


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p.write_text("just some text"), "not a WAV"),
        (lambda p: p.write_bytes(Path(p.parent / "src.wav").read_bytes()[:30]), "truncated"),
        (lambda p: None, "does not exist"),
    ],
)
def test_bad_input_files_get_a_clear_message(env: dict[str, str], tmp_path: Path, make, needle: str) -> None:  # type: ignore[no-untyped-def]
    espeak_to_wav("hello", tmp_path / "src.wav")
    bad = tmp_path / "bad.wav"
    make(bad)
    for cmd in (["run", "--input", str(bad), "--once"], ["transcribe", str(bad)]):
        r = hearth(*cmd, env=env)
        assert r.returncode == 1
        assert ("Traceback" not in r.stderr and needle in r.stderr.lower()) or needle in r.stderr, r.stderr


def test_silence_only_input(env: dict[str, str], tmp_path: Path) -> None:
    wav = tmp_path / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(wav), "trim", "0", "3"], check=True)
    r = hearth("run", "--input", str(wav), "--once", env=env)
    assert r.returncode == 1 and "no speech found" in r.stderr and "Traceback" not in r.stderr


def test_broken_config_names_the_key(env: dict[str, str], tmp_path: Path) -> None:
    cfg = Path(env["HEARTH_CONFIG"])
    cfg.write_text(cfg.read_text() + "[vad]\nsilence_ms = 50\n")
    r = hearth("config", "check", env=env)
    assert r.returncode == 2 and "[vad] silence_ms = 50 is out of range" in r.stderr
    cfg.write_text("[vad\n")
    r = hearth("demo", env=env)
    assert r.returncode == 2 and "not valid TOML" in r.stderr and "Traceback" not in r.stderr


def test_unknown_model_in_settings(env: dict[str, str]) -> None:
    cfg = Path(env["HEARTH_CONFIG"])
    cfg.write_text(cfg.read_text() + '[stt]\nmodel = "whisper-huge"\n')
    r = hearth("config", "check", env=env)
    assert r.returncode == 1 and "whisper-huge" in r.stderr and "Traceback" not in r.stderr


def test_llm_disabled_still_answers(env: dict[str, str], tmp_path: Path) -> None:
    cfg = Path(env["HEARTH_CONFIG"])
    cfg.write_text(cfg.read_text() + "[llm]\nenabled = false\n")
    r = hearth("ask", "Why is the sky blue?", "--json", "--out", str(tmp_path / "r.wav"), env=env)
    assert r.returncode == 0, r.stderr
    turn = json.loads(r.stdout)
    assert turn["handled_by"] == "fallback" and "disabled" in turn["errors"][0]
    assert (tmp_path / "r.wav").stat().st_size > 20_000


def test_say_and_transcribe_roundtrip(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "say.wav"
    r = hearth("say", "Turn on the kitchen light.", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    t = hearth("transcribe", str(out), env=env)
    assert "kitchen light" in t.stdout.lower(), t.stdout + t.stderr


def test_kill_mid_turn_then_restart(env: dict[str, str], tmp_path: Path) -> None:
    """SIGKILL while the agent is answering: the database stays intact and the next start carries on."""
    db = Path(env["HEARTH_CONFIG"]).parent / "home" / "hearth.db"
    first = hearth("ask", "Say hello.", env=env)
    assert first.returncode == 0, first.stderr
    cfg = Path(env["HEARTH_CONFIG"])
    cfg.write_text(cfg.read_text() + "[llm]\nmax_reply_tokens = 1500\ncontext_tokens = 4096\n")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "ask", "Write a very long story about a dragon."],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the turn row exists (status 'started'), then kill
        try:
            rows = sqlite3.connect(db).execute("SELECT count(*) FROM turns WHERE status='started'").fetchone()[0]
        except sqlite3.Error:
            rows = 0
        if rows:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    statuses = [s for (s,) in conn.execute("SELECT status FROM turns ORDER BY id")]
    assert statuses == ["done", "started"]
    again = hearth("ask", "What time is it?", env=env)
    assert again.returncode == 0 and "interrupted" in again.stderr
    statuses = [s for (s,) in sqlite3.connect(db).execute("SELECT status FROM turns ORDER BY id")]
    assert statuses == ["done", "interrupted", "done"]
