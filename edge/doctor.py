"""`hearth doctor`: every check prints OK or what is wrong and the command that fixes it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from collections.abc import Callable

from edge import agent, audio_io
from edge.errors import HearthError
from edge.model_store import ModelStore
from edge.settings import Settings
from edge.turnlog import TurnLog


def run_checks(settings: Settings, store: ModelStore) -> int:
    problems = 0

    def report(ok: bool, what: str, fix: str = "") -> None:
        nonlocal problems
        problems += not ok
        print(f"[{'ok' if ok else 'FAIL'}] {what}" + ("" if ok else f"\n       fix: {fix}"))

    report(True, "settings are valid")
    try:
        paths = agent.resolve_models(settings, store)
        report(True, f"models installed: {paths.stt.name}, {paths.llm.name if paths.llm else '(LLM off)'}, "
               f"{paths.tts_model.name}")
    except HearthError as exc:
        report(False, f"models: {exc}", "hearth models install --defaults")
    if settings.llm.enabled:
        report(importlib.util.find_spec("llama_cpp") is not None, "llama-cpp-python is installed",
               "bash scripts/setup.sh (builds a portable wheel once); until then answers use the fallback")
    cores = os.cpu_count() or 1
    report(settings.stt.threads <= cores, f"whisper threads ({settings.stt.threads}) <= cores ({cores})",
           f"set [stt] threads = {cores}")
    overlap = settings.llm.threads + settings.tts.threads
    report(overlap <= cores, f"LLM + TTS threads ({overlap}) fit in {cores} cores (they run at the same time)",
           "lower [llm] threads or [tts] threads; oversubscribed OpenMP pools run ~10x slower")
    try:
        TurnLog(settings.storage.database_path).close()
        report(True, f"turn log writable: {settings.storage.database_path}")
    except HearthError as exc:
        report(False, str(exc), "fix the folder permissions or set [storage] database")
    free = shutil.disk_usage(settings.storage.home_path if settings.storage.home_path.exists() else "/").free
    report(free > 500 * 2**20, f"free disk space {free / 2**30:.1f} GiB", "free at least 500 MiB for models/logs")
    try:
        devices = audio_io.list_devices()
        mics = [d for d in devices if d.max_input_channels > 0]
        report(bool(mics), f"microphones found: {len(mics)}",
               "connect a USB microphone; file input works without one: hearth run --input FILE.wav")
        if mics and settings.audio.input_device:
            audio_io.find_device(devices, settings.audio.input_device, "input")
            report(True, f"configured microphone {settings.audio.input_device!r} is present")
    except HearthError as exc:
        report(False, f"audio: {exc}", "pip install 'hearth[audio]' (needs portaudio19-dev); "
               "or use WAV files with --input")
    if settings.boards.enabled:
        _boards(settings, report)
    print("all good" if problems == 0 else f"{problems} problem(s) found")
    return 0 if problems == 0 else 1


def _boards(settings: Settings, report: Callable[..., None]) -> None:
    """Boards: what the registry knows, USB ports that look like boards, and whether the broker answers."""
    from edge.registry import Registry
    from edge.serial_link import find_ports

    try:
        reg = Registry(settings.storage.database_path)
        boards = reg.boards()
        reg.close()
        quarantined = [b.id for b in boards if b.status == "quarantined"]
        report(not quarantined, f"boards known: {len(boards)}" + (f", quarantined: {', '.join(quarantined)}"
                                                                 if quarantined else ""),
               "provision them (hearth boards provision --port ...) or remove them from the broker")
    except HearthError as exc:
        report(False, f"device registry: {exc}", "fix the folder permissions or set [storage] database")
    ports = find_ports()
    report(True, f"USB serial ports that look like ESP32 boards: {', '.join(p for p, _ in ports) or 'none'}")
    cfg = settings.boards
    if cfg.mqtt_host:
        try:
            with socket.create_connection((cfg.mqtt_host, cfg.mqtt_port), timeout=2):
                report(True, f"MQTT broker answers at {cfg.mqtt_host}:{cfg.mqtt_port}")
        except OSError as exc:
            report(False, f"MQTT broker at {cfg.mqtt_host}:{cfg.mqtt_port}: {exc}",
                   "sudo apt-get install mosquitto (see docs/boards.md), or set [boards] mqtt_host = \"\" for "
                   "serial-only boards")
        if not cfg.mqtt_username:
            print("[warn] the agent uses the broker anonymously: if it allows anonymous clients, anything on the "
                  "network can publish as a board\n       fix: hearth boards broker-setup")
