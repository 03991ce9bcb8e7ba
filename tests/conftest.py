"""Shared fixtures: real speech made with espeak-ng (fast, deterministic), real temp files."""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def espeak_to_wav(text: str, out: Path, *, rate: int = 16000, voice: str = "en-us", wpm: int = 150) -> Path:
    """Speak ``text`` with espeak-ng into a 16-bit mono WAV at ``rate`` Hz (sox resamples)."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.fail("espeak-ng and sox are required: run scripts/setup.sh (apt-get install espeak-ng sox)")
    raw = out.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out)], check=True)
    raw.unlink()
    return out


def read_pcm16(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy(), w.getframerate()


def write_pcm16(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return path


@pytest.fixture
def speech_wav(tmp_path: Path) -> Callable[..., Path]:
    """Factory: speech_wav("turn on the light", rate=16000) -> Path of a fresh WAV."""
    counter = iter(range(10_000))

    def make(text: str, *, rate: int = 16000, voice: str = "en-us", wpm: int = 150) -> Path:
        return espeak_to_wav(text, tmp_path / f"speech{next(counter)}.wav", rate=rate, voice=voice, wpm=wpm)

    return make


@pytest.fixture(scope="session")
def model_paths():  # type: ignore[no-untyped-def]
    """The installed offline defaults (scripts/setup.sh installs them into the model store)."""
    from edge.agent import resolve_models
    from edge.errors import HearthError
    from edge.model_store import ModelStore
    from edge.settings import Settings

    settings = Settings()
    try:
        return resolve_models(settings, ModelStore(settings.storage.model_dir))
    except HearthError as exc:
        pytest.fail(f"{exc}\n(the tests use the real default models: run `bash scripts/setup.sh --no-demo`)")


@pytest.fixture(scope="session")
def language_model(model_paths):  # type: ignore[no-untyped-def]
    from edge.llm import LanguageModel

    return LanguageModel(model_paths.llm, threads=1, context_tokens=2048)


@pytest.fixture(scope="session")
def transcriber(model_paths):  # type: ignore[no-untyped-def]
    from edge.stt import Transcriber

    return Transcriber(model_paths.stt, threads=2, audio_ctx=448, prompt="Hey Hearth.")


@pytest.fixture(scope="session")
def synthesizer(model_paths):  # type: ignore[no-untyped-def]
    from edge.tts import Synthesizer

    return Synthesizer(model_paths.tts_model, model_paths.tts_config, threads=1)
