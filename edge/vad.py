"""Endpointing: per-frame webrtcvad decisions turned into whole utterances by a small state machine.

The endpointer runs inside the audio loop (on a Pi), so every buffer is allocated once in ``__init__``: frames
are copied into a ring of pre-roll slots and into one utterance buffer of ``max_utterance_ms``; the only
allocation per utterance is the returned copy of its samples.

Times are *stream times*: seconds of audio fed to this endpointer since it was created (``reset`` and
``flush`` do not rewind the clock), so two utterances of one stream can be compared and latency can be
measured against ``end_detected_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import webrtcvad

from edge.errors import SettingsError
from edge.settings import VadSettings

EndReason = Literal["silence", "max_length", "end_of_stream"]
VAD_RATES = (8000, 16000, 32000, 48000)
# Silence kept after the last voiced frame: whisper transcribes the last word more reliably with a short tail,
# and more than this only costs decoding time.
TRAILING_MS = 200


@dataclass(frozen=True, eq=False)
class Utterance:
    """One endpointed stretch of speech.

    ``start_s``/``end_s`` bracket the voiced frames (onset and end of the last voiced frame);
    ``samples`` additionally holds the pre-roll (from ``audio_start_s``) and at most TRAILING_MS of tail.
    ``end_detected_s`` is when the endpointer could decide, i.e. ``end_s`` + the silence it had to wait for:
    latency to the user is measured from here, not from ``end_s``.
    """

    samples: npt.NDArray[np.int16]
    start_s: float
    end_s: float
    ended_by: EndReason
    end_detected_s: float
    audio_start_s: float


class Endpointer:
    """Feed int16 mono audio in any chunk size; get back finished utterances.

    Speech starts when at least ``start_speech_ms`` of voiced frames fall within a window 1.5x as long, so a
    single click never triggers; it ends after ``silence_ms`` of consecutive unvoiced frames, or is cut at
    ``max_utterance_ms``, pre-roll included (speech that goes on starts a new utterance right away, with no
    audio delivered twice). Utterances with less than
    ``min_speech_ms`` of voiced frames are dropped. Note that webrtcvad calls the first ~100 ms of a noisy
    stream speech while it adapts; ``min_speech_ms`` is what keeps that from becoming an utterance.

    Observers (a barge-in detector, a "listening" LED) poll ``in_speech``/``speech_started_s`` after ``feed``;
    speech that starts and ends within one ``feed`` call is only visible as the returned utterance.
    """

    def __init__(self, settings: VadSettings, sample_rate: int = 16000) -> None:
        if settings.frame_ms not in (10, 20, 30):
            raise SettingsError(f"[vad] frame_ms = {settings.frame_ms} is not supported; use 10, 20 or 30")
        if settings.aggressiveness not in (0, 1, 2, 3):
            raise SettingsError(f"[vad] aggressiveness = {settings.aggressiveness} is invalid; use 0..3")
        if sample_rate not in VAD_RATES:
            raise ValueError(f"webrtcvad needs one of {VAD_RATES} Hz, got {sample_rate}")
        fm = settings.frame_ms
        self.settings = settings
        self.sample_rate = sample_rate
        self._flen = sample_rate * fm // 1000
        self._start_frames = math.ceil(settings.start_speech_ms / fm)
        self._window = (3 * self._start_frames + 1) // 2  # 1.5x: an onset may have a gap, a click is too short
        self._silence_frames = math.ceil(settings.silence_ms / fm)
        max_frames = settings.max_utterance_ms // fm
        if self._window >= max_frames:
            raise SettingsError("[vad] max_utterance_ms must be well above start_speech_ms "
                                f"({settings.max_utterance_ms} vs {settings.start_speech_ms})")
        pre_roll = min(math.ceil(settings.pre_roll_ms / fm), max_frames - self._window)
        self._trail = sample_rate * min(TRAILING_MS, settings.silence_ms) // 1000
        self._vad = webrtcvad.Vad(settings.aggressiveness)
        self._cap = pre_roll + self._window
        self._ring = np.zeros((self._cap, self._flen), dtype=np.int16)
        self._views = [row.data.cast("B") for row in self._ring]  # webrtcvad reads bytes, no copy
        self._ring_voiced = [False] * self._cap
        self._utt = np.zeros(max_frames * self._flen, dtype=np.int16)
        self._utt_views = [self._utt[k * self._flen : (k + 1) * self._flen].data.cast("B")
                           for k in range(max_frames)]
        self._pending = np.zeros(self._flen, dtype=np.int16)
        self._npending = 0
        self._pos = 0  # stream clock in samples (end of the last processed frame)
        self._clear()

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def speech_started_s(self) -> float | None:
        """Onset of the utterance in progress, or None while idle."""
        return self._start / self.sample_rate if self._in_speech else None

    def feed(self, samples: npt.NDArray[np.int16]) -> list[Utterance]:
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise TypeError(f"Endpointer.feed needs 1-D int16 samples, got {samples.dtype} {samples.shape}")
        out: list[Utterance] = []
        flen, n, i = self._flen, samples.size, 0
        if self._npending:
            i = min(flen - self._npending, n)
            self._pending[self._npending : self._npending + i] = samples[:i]
            self._npending += i
            if self._npending < flen:
                return out
            self._npending = 0
            if (utt := self._frame(self._pending)) is not None:
                out.append(utt)
        while i + flen <= n:
            if (utt := self._frame(samples[i : i + flen])) is not None:
                out.append(utt)
            i += flen
        if i < n:
            self._npending = n - i
            self._pending[: self._npending] = samples[i:]
        return out

    def flush(self) -> list[Utterance]:
        """End of stream: finish the utterance in progress. A trailing partial frame is not classified."""
        self._pos += self._npending
        self._npending = 0
        utt = self._finish("end_of_stream") if self._in_speech else None
        self._clear()
        return [utt] if utt is not None else []

    def reset(self) -> None:
        """Forget buffered audio and any utterance in progress (e.g. after the assistant spoke).

        The webrtcvad instance is kept: its noise estimate is still valid, and a fresh one would again call
        the first ~100 ms speech.
        """
        self._pos += self._npending
        self._npending = 0
        self._clear()

    def _clear(self) -> None:
        self._in_speech = False
        self._count = 0  # frames in the ring since the last clear
        self._head = 0
        self._win_voiced = 0
        self._n = 0  # samples in the utterance buffer
        self._nvoiced = 0
        self._silent = 0
        self._start = self._audio_start = self._last_voiced_end = 0

    def _frame(self, frame: npt.NDArray[np.int16]) -> Utterance | None:
        flen = self._flen
        if self._in_speech:
            self._utt[self._n : self._n + flen] = frame
            self._n += flen
            self._pos += flen
            if self._vad.is_speech(self._utt_views[self._n // flen - 1], self.sample_rate):
                self._nvoiced += 1
                self._silent = 0
                self._last_voiced_end = self._pos
            else:
                self._silent += 1
            if self._silent >= self._silence_frames:
                return self._finish("silence")
            if self._n >= self._utt.size:
                return self._finish("max_length")
            return None
        slot = self._head
        self._ring[slot] = frame
        voiced = self._vad.is_speech(self._views[slot], self.sample_rate)
        self._pos += flen
        if self._count >= self._window:  # the frame leaving the window (read before this slot is reused)
            self._win_voiced -= self._ring_voiced[(slot - self._window) % self._cap]
        self._ring_voiced[slot] = voiced
        self._win_voiced += voiced
        self._head = (slot + 1) % self._cap
        self._count = min(self._count + 1, self._cap)
        if self._win_voiced >= self._start_frames:
            return self._begin()
        return None

    def _begin(self) -> Utterance | None:
        """Copy pre-roll + the triggering window into the utterance buffer; onset = oldest voiced frame in it."""
        newest = self._head - 1
        onset_age = next(a for a in range(min(self._count, self._window) - 1, -1, -1)
                         if self._ring_voiced[(newest - a) % self._cap])
        first_age = min(onset_age + self._cap - self._window, self._count - 1)
        flen = self._flen
        for k, age in enumerate(range(first_age, -1, -1)):
            self._utt[k * flen : (k + 1) * flen] = self._ring[(newest - age) % self._cap]
        self._n = (first_age + 1) * flen
        self._start = self._pos - (onset_age + 1) * flen
        self._audio_start = self._pos - self._n
        self._last_voiced_end = self._pos
        self._nvoiced = self._win_voiced
        self._silent = 0
        self._in_speech = True
        return self._finish("max_length") if self._n >= self._utt.size else None

    def _finish(self, reason: EndReason) -> Utterance | None:
        rate = self.sample_rate
        keep = min(self._n, self._last_voiced_end - self._audio_start + self._trail)
        voiced_ms = self._nvoiced * self.settings.frame_ms
        utt = None
        if voiced_ms >= self.settings.min_speech_ms:
            utt = Utterance(samples=self._utt[:keep].copy(), start_s=self._start / rate,
                            end_s=self._last_voiced_end / rate, ended_by=reason,
                            end_detected_s=self._pos / rate, audio_start_s=self._audio_start / rate)
        self._clear()
        return utt
