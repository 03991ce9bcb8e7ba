"""Settings: one TOML file, frozen dataclasses, validation errors that name the bad key.

Every field has a default, so an empty file (or no file) is a valid configuration that runs the offline
defaults. Unknown keys are errors, not warnings: a typo like ``silence_ms`` vs ``silense_ms`` would otherwise
silently keep the default and confuse the user.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import SettingsError


@dataclass(frozen=True)
class AudioSettings:
    input_device: str = ""  # name substring or index; "" = system default
    output_device: str = ""
    sample_rate: int = 16000  # what VAD and whisper see; other inputs are converted


@dataclass(frozen=True)
class VadSettings:
    frame_ms: int = 30  # webrtcvad accepts 10, 20 or 30
    aggressiveness: int = 2  # 0 (least) .. 3 (most aggressive at calling audio non-speech)
    pre_roll_ms: int = 300  # audio kept before speech onset so the first syllable is not cut
    start_speech_ms: int = 90  # voiced audio needed (within a short window) to declare speech started
    min_speech_ms: int = 250  # shorter bursts (clicks, coughs) are dropped
    silence_ms: int = 500  # trailing silence that ends an utterance
    max_utterance_ms: int = 12000  # force the end of an utterance that never goes quiet


@dataclass(frozen=True)
class ActivationSettings:
    wake_phrases: tuple[str, ...] = ("hey hearth", "hi hearth", "okay hearth")
    require_wake_phrase: bool = True
    follow_up_s: float = 6.0  # after an answer, this long without needing the wake phrase


@dataclass(frozen=True)
class SttSettings:
    model: str = "whisper-tiny.en"  # catalog name or a path to a ggml .bin
    threads: int = 2
    audio_ctx: int = 448  # ~9 s encoder window instead of 30 s: much faster for short commands (benchmarks.md)
    language: str = "en"
    prompt: str = "Hey Hearth."  # biases decoding toward known names; device names are appended later


@dataclass(frozen=True)
class LlmSettings:
    enabled: bool = True
    model: str = "smollm2-135m-instruct"
    threads: int = 1  # runs while piper synthesizes: one core each (see docs/architecture.md)
    context_tokens: int = 2048
    max_reply_tokens: int = 96
    temperature: float = 0.3
    timeout_s: float = 15.0
    first_token_timeout_s: float = 8.0
    persona: str = (
        "You are Hearth, a friendly voice assistant in a family home. Answer in one or two short "
        "sentences of plain spoken English, without lists, markdown or emoji."
    )
    memory_turns: int = 4  # past exchanges kept in the prompt: more = slower prompts on a small CPU
    session_idle_s: float = 300.0  # a new session (fresh memory) starts after this long without a turn
    fallback_reply: str = "Sorry, I can't think right now. Please try again in a moment."


@dataclass(frozen=True)
class TtsSettings:
    voice: str = "piper-en_US-joe-medium"
    threads: int = 1
    length_scale: float = 1.0  # >1 slower speech
    cache_size: int = 64  # fixed replies kept as synthesized audio
    first_chunk_min_words: int = 3  # speak the first clause early instead of waiting for a full sentence


@dataclass(frozen=True)
class StorageSettings:
    home: str = ""  # "" = $HEARTH_HOME or ~/.local/share/hearth; model store and database live here
    database: str = ""  # "" = <home>/hearth.db

    @property
    def home_path(self) -> Path:
        if self.home:
            return Path(self.home).expanduser()
        return Path(os.environ.get("HEARTH_HOME") or Path.home() / ".local" / "share" / "hearth")

    @property
    def database_path(self) -> Path:
        return Path(self.database).expanduser() if self.database else self.home_path / "hearth.db"

    @property
    def model_dir(self) -> Path:
        return self.home_path / "models"


@dataclass(frozen=True)
class BoardsSettings:
    enabled: bool = True  # `hearth run` starts the serial and MQTT links
    serial_ports: tuple[str, ...] = ("auto",)  # "auto" = USB ports with a known ESP32 USB-serial chip
    mqtt_host: str = "127.0.0.1"  # "" = no MQTT link
    mqtt_port: int = 1883
    mqtt_username: str = ""  # the agent's own broker account ("" = anonymous)
    mqtt_password: str = ""
    site: str = "home"  # topic prefix hearth/<site>/...
    home_assistant: bool = True  # publish MQTT discovery configs and accept HA's commands (docs/boards.md)
    ack_timeout_s: float = 0.5  # per attempt; the same command id is re-sent after it
    command_attempts: int = 3
    confirm_window_s: float = 15.0  # how long a "say yes to confirm" question stays open
    telemetry_keep_days: float = 30.0
    telemetry_max_rows: int = 2_000_000
    broker_password_file: str = ""  # Mosquitto password_file written by provisioning; "" = <home>/mosquitto/passwd
    broker_acl_file: str = ""  # Mosquitto acl_file; "" = <home>/mosquitto/acl


@dataclass(frozen=True)
class Settings:
    audio: AudioSettings = field(default_factory=AudioSettings)
    vad: VadSettings = field(default_factory=VadSettings)
    activation: ActivationSettings = field(default_factory=ActivationSettings)
    stt: SttSettings = field(default_factory=SttSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    tts: TtsSettings = field(default_factory=TtsSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    boards: BoardsSettings = field(default_factory=BoardsSettings)


# Range checks: (section, key) -> (predicate, what is allowed)
_CHECKS: dict[tuple[str, str], tuple[typing.Callable[[Any], bool], str]] = {
    ("audio", "sample_rate"): (lambda v: v == 16000, "16000 (VAD and whisper need 16 kHz)"),
    ("vad", "frame_ms"): (lambda v: v in (10, 20, 30), "one of 10, 20, 30"),
    ("vad", "aggressiveness"): (lambda v: 0 <= v <= 3, "0..3"),
    ("vad", "pre_roll_ms"): (lambda v: 0 <= v <= 2000, "0..2000"),
    ("vad", "start_speech_ms"): (lambda v: 10 <= v <= 1000, "10..1000"),
    ("vad", "min_speech_ms"): (lambda v: 0 <= v <= 5000, "0..5000"),
    ("vad", "silence_ms"): (lambda v: 100 <= v <= 5000, "100..5000"),
    ("vad", "max_utterance_ms"): (lambda v: 1000 <= v <= 60000, "1000..60000"),
    ("activation", "follow_up_s"): (lambda v: 0 <= v <= 120, "0..120"),
    ("stt", "threads"): (lambda v: 1 <= v <= 64, "1..64"),
    ("stt", "audio_ctx"): (lambda v: 0 <= v <= 1500, "0..1500 (0 = full 30 s window)"),
    ("llm", "threads"): (lambda v: 1 <= v <= 64, "1..64"),
    ("llm", "context_tokens"): (lambda v: 256 <= v <= 32768, "256..32768"),
    ("llm", "max_reply_tokens"): (lambda v: 8 <= v <= 2048, "8..2048"),
    ("llm", "temperature"): (lambda v: 0 <= v <= 2, "0..2"),
    ("llm", "timeout_s"): (lambda v: 0 < v <= 600, "0..600 seconds"),
    ("llm", "memory_turns"): (lambda v: 0 <= v <= 100, "0..100"),
    ("llm", "session_idle_s"): (lambda v: 0 <= v <= 86400, "0..86400 seconds"),
    ("llm", "first_token_timeout_s"): (lambda v: 0 < v <= 600, "0..600 seconds"),
    ("tts", "threads"): (lambda v: 1 <= v <= 64, "1..64"),
    ("tts", "length_scale"): (lambda v: 0.3 <= v <= 3, "0.3..3"),
    ("tts", "cache_size"): (lambda v: 0 <= v <= 10000, "0..10000"),
    ("tts", "first_chunk_min_words"): (lambda v: 1 <= v <= 50, "1..50"),
    ("boards", "mqtt_port"): (lambda v: 1 <= v <= 65535, "1..65535"),
    ("boards", "site"): (lambda v: bool(re.fullmatch(r"[a-z0-9_-]{1,32}", v)), "1-32 of a-z 0-9 _ -"),
    ("boards", "ack_timeout_s"): (lambda v: 0.01 <= v <= 30, "0.01..30 seconds"),
    ("boards", "command_attempts"): (lambda v: 1 <= v <= 10, "1..10"),
    ("boards", "confirm_window_s"): (lambda v: 1 <= v <= 120, "1..120 seconds"),
    ("boards", "telemetry_keep_days"): (lambda v: 0 < v <= 3650, "0..3650 days"),
    ("boards", "telemetry_max_rows"): (lambda v: 1000 <= v <= 10**9, "1000..1000000000"),
}


def _coerce(section: str, key: str, value: Any, annotation: Any) -> Any:
    where = f"[{section}] {key}"
    if annotation is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{where} must be a whole number, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingsError(f"{where} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_device"):
            return str(value)  # device index given as a number
        if not isinstance(value, str):
            raise SettingsError(f'{where} must be a string in quotes, got {value!r}')
        return value
    if typing.get_origin(annotation) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsError(f'{where} must be a list of strings, e.g. ["hey hearth"], got {value!r}')
        return tuple(value)
    raise SettingsError(f"{where}: unsupported setting type {annotation!r}")  # pragma: no cover


def _build_section(section: str, cls: type[Any], data: Any) -> Any:
    if not isinstance(data, dict):
        raise SettingsError(f"[{section}] must be a table (a [{section}] header), got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise SettingsError(
                f"unknown setting [{section}] {key}; valid keys are: {', '.join(sorted(known))}"
            )
        v = _coerce(section, key, value, hints[key])
        check = _CHECKS.get((section, key))
        if check and not check[0](v):
            raise SettingsError(f"[{section}] {key} = {value!r} is out of range; allowed: {check[1]}")
        kwargs[key] = v
    return cls(**kwargs)


def settings_from_dict(data: dict[str, Any]) -> Settings:
    hints = typing.get_type_hints(Settings)
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in hints:
            raise SettingsError(
                f"unknown section [{name}]; valid sections are: {', '.join(sorted(hints))}"
            )
        sections[name] = _build_section(name, hints[name], value)
    s = Settings(**sections)
    if s.vad.min_speech_ms > s.vad.max_utterance_ms:
        raise SettingsError("[vad] min_speech_ms must be smaller than [vad] max_utterance_ms")
    return s


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load settings from ``path``, or $HEARTH_CONFIG, or ./hearth.toml, or defaults if none exists."""
    if path is None:
        env = os.environ.get("HEARTH_CONFIG")
        if env:
            path = env
        elif Path("hearth.toml").is_file():
            path = "hearth.toml"
        else:
            return Settings()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            f"settings file {p} does not exist; copy hearth.example.toml to {p} or omit --config"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read settings file {p}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{p} is not valid TOML: {exc}; compare with hearth.example.toml") from exc
    try:
        return settings_from_dict(data)
    except SettingsError as exc:
        raise SettingsError(f"{p}: {exc}") from None


def replace(settings: Settings, section: str, **changes: Any) -> Settings:
    """Return a copy with some keys of one section changed (used by CLI flags and tests)."""
    sec = getattr(settings, section)
    return dataclasses.replace(settings, **{section: dataclasses.replace(sec, **changes)})

