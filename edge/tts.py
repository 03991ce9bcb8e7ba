"""Text-to-speech with piper, plus the sentence chunker that lets speech start before the LLM finishes.

The chunker is what makes the loop feel fast: the first clause (a few words up to a comma or sentence end)
is synthesized while the LLM is still producing the rest, so the user hears audio after one short clause
instead of after the whole reply.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge.errors import ModelError, TTSError

_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:\u2014]\s")
# "Dr. Smith", "e.g. this", "3.5": a period that does not end a sentence.
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "approx", "no"}
_MARKUP = re.compile(r"[*_#`>|~]+|\[(.*?)\]\(.*?\)")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")


def speakable(text: str) -> str:
    """Strip markdown and emoji the small LLMs like to emit; piper would read them out or skip oddly."""
    text = _MARKUP.sub(lambda m: m.group(1) or " ", text)
    text = _EMOJI.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


class SentenceChunker:
    """Cut a token stream into speakable chunks: the first at a clause, later ones at sentence ends."""

    def __init__(self, first_chunk_min_words: int = 3, max_chunk_words: int = 40) -> None:
        self.first_min_words = first_chunk_min_words
        self.max_words = max_chunk_words
        self._buf = ""
        self._emitted = 0

    def feed(self, token: str) -> list[str]:
        self._buf += token
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            chunk, self._buf = self._buf[:cut], self._buf[cut:]
            chunk = speakable(chunk)
            if chunk:
                out.append(chunk)
                self._emitted += 1
        return out

    def flush(self) -> list[str]:
        chunk, self._buf = speakable(self._buf), ""
        if chunk:
            self._emitted += 1
            return [chunk]
        return []

    def _find_cut(self) -> int | None:
        cuts = [self._sentence_cut()]
        if self._emitted == 0:
            cuts.append(self._clause_cut())
        found = [c for c in cuts if c is not None]
        if found:
            return min(found)
        words = list(re.finditer(r"\S+\s", self._buf))
        if len(words) > self.max_words:  # run-on reply without punctuation: cut after max_words words
            return words[self.max_words - 1].end()
        return None

    def _sentence_cut(self) -> int | None:
        for m in _SENTENCE_END.finditer(self._buf):
            before = self._buf[: m.start()].rsplit(None, 1)
            last_word = before[-1].lower().rstrip(".") if before else ""
            initial = len(last_word) == 1 and last_word.isalpha() and last_word != "i"
            if m.group().startswith(".") and (last_word in _ABBREVIATIONS or initial):
                continue  # "Dr." or an initial such as "J."
            return m.end()
        return None

    def _clause_cut(self) -> int | None:
        """The first comma/semicolon with enough words before it: a natural early place to start speaking."""
        for clause in _CLAUSE_END.finditer(self._buf):
            if len(self._buf[: clause.start()].split()) >= self.first_min_words:
                return clause.end()
        return None


def split_text(text: str, first_chunk_min_words: int = 3) -> list[str]:
    chunker = SentenceChunker(first_chunk_min_words)
    return chunker.feed(text + " ") + chunker.flush()


def bounded_pieces(text: str, max_words: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``max_words`` words, at clause punctuation where possible.

    onnxruntime's arena keeps the largest buffers piper ever needed, and they grow with the input length
    (about 5 MB per word for the medium voices): one 40-word sentence adds ~220 MB for good. Bounding the
    piece keeps the agent's peak memory predictable (docs/benchmarks.md).
    """
    ws = text.split()
    if len(ws) <= max_words:
        return [text] if ws else []
    pieces: list[str] = []
    cur: list[str] = []
    for i, w in enumerate(ws):
        cur.append(w)
        rest = len(ws) - i - 1
        at_clause = w[-1] in ",;:.!?" and len(cur) >= max_words // 2 and rest >= 3
        if len(cur) >= max_words or at_clause:
            pieces.append(" ".join(cur))
            cur = []
    if cur:
        pieces.append(" ".join(cur))
    return pieces


class Synthesizer:
    """One loaded piper voice. ``threads`` bounds onnxruntime so it can share 2 cores with llama.cpp."""

    def __init__(
        self, model_path: Path, config_path: Path, *, threads: int = 1, length_scale: float = 1.0,
        cache_size: int = 64, max_words: int = 20,
    ) -> None:
        self.max_words = max_words
        for p in (model_path, config_path):
            if not p.is_file():
                raise ModelError(f"piper voice file {p} does not exist: run `hearth models install`")
        try:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig, SynthesisConfig
        except ImportError as exc:
            raise ModelError("piper-tts is not installed: run scripts/setup.sh") from exc
        t0 = time.perf_counter()
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            opts = onnxruntime.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(str(model_path), sess_options=opts,
                                                   providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelError(f"piper could not load voice {model_path.name} ({exc}); "
                             "run `hearth models verify` and reinstall it") from exc
        self._voice = PiperVoice(session=session, config=config)
        self._syn = SynthesisConfig(length_scale=length_scale)
        self.sample_rate: int = config.sample_rate
        self.voice_name = model_path.stem
        self.load_s = time.perf_counter() - t0
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """int16 audio, one array per sentence piper finds in ``text``."""
        text = speakable(text)
        if not text:
            return
        chunks = []
        with self._lock:
            for piece in bounded_pieces(text, self.max_words):
                try:
                    chunks += list(self._voice.synthesize(piece, self._syn))
                except Exception as exc:  # phonemizer/onnxruntime errors have no common base
                    raise TTSError(f"piper failed to speak {piece[:40]!r}: {exc}") from exc
        for c in chunks:
            yield c.audio_int16_array

    def synthesize(self, text: str) -> np.ndarray:
        parts = list(self.stream(text))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    def cached(self, text: str) -> np.ndarray:
        """Fixed replies (fallbacks, confirmations) are synthesized once and reused."""
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        audio = self.synthesize(text)
        if self._cache_size:
            self._cache[text] = audio
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return audio
