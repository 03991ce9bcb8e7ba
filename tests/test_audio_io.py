"""WAV loading (real files made with espeak-ng and sox), atomic writing, resampling and device matching."""

from __future__ import annotations

import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge import audio_io
from edge.audio_io import AudioDevice, Resampler, WavWriter, device_from_info, find_device, load_wav, write_wav
from edge.errors import AudioDeviceError, AudioInputError, HearthError
from tests.conftest import read_pcm16, write_pcm16

RATE = 16000


def sox(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["sox", str(src), *args, str(dst)], check=True)
    return dst


def corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size)
    return float(np.corrcoef(a[:n].astype(np.float64), b[:n].astype(np.float64))[0, 1])


@pytest.fixture
def clip(speech_wav: Callable[..., Path]) -> Path:
    return speech_wav("Hey Hearth, what is the capital of France?")


def test_16k_mono_is_passed_through_exactly(clip: Path) -> None:
    expected, _ = read_pcm16(clip)
    got = load_wav(clip)
    assert got.dtype == np.int16 and got.ndim == 1
    assert np.array_equal(got, expected)


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (8000, 1), (22050, 1), (48000, 2)])
def test_other_rates_and_channels_are_converted_like_sox(clip: Path, tmp_path: Path, rate: int, channels: int) -> None:
    src = sox(clip, tmp_path / "in.wav", "-r", str(rate), "-c", str(channels))
    reference, _ = read_pcm16(sox(src, tmp_path / "ref.wav", "-r", "16000", "-c", "1"))
    with wave.open(str(src)) as w:
        n_in = w.getnframes()
    got = load_wav(src)
    assert got.size == round(n_in * RATE / rate)
    assert abs(got.size - reference.size) <= 1
    assert corr(got, reference) > 0.995
    if rate > RATE:  # nothing was lost on the way up and down again
        assert corr(got, read_pcm16(clip)[0]) > 0.995


def test_resampling_is_band_limited(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    tones = 8000 * np.sin(2 * np.pi * 1000 * t) + 8000 * np.sin(2 * np.pi * 12000 * t)  # 12 kHz aliases to 4 kHz
    got = load_wav(write_pcm16(tmp_path / "tones.wav", tones.astype(np.int16), 44100)).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(got[: RATE // 2] * np.hanning(RATE // 2)))  # 2 Hz bins
    assert 20 * np.log10(spectrum[4000 // 2] / spectrum[1000 // 2]) < -60


@pytest.mark.parametrize(
    "encoding",
    [["-b", "8"], ["-b", "24"], ["-b", "32"], ["-e", "floating-point", "-b", "32"],
     ["-e", "floating-point", "-b", "64"], ["-e", "u-law"], ["-e", "a-law"]],
    ids=["u8", "s24", "s32", "f32", "f64", "ulaw", "alaw"],
)
def test_sample_encodings_decode_like_sox(clip: Path, tmp_path: Path, encoding: list[str]) -> None:
    src = sox(clip, tmp_path / "enc.wav", *encoding)
    reference, _ = read_pcm16(sox(src, tmp_path / "ref.wav", "-e", "signed-integer", "-b", "16"))
    got = load_wav(src)
    assert got.size == reference.size
    assert np.abs(got.astype(np.int32) - reference).max() <= 1


def test_channels_are_averaged(clip: Path, tmp_path: Path) -> None:
    mono, _ = read_pcm16(clip)
    stereo = np.stack([mono, np.zeros_like(mono)], axis=1)
    path = tmp_path / "left_only.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(stereo.astype("<i2").tobytes())
    got = load_wav(path)
    assert np.abs(got.astype(np.int32) - mono / 2).max() <= 0.5


def truncated_end(clip: Path, tmp: Path) -> Path:
    data = clip.read_bytes()
    (p := tmp / "cut.wav").write_bytes(data[: len(data) - 1000])
    return p


def cut_header(n: int) -> Callable[[Path, Path], Path]:
    def make(clip: Path, tmp: Path) -> Path:
        (p := tmp / f"cut{n}.wav").write_bytes(clip.read_bytes()[:n])
        return p
    return make


def write(name: str, content: bytes) -> Callable[[Path, Path], Path]:
    def make(clip: Path, tmp: Path) -> Path:
        (p := tmp / name).write_bytes(content)
        return p
    return make


MP3ISH = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (write("song.mp3", MP3ISH), ["is not a WAV file", "MP3", "sox"]),
        (write("notes.wav", b"turn on the light\nplease\n"), ["is not a WAV file", "text file", "sox"]),
        (write("noise.wav", np.random.default_rng(0).bytes(4000)), ["is not a WAV file", "unknown type"]),
        (write("zero.wav", b""), ["is empty (0 bytes)"]),
        (lambda clip, tmp: write_pcm16(tmp / "nodata.wav", np.zeros(0)), ["contains no audio"]),
        (truncated_end, ["is truncated", "header promises", "sox --ignore-length"]),
        (cut_header(8), ["is truncated", "RIFF header"]),
        (cut_header(30), ["is truncated", "runs past the end"]),
        (cut_header(40), ["is truncated", "inside a chunk header"]),
        (cut_header(44), ["is truncated", "header promises"]),
        (lambda clip, tmp: sox(clip, tmp / "ima.wav", "-e", "ima-adpcm"), ["IMA ADPCM", "not supported", "sox"]),
        (lambda clip, tmp: sox(clip, tmp / "ms.wav", "-e", "ms-adpcm"), ["MS ADPCM", "not supported"]),
        (lambda clip, tmp: write_pcm16(tmp / "short.wav", np.ones(800)), ["too short", "0.050 s"]),
        (lambda clip, tmp: tmp / "missing.wav", ["does not exist"]),
        (lambda clip, tmp: tmp, ["is a directory"]),
    ],
    ids=["mp3", "text", "garbage", "zero_bytes", "empty_data", "truncated_end", "cut_riff", "cut_fmt",
         "cut_chunk_header", "header_only", "ima_adpcm", "ms_adpcm", "too_short", "missing", "directory"],
)
def test_unusable_files_are_refused_with_a_clear_message(
    clip: Path, tmp_path: Path, make: Callable[[Path, Path], Path], expected: list[str]
) -> None:
    path = make(clip, tmp_path)
    with pytest.raises(AudioInputError) as err:
        load_wav(path)
    msg = str(err.value)
    assert str(path) in msg
    for part in expected:
        assert part in msg


def test_a_data_chunk_short_by_less_than_a_frame_is_used(clip: Path, tmp_path: Path) -> None:
    stereo = sox(clip, tmp_path / "st.wav", "-c", "2")  # 4-byte frames
    (p := tmp_path / "one_byte_short.wav").write_bytes(stereo.read_bytes()[:-3])
    expected, _ = read_pcm16(clip)
    got = load_wav(p)
    assert got.size == expected.size - 1
    assert np.array_equal(got, expected[:-1])


def test_too_long_is_refused(clip: Path) -> None:
    with pytest.raises(AudioInputError, match=r"too long \(3 s, limit 1 s\)"):
        load_wav(clip, max_seconds=1.0)
    assert load_wav(clip, max_seconds=10.0).size > 0


def test_write_wav_is_exact_and_leaves_no_part_file(tmp_path: Path) -> None:
    samples = (np.sin(np.arange(22050) / 7) * 12000).astype(np.int16)
    out = tmp_path / "replies" / "a.wav"  # the folder is created
    write_wav(out, samples, 22050)
    got, rate = read_pcm16(out)
    assert rate == 22050 and np.array_equal(got, samples)
    write_wav(out, samples[:100], 22050)  # overwrite in place
    assert read_pcm16(out)[0].size == 100
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.wav"]


def test_wav_writer_streams_chunks_and_appears_only_on_close(tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    rng = np.random.default_rng(1)
    chunks = [rng.integers(-20000, 20000, n).astype(np.int16) for n in (2205, 1, 9000)]
    w = WavWriter(out)
    for c in chunks:
        w.write(c, 22050)
        assert not out.exists() and (tmp_path / "reply.wav.part").exists()
    w.close()
    got, rate = read_pcm16(out)
    assert rate == 22050 and np.array_equal(got, np.concatenate(chunks))
    assert not (tmp_path / "reply.wav.part").exists()
    with pytest.raises(ValueError, match="at 16000 Hz in a 22050 Hz file"):
        WavWriter(tmp_path / "x.wav", 22050).write(chunks[0], 16000)


def test_wav_writer_failure_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "failed.wav"
    with pytest.raises(RuntimeError), WavWriter(out, 22050) as w:
        w.write(np.ones(100, dtype=np.int16))
        raise RuntimeError("turn cancelled")
    assert list(tmp_path.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HearthError, match="cannot write"):
        write_wav(blocker / "sub" / "a.wav", np.ones(10, dtype=np.int16), 16000)


def test_wav_writer_without_audio_writes_a_valid_empty_file(tmp_path: Path) -> None:
    out = tmp_path / "silent.wav"
    WavWriter(out, 22050).close()
    got, rate = read_pcm16(out)
    assert got.size == 0 and rate == 22050


@pytest.mark.parametrize(("src", "dst"), [(44100, 16000), (8000, 16000), (16000, 22050), (16001, 16000)])
def test_streaming_resampler_matches_one_shot(src: int, dst: int) -> None:
    x = np.random.default_rng(2).standard_normal(src).astype(np.float32) * 0.3
    whole = audio_io.resample(x, src, dst)
    r = Resampler(src, dst)
    pieces = np.concatenate([*(r.process(x[i : i + 123]) for i in range(0, x.size, 123)), r.flush()])
    assert whole.size == pieces.size == dst
    assert np.abs(whole - pieces).max() < 1e-5


# PortAudio's get_device_info_by_index() dicts, as on a Pi with a USB mic and the HDMI/jack outputs.
INFOS = [
    {"index": 0, "name": "bcm2835 Headphones: - (hw:0,0)", "maxInputChannels": 0, "maxOutputChannels": 8,
     "defaultSampleRate": 44100.0},
    {"index": 1, "name": "USB PnP Sound Device: Audio (hw:1,0)", "maxInputChannels": 1, "maxOutputChannels": 0,
     "defaultSampleRate": 48000.0},
    {"index": 2, "name": "ReSpeaker 2-Mic (hw:2,0)", "maxInputChannels": 2, "maxOutputChannels": 2,
     "defaultSampleRate": 16000.0},
    {"index": 3, "name": "default", "maxInputChannels": 32, "maxOutputChannels": 32, "defaultSampleRate": 44100.0},
]
DEVICES = [device_from_info(i) for i in INFOS]


def test_device_info_is_converted() -> None:
    assert DEVICES[1] == AudioDevice(1, "USB PnP Sound Device: Audio (hw:1,0)", 1, 0, 48000)


@pytest.mark.parametrize(
    ("spec", "kind", "index"),
    [("", "input", None), (None, "output", None), ("usb pnp", "input", 1), ("RESPEAKER", "output", 2),
     ("2", "input", 2), ("default", "input", 3), ("headphones", "output", 0)],
)
def test_find_device_by_index_or_name(spec: str | None, kind: audio_io.Kind, index: int | None) -> None:
    assert find_device(DEVICES, spec, kind) == index


@pytest.mark.parametrize(
    ("spec", "kind", "expected"),
    [("usb", "output", "no output device matches 'usb'"),  # the USB mic has no output channels
     ("0", "input", "no input device matches '0'"),
     ("blue yeti", "input", "available input devices: 1: USB PnP"),
     ("hw:", "input", "matches several input devices")],
)
def test_find_device_errors_list_the_choices(spec: str, kind: audio_io.Kind, expected: str) -> None:
    with pytest.raises(AudioDeviceError, match=expected) as err:
        find_device(DEVICES, spec, kind)
    if "several" not in expected:
        assert "ReSpeaker" in str(err.value) or kind == "output"


def test_missing_pyaudio_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyaudio", None)  # makes `import pyaudio` fail as if it were not installed
    for use in (audio_io.list_devices, audio_io.MicStream, audio_io.Speaker):
        with pytest.raises(AudioDeviceError, match=r"pyaudio is not installed: pip install 'hearth\[audio\]'"):
            use()


def test_unknown_microphone_fails_before_capture_starts() -> None:
    with pytest.raises(AudioDeviceError) as err:
        audio_io.MicStream("no-such-microphone-xyz")
    msg = str(err.value)
    assert "no-such-microphone-xyz" in msg or "pyaudio is not installed" in msg
