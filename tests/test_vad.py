"""Endpointer on real espeak-ng speech placed at known times in silence or noise."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge.errors import SettingsError
from edge.settings import VadSettings
from edge.vad import TRAILING_MS, Endpointer, Utterance
from tests.conftest import read_pcm16

RATE = 16000
TOL = 0.15  # seconds allowed between detected and true speech boundaries
SENTENCE = "Hey Hearth, what is the capital of France?"


def speech(speech_wav: Callable[..., Path], text: str = SENTENCE) -> np.ndarray:
    samples, rate = read_pcm16(speech_wav(text))
    assert rate == RATE
    return samples


def bounds(x: np.ndarray) -> tuple[float, float]:
    """True onset/offset inside a clip: first/last 10 ms frame above 2% of the loudest frame's RMS."""
    frames = x[: x.size // 160 * 160].astype(np.float64).reshape(-1, 160)
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = np.flatnonzero(rms > 0.02 * rms.max())
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def trimmed(x: np.ndarray) -> np.ndarray:
    on, off = bounds(x)
    return x[round(on * RATE) : round(off * RATE)]


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def white(seconds: float, rms: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(round(seconds * RATE)) * rms


def pink(seconds: float, rms: float, seed: int = 0) -> np.ndarray:
    n = round(seconds * RATE)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    spec[0] = 0
    spec[1:] /= np.sqrt(np.arange(1, spec.size))  # 1/f power
    x = np.fft.irfft(spec, n)
    return x / x.std() * rms


def pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def run(x: np.ndarray, settings: VadSettings | None = None, chunk: int | None = None) -> list[Utterance]:
    ep = Endpointer(settings or VadSettings())
    out: list[Utterance] = []
    step = chunk or max(x.size, 1)
    for i in range(0, x.size, step):
        out += ep.feed(x[i : i + step])
    return out + ep.flush()


def place(*parts: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Concatenate parts; return the signal and the start time of each part."""
    starts = np.cumsum([0, *(p.size for p in parts[:-1])]) / RATE
    return np.concatenate(parts), [float(s) for s in starts]


def check_bracket(u: Utterance, signal: np.ndarray, onset: float, offset: float) -> None:
    assert abs(u.start_s - onset) <= TOL, (u.start_s, onset)
    assert abs(u.end_s - offset) <= TOL, (u.end_s, offset)
    assert u.audio_start_s < onset, "the pre-roll must contain the onset (first syllable not cut)"
    assert u.start_s - u.audio_start_s >= VadSettings().pre_roll_ms / 1000 - 1e-9, "pre-roll kept"
    first = round(u.audio_start_s * RATE)
    assert np.array_equal(u.samples, signal[first : first + u.samples.size]), "samples are the input audio"
    tail = u.samples.size / RATE - (u.end_s - u.audio_start_s)
    assert 0 <= tail <= TRAILING_MS / 1000 + 1e-9


def test_silence_gives_nothing() -> None:
    assert run(quiet(5.0)) == []
    assert run(pcm(white(5.0, 20))) == []  # a quiet mic's hiss


@pytest.mark.parametrize("aggressiveness", [1, 2, 3])
@pytest.mark.parametrize("noise", [white, pink])
def test_moderate_noise_gives_nothing(noise: Callable[..., np.ndarray], aggressiveness: int) -> None:
    # -36 dBFS. Louder pink noise (-30 dBFS) does trigger webrtcvad at every aggressiveness; STT then has to
    # reject the empty transcript.
    for seed in range(3):
        assert run(pcm(noise(8.0, 500, seed)), VadSettings(aggressiveness=aggressiveness)) == []


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_one_sentence_is_bracketed(speech_wav: Callable[..., Path], frame_ms: int) -> None:
    clip = speech(speech_wav)
    on, off = bounds(clip)
    signal, (_, t0, _) = place(quiet(1.0), clip, quiet(1.5))
    settings = VadSettings(frame_ms=frame_ms)
    (u,) = run(signal, settings)
    check_bracket(u, signal, t0 + on, t0 + off)
    assert u.ended_by == "silence"
    waited = u.end_detected_s - u.end_s
    assert settings.silence_ms / 1000 <= waited < (settings.silence_ms + frame_ms) / 1000


def test_two_sentences_a_second_apart_are_two(speech_wav: Callable[..., Path]) -> None:
    a, b = speech(speech_wav, "Turn on the kitchen light."), speech(speech_wav, "Set a timer for five minutes.")
    signal, (_, ta, _, tb, _) = place(quiet(0.8), a, quiet(1.0), b, quiet(1.0))
    u1, u2 = run(signal)
    check_bracket(u1, signal, ta + bounds(a)[0], ta + bounds(a)[1])
    check_bracket(u2, signal, tb + bounds(b)[0], tb + bounds(b)[1])
    assert u1.end_detected_s <= u2.start_s


def test_gap_shorter_than_silence_ms_does_not_split(speech_wav: Callable[..., Path]) -> None:
    a = trimmed(speech(speech_wav, "Turn on the kitchen light."))
    b = trimmed(speech(speech_wav, "Set a timer for five minutes."))
    signal, (_, ta, _, tb, _) = place(quiet(0.8), a, quiet(0.3), b, quiet(1.0))
    (u,) = run(signal, VadSettings(silence_ms=500))
    check_bracket(u, signal, ta, tb + b.size / RATE)
    # ...and with a shorter silence_ms the same audio is two utterances, so the setting is what decides.
    assert len(run(signal, VadSettings(silence_ms=150))) == 2


def test_long_speech_is_cut_at_max_length_and_continues(speech_wav: Callable[..., Path]) -> None:
    clip = speech(speech_wav, "One two three four five six seven eight nine ten eleven twelve thirteen fourteen")
    on, off = bounds(clip)
    assert off - on > 4.0
    signal, (_, t0, _) = place(quiet(0.5), clip, quiet(1.0))
    settings = VadSettings(max_utterance_ms=2000)
    utts = run(signal, settings)
    assert len(utts) >= 2
    first = utts[0]
    assert first.ended_by == "max_length"
    assert first.samples.size <= 2.0 * RATE
    assert abs(first.start_s - (t0 + on)) <= TOL
    for u, v in itertools.pairwise(utts):
        assert u.samples.size <= 2.0 * RATE
        assert v.audio_start_s >= u.end_detected_s, "no audio is delivered twice"
        assert v.start_s < u.end_detected_s + 0.3, "speech that goes on starts a new utterance at once"
    assert abs(utts[-1].end_s - (t0 + off)) <= TOL


def test_bursts_shorter_than_min_speech_are_dropped() -> None:
    def with_burst(ms: int) -> np.ndarray:
        return place(quiet(1.0), pcm(white(ms / 1000, 6000, seed=ms)), quiet(1.0))[0]

    assert run(with_burst(40)) == []  # a click never even starts an utterance
    assert run(with_burst(150)) == []  # starts one, but 150 ms voiced < min_speech_ms = 250
    assert len(run(with_burst(150), VadSettings(min_speech_ms=0))) == 1
    (u,) = run(with_burst(600))
    assert abs(u.start_s - 1.0) <= TOL


@pytest.mark.parametrize("chunk", [1, 123, 480, 4001])
def test_chunk_size_does_not_change_the_result(speech_wav: Callable[..., Path], chunk: int) -> None:
    a, b = speech(speech_wav, "Turn on the kitchen light."), speech(speech_wav, "What time is it?")
    signal = place(quiet(0.7), a, quiet(1.0), b)[0]  # ends mid-stream: flush finishes the second
    whole = run(signal)
    pieces = run(signal, chunk=chunk)
    assert len(whole) == len(pieces) == 2
    for u, v in zip(whole, pieces, strict=True):
        assert (u.start_s, u.end_s, u.ended_by, u.end_detected_s, u.audio_start_s) == (
            v.start_s, v.end_s, v.ended_by, v.end_detected_s, v.audio_start_s)
        assert np.array_equal(u.samples, v.samples)


def test_flush_mid_speech_ends_by_end_of_stream(speech_wav: Callable[..., Path]) -> None:
    clip = speech(speech_wav)
    on, off = bounds(clip)
    cut = round((on + off) / 2 * RATE)
    signal = place(quiet(0.8), clip[:cut])[0]
    ep = Endpointer(VadSettings())
    assert ep.feed(signal) == []
    assert ep.in_speech
    (u,) = ep.flush()
    assert u.ended_by == "end_of_stream"
    assert u.end_detected_s == pytest.approx(signal.size / RATE)
    assert abs(u.start_s - (0.8 + on)) <= TOL
    assert not ep.in_speech and ep.flush() == []


def test_speech_in_noise_is_found(speech_wav: Callable[..., Path]) -> None:
    clip = speech(speech_wav)
    on, off = bounds(clip)
    clean, (_, t0, _) = place(quiet(1.0), clip, quiet(1.5))
    signal = pcm(clean + white(clean.size / RATE, 500, seed=7))  # about 14 dB SNR
    (u,) = run(signal)
    check_bracket(u, signal, t0 + on, t0 + off)
    assert u.ended_by == "silence"


def test_state_is_observable_for_barge_in(speech_wav: Callable[..., Path]) -> None:
    clip = speech(speech_wav)
    on, _ = bounds(clip)
    signal = place(quiet(1.0), clip, quiet(1.0))[0]
    ep = Endpointer(VadSettings())
    assert ep.feed(signal[: round((1.0 + on) * RATE)]) == []
    assert not ep.in_speech and ep.speech_started_s is None
    ep.feed(signal[round((1.0 + on) * RATE) : round((1.3 + on) * RATE)])
    assert ep.in_speech
    assert ep.speech_started_s is not None and abs(ep.speech_started_s - (1.0 + on)) <= TOL


def test_reset_drops_the_utterance_and_keeps_the_clock(speech_wav: Callable[..., Path]) -> None:
    clip = speech(speech_wav)
    on, off = bounds(clip)
    signal = place(quiet(1.0), clip, quiet(1.0))[0]
    ep = Endpointer(VadSettings())
    ep.feed(signal[: signal.size // 2 + 77])
    assert ep.in_speech
    ep.reset()
    assert not ep.in_speech and ep.flush() == []
    fed = (signal.size // 2 + 77) / RATE
    (u,) = ep.feed(signal) + ep.flush()
    assert abs(u.start_s - (fed + 1.0 + on)) <= TOL
    assert abs(u.end_s - (fed + 1.0 + off)) <= TOL


def test_bad_settings_and_input_are_refused() -> None:
    with pytest.raises(SettingsError, match="frame_ms = 25"):
        Endpointer(replace(VadSettings(), frame_ms=25))
    with pytest.raises(SettingsError, match="aggressiveness = 4"):
        Endpointer(replace(VadSettings(), aggressiveness=4))
    with pytest.raises(TypeError, match="int16"):
        Endpointer(VadSettings()).feed(np.zeros(480, dtype=np.float32))  # type: ignore[arg-type]
