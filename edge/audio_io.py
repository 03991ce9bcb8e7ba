"""Audio in and out: any PCM/float WAV -> 16 kHz mono int16, atomic WAV writing, microphone and speaker.

WAV files are parsed chunk by chunk here because ``wave`` rejects IEEE-float and WAVE_FORMAT_EXTENSIBLE files,
which many recorders write. Truncation policy: a data chunk short by at most one frame is used (some writers
round the size); anything shorter, or a file ending inside a header, is refused, because a cut recording is
usually a failed copy or download and the user should know. pyaudio is optional and imported on first use.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from edge.errors import AudioDeviceError, AudioInputError, HearthError

RATE = 16000
MIN_SECONDS = 0.1
MAX_SECONDS = 600.0
Int16 = npt.NDArray[np.int16]
Float32 = npt.NDArray[np.float32]
Kind = Literal["input", "output"]
_WIDTHS = {1: (1, 2, 3, 4), 3: (4, 8), 6: (1,), 7: (1,)}  # format tag -> bytes per sample: PCM, float, A/µ-law
_COMPRESSED = {2: "MS ADPCM", 0x11: "IMA ADPCM", 0x31: "GSM 6.10", 0x50: "MPEG", 0x55: "MP3", 0x1610: "AAC"}
_MAGIC = [(b"ID3", "an MP3 file"), (b"fLaC", "a FLAC file"), (b"OggS", "an Ogg (Vorbis/Opus) file"),
          (b"FORM", "an AIFF file"), (b"RIFX", "a big-endian WAV (RIFX)"), (b"RF64", "an RF64 WAV")]
_NO_PYAUDIO = "pyaudio is not installed: pip install 'hearth[audio]' (needs portaudio19-dev)"


@dataclass(frozen=True)
class _Format:
    tag: int
    channels: int
    rate: int
    align: int  # bytes per frame
    width: int  # bytes per sample of one channel


def _fix(path: Path) -> str:
    return f"convert it with: sox '{path}' -r 16000 -c 1 -b 16 out.wav"


def _what_is(head: bytes) -> str:
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if kind:
        return kind
    if head.startswith(b"RIFF"):
        return f"a RIFF {head[8:12].decode('latin-1')!r} file"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "an MP3/AAC stream"
    return "a text file" if all(c >= 32 or c in b"\t\n\r" for c in head) else "binary data of an unknown type"


def _parse_fmt(body: bytes, path: Path) -> _Format:
    tag, channels, rate, _, align, _ = struct.unpack("<HHIIHH", body[:16])
    if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the subformat GUID
        tag = struct.unpack("<H", body[24:26])[0]
    if channels < 1 or rate < 1 or align < channels or align % channels:
        raise AudioInputError(f"{path} has a corrupt fmt chunk ({channels} channels, {rate} Hz, block align "
                              f"{align}); {_fix(path)}")
    fmt = _Format(tag, channels, rate, align, align // channels)
    if fmt.width not in _WIDTHS.get(tag, ()):
        what = (f"{_COMPRESSED[tag]} compressed audio" if tag in _COMPRESSED else
                f"{fmt.width * 8}-bit samples of format {tag}" if tag in _WIDTHS else f"unknown format 0x{tag:04x}")
        raise AudioInputError(f"{path} uses {what}, which is not supported; {_fix(path)}")
    return fmt


def _read_header(f: BinaryIO, path: Path, size: int) -> tuple[_Format, int]:
    """Walk the RIFF chunks up to the data chunk; returns the format and the usable data length in bytes."""
    head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        if b"RIFF".startswith(head[:4]) and len(head) < 12:
            raise AudioInputError(f"{path} is truncated: it ends inside the RIFF header ({size} bytes)")
        raise AudioInputError(f"{path} is not a WAV file (it looks like {_what_is(head + f.read(500))}); "
                              f"{_fix(path)}")
    fmt: _Format | None = None
    while len(chunk := f.read(8)) == 8:
        cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        start = f.tell()
        if cid == b"data" and fmt is not None:
            if csize > size - start + fmt.align:
                have = (size - start) / fmt.align / fmt.rate
                raise AudioInputError(
                    f"{path} is truncated: the header promises {csize / fmt.align / fmt.rate:.2f} s of audio but the "
                    f"file holds {have:.2f} s; copy it again, or keep what is there: sox --ignore-length '{path}' "
                    "fixed.wav")
            return fmt, min(csize, size - start) // fmt.align * fmt.align
        if cid == b"data" or (cid == b"fmt " and csize < 16):
            raise AudioInputError(f"{path} is malformed (no valid fmt chunk before the audio data); {_fix(path)}")
        if start + csize > size:
            raise AudioInputError(f"{path} is truncated: its {cid.decode('latin-1')!r} chunk runs past the end of "
                                  f"the file ({size} bytes); record or copy it again")
        if cid == b"fmt ":
            fmt = _parse_fmt(f.read(csize), path)
        f.seek(start + csize + (csize & 1))
    where = "inside a chunk header" if chunk else "before any audio data"
    raise AudioInputError(f"{path} is truncated: it ends {where} ({size} bytes); record or copy it again")


def _g711(codes: npt.NDArray[np.uint8], mu_law: bool) -> Float32:
    """Telephone-style µ-law/A-law bytes -> -1..1 (ITU G.711 expansion)."""
    c = codes.astype(np.int32) ^ (0xFF if mu_law else 0x55)
    exp, mant = (c >> 4) & 7, c & 0x0F
    if mu_law:
        mag, sign = (((mant << 3) + 0x84) << exp) - 0x84, np.where(c & 0x80, -1, 1)
    else:
        mag = np.where(exp == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(exp - 1, 0))
        sign = np.where(c & 0x80, 1, -1)
    return np.asarray(sign * mag / 32768.0, dtype=np.float32)


def _decode(data: bytes | memoryview, fmt: _Format) -> Float32:
    """Interleaved samples -> float32 in -1..1, one column per channel."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if fmt.tag in (6, 7):
        x = _g711(raw, fmt.tag == 7)
    elif fmt.tag == 3:
        x = np.asarray(np.clip(np.nan_to_num(raw.view(f"<f{fmt.width}")), -1, 1), dtype=np.float32)
    elif fmt.width == 1:  # 8-bit WAV is unsigned
        x = (raw.astype(np.float32) - np.float32(128)) * np.float32(1 / 128)
    elif fmt.width == 3:
        b = raw.reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (v - ((v & 0x800000) << 1)).astype(np.float32) * np.float32(2.0**-23)
    else:  # float32 (not float64) halves the temporaries; int16 output needs no more precision
        x = raw.view(f"<i{fmt.width}").astype(np.float32) * np.float32(2.0 ** (1 - 8 * fmt.width))
    return x.reshape(-1, fmt.channels)


def to_int16(x: Float32) -> Int16:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def to_float32(x: Int16) -> Float32:
    return x.astype(np.float32) / np.float32(32768)


def load_wav(path: str | os.PathLike[str], *, max_seconds: float = MAX_SECONDS) -> Int16:
    """Any PCM (8-32 bit), float or G.711 WAV -> 16 kHz mono int16; AudioInputError saying why not otherwise."""
    p = Path(path)
    if p.is_dir():
        raise AudioInputError(f"{p} is a directory, not a WAV file; give the path of a .wav file")
    try:
        with p.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise AudioInputError(f"{p} is empty (0 bytes); record or copy the audio again")
            fmt, nbytes = _read_header(f, p, size)
            seconds = nbytes / fmt.align / fmt.rate
            if nbytes == 0:
                raise AudioInputError(f"{p} contains no audio (its data chunk is empty); record it again")
            if seconds < MIN_SECONDS:
                raise AudioInputError(f"{p} is too short ({seconds:.3f} s); at least {MIN_SECONDS} s is needed")
            if seconds > max_seconds:
                raise AudioInputError(f"{p} is too long ({seconds:.0f} s, limit {max_seconds:.0f} s); split it: "
                                      f"sox '{p}' part.wav trim 0 {max_seconds:.0f}")
            data = f.read(nbytes)
    except FileNotFoundError:
        raise AudioInputError(f"{p} does not exist; check the path") from None
    except OSError as exc:
        raise AudioInputError(f"cannot read {p}: {exc.strerror or exc}") from exc
    if fmt.tag == 1 and fmt.width == 2 and fmt.channels == 1 and fmt.rate == RATE:
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    # Decode, downmix and resample in blocks so a long file never has several float copies alive at once.
    r = Resampler(fmt.rate, RATE) if fmt.rate != RATE else None
    parts, view, step = [], memoryview(data), (1 << 20) * fmt.align
    for i in range(0, nbytes, step):
        x = _decode(view[i : i + step], fmt)
        mono = x[:, 0] if fmt.channels == 1 else x.mean(axis=1, dtype=np.float32)
        parts.append(to_int16(r.process(mono) if r else mono))
    if r:
        parts.append(to_int16(r.flush()))
    return np.concatenate(parts)


class Resampler:
    """Kaiser-windowed sinc rate converter that carries its filter history from one chunk to the next.

    One implementation serves whole files and live microphone chunks, without clicks at chunk boundaries.
    Exact polyphase for ratios with up to 4096 phases (every common rate); beyond that the phase is rounded to
    1/4096 sample. -6 dB at 94% of the lower Nyquist (7.5 kHz for 16 kHz), ~2.5 kHz transition, >80 dB stopband.
    """

    ZEROS, ROLLOFF, BETA, MAX_PHASES = 16, 0.94, 8.6, 4096

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if min(from_rate, to_rate) < 1:
            raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
        g = math.gcd(from_rate, to_rate)
        self._up, self._down = to_rate // g, from_rate // g
        self._phases = min(self._up, self.MAX_PHASES)
        fc = 0.5 * self.ROLLOFF * min(1.0, to_rate / from_rate)  # cutoff in cycles per input sample
        hw = self.ZEROS / (2 * fc)  # kernel half width in input samples
        self._half = math.ceil(hw)
        self._taps = np.arange(2 * self._half)
        self._block = max(16, (1 << 20) // self._taps.size)  # outputs per gather: ~4 MB of temporaries
        t = (self._taps - self._half + 1)[None, :] - (np.arange(self._phases) / self._phases)[:, None]
        h = np.sinc(2 * fc * t) * np.i0(self.BETA * np.sqrt(np.clip(1 - (t / hw) ** 2, 0, None))) * (abs(t) <= hw)
        self._table = (h / h.sum(axis=1, keepdims=True)).astype(np.float32)  # rows sum to 1: DC gain exactly 1
        self._reset()

    def _reset(self) -> None:
        self._hist: Float32 = np.zeros(self._half - 1, dtype=np.float32)  # zeros before the stream starts
        self._hist_start = 1 - self._half  # input index of _hist[0]
        self._n_in = self._k = 0  # inputs seen, next output index

    def _pos(self, k: Any) -> Any:
        """Output index -> input position in 1/phases of a sample (rounded)."""
        return (2 * k * self._down * self._phases + self._up) // (2 * self._up)

    def _run(self, buf: Float32, limit: int | None = None) -> Float32:
        end = self._hist_start + buf.size - 1  # last input index available
        k_hi = max(self._k, (end - self._half + 2) * self._up // self._down + 2)
        q = self._pos(np.arange(self._k, k_hi, dtype=np.int64))
        n = int(np.count_nonzero(q // self._phases + self._half <= end)) if limit is None else limit
        base, phase = q[:n] // self._phases, q[:n] % self._phases
        out = np.empty(n, dtype=np.float32)
        for i in range(0, n, b := self._block):
            idx = (base[i : i + b] + 1 - self._half - self._hist_start)[:, None] + self._taps
            out[i : i + b] = np.einsum("ij,ij->i", buf[idx], self._table[phase[i : i + b]])
        self._k += n
        keep = max(self._hist_start, self._pos(self._k) // self._phases + 1 - self._half)
        self._hist, self._hist_start = buf[keep - self._hist_start :].copy(), keep
        return out

    def process(self, x: Float32) -> Float32:
        """Resample the next chunk; returns the output complete so far (it lags the input by ~16 samples)."""
        self._n_in += x.size
        return self._run(np.concatenate([self._hist, x.astype(np.float32, copy=False)]))

    def flush(self) -> Float32:
        """The rest of the output, so the total is round(inputs * to / from); then ready for a new stream."""
        total = (self._n_in * self._up + self._down // 2) // self._down
        pad = np.zeros(2 * self._half + self._down // self._up + 2, dtype=np.float32)
        out = self._run(np.concatenate([self._hist, pad]), limit=max(0, total - self._k))
        self._reset()
        return out


def resample(x: Float32, from_rate: int, to_rate: int) -> Float32:
    if from_rate == to_rate:
        return x
    r = Resampler(from_rate, to_rate)
    return np.concatenate([r.process(x), r.flush()])


def _int16(samples: Int16) -> Int16:
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise TypeError(f"audio must be 1-D int16, got {samples.dtype} {samples.shape}")
    return samples


def _wav_header(rate: int, nbytes: int) -> bytes:
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + nbytes, b"WAVE", b"fmt ", 16, 1, 1, rate, 2 * rate, 2,
                       16, b"data", nbytes)


class WavWriter:
    """Mono int16 WAV written chunk by chunk as audio arrives; ``path`` appears atomically on ``close``.

    Writes go to ``<path>.part`` (synced, then renamed), so a reader never sees half a reply and a crash leaves
    only the .part file. Closing without any audio writes a valid empty WAV so the announced path exists.
    """

    def __init__(self, path: str | os.PathLike[str], rate: int | None = None) -> None:
        self.path, self.rate, self.frames = Path(path), rate, 0
        self._part = self.path.with_name(self.path.name + ".part")
        self._file: BinaryIO | None = None
        self._done = False

    def _fail(self, exc: OSError) -> HearthError:
        self.abort()
        return HearthError(f"cannot write {self.path}: {exc.strerror or exc}; check that the folder is writable "
                           "and the disk is not full, or choose another output path")

    def write(self, samples: Int16, rate: int | None = None) -> None:
        rate = rate or self.rate
        if self._done or rate is None:
            raise ValueError(f"{self.path}: write after close, or no sample rate given")
        if self.rate and rate != self.rate:
            raise ValueError(f"{self.path}: chunk at {rate} Hz in a {self.rate} Hz file")
        self.rate, data = rate, _int16(samples).astype("<i2", copy=False).tobytes()
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self._part.open("wb")  # held across calls; closed in close/abort
                self._file.write(_wav_header(rate, 0))
            self._file.write(data)
        except OSError as exc:
            raise self._fail(exc) from exc
        self.frames += samples.size

    def close(self) -> None:
        if self._done:
            return
        if self._file is None:
            self.write(np.zeros(0, dtype=np.int16), self.rate or RATE)
        assert self._file is not None and self.rate is not None
        try:
            self._file.seek(0)
            self._file.write(_wav_header(self.rate, 2 * self.frames))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._part, self.path)
        except OSError as exc:
            raise self._fail(exc) from exc
        self._done = True

    def abort(self) -> None:
        """Drop what was written (the turn failed): no file at ``path``, no .part left behind."""
        self._done = True
        if self._file is not None:
            self._file.close()
            self._part.unlink(missing_ok=True)

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if et is None:
            self.close()
        else:
            self.abort()


WavSink = WavWriter  # the reply-audio sink name edge.cli uses (pipeline.AudioSink protocol)


def write_wav(path: str | os.PathLike[str], samples: Int16, rate: int) -> None:
    with WavWriter(path, rate) as w:
        w.write(samples, rate)


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    max_input_channels: int
    max_output_channels: int
    default_rate: int


def device_from_info(info: Mapping[str, Any]) -> AudioDevice:
    """PortAudio's device-info dict -> AudioDevice."""
    return AudioDevice(int(info["index"]), str(info["name"]), int(info["maxInputChannels"]),
                       int(info["maxOutputChannels"]), int(float(info["defaultSampleRate"])))


def find_device(devices: Sequence[AudioDevice], spec: str | None, kind: Kind) -> int | None:
    """Settings value -> device index. "" is the system default (None), digits an index, anything else a
    case-insensitive part of the name (an exact name wins). An ambiguous part is an error, not a guess."""
    spec = (spec or "").strip()
    if not spec:
        return None
    usable = [d for d in devices if (d.max_input_channels if kind == "input" else d.max_output_channels) > 0]
    low = spec.lower()
    match = ([d for d in usable if d.index == int(spec)] if spec.isdigit() else
             [d for d in usable if d.name.lower() == low] or [d for d in usable if low in d.name.lower()])
    if len(match) == 1:
        return match[0].index
    listing = "; ".join(f"{d.index}: {d.name}" for d in (match or usable)) or "none"
    if match:
        raise AudioDeviceError(f"{spec!r} matches several {kind} devices ({listing}); use more of the name or "
                               "the index")
    raise AudioDeviceError(f"no {kind} device matches {spec!r}; available {kind} devices: {listing}. Set [audio] "
                           f"{kind}_device to part of a name or an index (see `hearth audio-devices`)")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """ALSA and JACK print pages of probing noise on fd 2 while PortAudio starts (HEARTH_DEBUG keeps it)."""
    if os.environ.get("HEARTH_DEBUG"):
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _portaudio() -> tuple[Any, Any]:
    """(pyaudio module, started PyAudio instance); the caller must terminate() it."""
    try:
        import pyaudio
    except ImportError as exc:
        raise AudioDeviceError(_NO_PYAUDIO) from exc
    with _quiet_stderr():
        return pyaudio, pyaudio.PyAudio()


def _all_devices(pa: Any) -> list[AudioDevice]:
    return [device_from_info(pa.get_device_info_by_index(i)) for i in range(pa.get_device_count())]


def list_devices() -> list[AudioDevice]:
    _, pa = _portaudio()
    try:
        return _all_devices(pa)
    finally:
        pa.terminate()


class _Device:
    """A PortAudio session plus one resolved device, shared by MicStream and Speaker."""

    def __init__(self, spec: str | None, kind: Kind) -> None:
        self.mod, self.pa = _portaudio()
        self.kind = kind
        try:
            devices = _all_devices(self.pa)
            index = find_device(devices, spec, kind)
            if index is None:
                try:
                    default = getattr(self.pa, f"get_default_{kind}_device_info")()
                except OSError as exc:
                    what = "microphone" if kind == "input" else "speaker"
                    raise AudioDeviceError(f"no {what} found (no default {kind} device); connect one, or use WAV "
                                           "files (--input / --out)") from exc
                index = int(default["index"])
            self.device = next(d for d in devices if d.index == index)
        except BaseException:
            self.pa.terminate()
            raise
        self._live = True

    def close(self) -> None:
        """Terminate once: PortAudio counts initializations, so a second terminate() would end another
        session (the mic's, when the speaker closes)."""
        if self._live:
            self._live = False
            self.pa.terminate()

    def supports(self, rate: int) -> bool:
        try:
            return bool(self.pa.is_format_supported(rate, **{f"{self.kind}_device": self.device.index,
                        f"{self.kind}_channels": 1, f"{self.kind}_format": self.mod.paInt16}))
        except ValueError:  # PortAudio's way of saying "unsupported"
            return False

    def open(self, rate: int, frames_per_buffer: int) -> Any:
        try:
            return self.pa.open(format=self.mod.paInt16, channels=1, rate=rate, frames_per_buffer=frames_per_buffer,
                                **{self.kind: True, f"{self.kind}_device_index": self.device.index})
        except (OSError, ValueError) as exc:
            raise AudioDeviceError(f"cannot open {self.kind} device {self.device.name!r} at {rate} Hz ({exc}); "
                                   "is another program using it?") from exc


class MicStream:
    """Iterator of fixed-size 16 kHz mono int16 frames (possibly read-only arrays), read in the caller's thread.

    The device is resolved in the constructor, so a missing pyaudio or a wrong name fails in the main thread
    rather than in the capture thread; the stream opens on ``__enter__`` (or the first iteration). Reads use
    exception_on_overflow=False: when the consumer falls behind, PortAudio drops audio instead of raising.
    A device that cannot record at 16 kHz is opened at its default rate and resampled statefully.
    """

    def __init__(self, device: str | None = None, *, frame_ms: int = 30, rate: int = RATE) -> None:
        self._dev = _Device(device, "input")
        self.device = self._dev.device
        self.rate, self.frame_len = rate, rate * frame_ms // 1000
        self.device_rate = rate if self._dev.supports(rate) else self.device.default_rate
        self._read_len = self.device_rate * frame_ms // 1000
        self._resampler = Resampler(self.device_rate, rate) if self.device_rate != rate else None
        self._stream: Any = None

    def __enter__(self) -> MicStream:
        if self._stream is None:
            self._stream = self._dev.open(self.device_rate, self._read_len)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[Int16]:
        self.__enter__()
        pending: Int16 = np.zeros(0, dtype=np.int16)
        while self._stream is not None:
            try:
                x: Int16 = np.frombuffer(self._stream.read(self._read_len, exception_on_overflow=False), "<i2")
            except OSError as exc:
                raise AudioDeviceError(f"the microphone {self.device.name!r} stopped delivering audio ({exc}); "
                                       "is it still connected?") from exc
            if self._resampler is not None:
                x = to_int16(self._resampler.process(to_float32(x)))
            pending = np.concatenate([pending, x]) if pending.size else x
            while pending.size >= self.frame_len:
                yield pending[: self.frame_len]
                pending = pending[self.frame_len :]

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError):  # already broken (unplugged): nothing left to stop
                stream.stop_stream()
            stream.close()
        self._dev.close()


class Speaker:
    """Plays int16 chunks with blocking writes (the pipeline calls ``write`` from a worker thread).

    The stream opens at the chunk's rate when the device takes it (ALSA's plug layer usually does), else at the
    device's default rate with stateful resampling. ``close`` waits for the queued audio to finish playing;
    exiting without it can cut off the end of a reply.
    """

    def __init__(self, device: str | None = None) -> None:
        self._dev = _Device(device, "output")
        self._stream: Any = None
        self._rate = 0
        self._resampler: Resampler | None = None

    def write(self, samples: Int16, rate: int) -> None:
        x = _int16(samples)
        if self._stream is None or rate != self._rate:
            self._drain()
            out_rate = rate if self._dev.supports(rate) else self._dev.device.default_rate
            self._stream, self._rate = self._dev.open(out_rate, 1024), rate
            self._resampler = Resampler(rate, out_rate) if out_rate != rate else None
        self._play(x if self._resampler is None else to_int16(self._resampler.process(to_float32(x))))

    def _play(self, x: Int16) -> None:
        try:
            self._stream.write(x.astype("<i2", copy=False).tobytes())
        except OSError as exc:
            raise AudioDeviceError(f"playback on {self._dev.device.name!r} failed ({exc}); is it still "
                                   "connected?") from exc

    def _drain(self) -> None:
        if self._stream is None:
            return
        if self._resampler is not None:
            self._play(to_int16(self._resampler.flush()))
        stream, self._stream = self._stream, None
        with contextlib.suppress(OSError):  # unplugged: nothing left to play
            stream.stop_stream()  # returns once the queued audio has played
        stream.close()

    def close(self) -> None:
        try:
            self._drain()
        finally:
            self._dev.close()

    def __enter__(self) -> Speaker:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
