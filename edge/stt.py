"""Speech-to-text with whisper.cpp (pywhispercpp), tuned for short spoken commands.

The model is loaded once and reused; calls are serialized with a lock because a whisper.cpp context is not
re-entrant. ``audio_ctx`` shrinks the encoder window from 30 s to ~9 s, which is the single biggest latency
win for 2-4 s commands on a Pi-class CPU (see docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import ModelError, STTError

SAMPLE_RATE = 16000
# whisper.cpp rejects inputs under 100 ms and is unreliable under ~1 s: pad short utterances with silence.
_MIN_SAMPLES = SAMPLE_RATE
# Whisper hallucinates these on silence/noise; an utterance that yields only one of them is treated as empty.
_HALLUCINATIONS = {"", "you", "thank you", "thanks for watching", "bye", "the end", "so", "the", "a", "i"}
_NON_SPEECH = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")


@dataclass(frozen=True)
class Transcript:
    text: str
    audio_s: float
    elapsed_s: float

    @property
    def is_empty(self) -> bool:
        return normalize(self.text) in _HALLUCINATIONS


def normalize(text: str) -> str:
    """Lower-case words only: used for matching wake phrases and comparing transcripts."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def _clean(text: str) -> str:
    text = _NON_SPEECH.sub(" ", text)
    return collapse_repeats(re.sub(r"\s+", " ", text).strip())


def collapse_repeats(text: str) -> str:
    """ "Turn on the light. Turn on the light. Turn on the" -> "Turn on the light."

    tiny.en sometimes loops on a short prompt-like phrase; with the token cap the loop is cut before whisper's
    own repetition check (which needs ~32 tokens) would trigger a re-decode, so the loop is removed here.
    """
    words = text.split()
    keys = [normalize(w) for w in words]
    n = len(words)
    for period in range(3, n // 2 + 1):  # "no no", "bye bye" are speech, not a decoder loop
        if all(keys[i] == keys[i % period] for i in range(period, n)):
            return " ".join(words[:period])
    return text


class Transcriber:
    """One loaded whisper.cpp model."""

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int = 2,
        audio_ctx: int = 448,
        language: str = "en",
        prompt: str = "",
    ) -> None:
        if not model_path.is_file():
            raise ModelError(f"whisper model {model_path} does not exist: run `hearth models install`")
        try:
            from pywhispercpp.model import Model
        except ImportError as exc:
            raise ModelError("pywhispercpp is not installed: run scripts/setup.sh") from exc
        self.model_path = model_path
        self.prompt = prompt
        self.audio_ctx = audio_ctx
        self._lock = threading.Lock()
        t0 = time.perf_counter()
        # whisper.cpp prints its load log on the C stdout/stderr; keep the CLI's output clean.
        with _quiet_fds():
            try:
                self._model = Model(
                    str(model_path),
                    redirect_whispercpp_logs_to=None,
                    n_threads=threads,
                    audio_ctx=audio_ctx,
                    language=language,
                    print_progress=False,
                    print_realtime=False,
                    print_timestamps=False,
                    no_context=True,
                    single_segment=True,
                    suppress_blank=True,
                    # Temperature fallback stays (without it "Hey Hearth." came out as "Hey"), but each retry
                    # samples one decoder instead of five, and a decode stops at 64 tokens: a hard or noisy
                    # clip costs a few short decodes, not seconds.
                    greedy={"best_of": 1},
                    max_tokens=64,
                )
            except Exception as exc:  # pywhispercpp raises bare RuntimeError/Exception on a bad file
                raise ModelError(
                    f"whisper.cpp could not load {model_path} ({exc}); "
                    "run `hearth models verify` and reinstall the model"
                ) from exc
        self.load_s = time.perf_counter() - t0

    def _ctx_for(self, n_samples: int) -> int:
        """The configured short window, widened for utterances longer than it (else their end is cut off).

        One encoder frame covers 20 ms; shrinking the window below ~448 frames costs accuracy, so the
        configured value is a floor, not a target.
        """
        if self.audio_ctx == 0:
            return 0
        needed = n_samples * 50 // SAMPLE_RATE + 50  # + 1 s margin
        return min(1500, max(self.audio_ctx, needed))

    def transcribe(self, samples: np.ndarray, *, extra_prompt: str = "") -> Transcript:
        """Transcribe int16 16 kHz mono samples. ``extra_prompt`` adds names (devices, areas) to bias toward."""
        if samples.dtype != np.int16:
            raise STTError(f"transcribe() needs int16 samples, got {samples.dtype}")
        audio = samples.astype(np.float32) / 32768.0
        if audio.size < _MIN_SAMPLES:
            audio = np.concatenate([audio, np.zeros(_MIN_SAMPLES - audio.size, dtype=np.float32)])
        prompt = " ".join(p for p in (self.prompt, extra_prompt) if p)
        t0 = time.perf_counter()
        with self._lock:
            try:
                # People say at most ~4 words (~6 tokens) a second: a cap from the clip's length stops a
                # decoder that started repeating itself early, on every temperature-fallback attempt too.
                max_tokens = min(64, 8 + int(8 * audio.size / SAMPLE_RATE))
                segments = self._model.transcribe(audio, initial_prompt=prompt, audio_ctx=self._ctx_for(audio.size),
                                                  max_tokens=max_tokens)
            except Exception as exc:
                raise STTError(f"whisper.cpp failed on a {audio.size / SAMPLE_RATE:.1f} s clip: {exc}") from exc
        text = _clean(" ".join(s.text for s in segments))
        return Transcript(text=text, audio_s=samples.size / SAMPLE_RATE, elapsed_s=time.perf_counter() - t0)


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Silence C-level stderr while a native library loads (unless HEARTH_DEBUG is set)."""
    if os.environ.get("HEARTH_DEBUG"):
        yield
        return
    try:
        fd = 2
        saved = os.dup(fd)
    except (OSError, io.UnsupportedOperation):
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
