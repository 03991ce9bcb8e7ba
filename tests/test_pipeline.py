"""The turn pipeline with the real default models: streaming, fallbacks, the turn log."""

import asyncio
import dataclasses
from pathlib import Path

import numpy as np

from edge.pipeline import Assistant
from edge.settings import Settings, StorageSettings, replace
from edge.turnlog import TurnLog
from tests.conftest import read_pcm16


class Recorder:
    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.rate = 0

    def write(self, samples: np.ndarray, rate: int) -> None:
        self.chunks.append(samples)
        self.rate = rate

    @property
    def seconds(self) -> float:
        return sum(c.size for c in self.chunks) / self.rate if self.rate else 0.0


def make(tmp_path: Path, transcriber, synthesizer, llm, settings: Settings | None = None,  # type: ignore[no-untyped-def]
         llm_error: str | None = None) -> Assistant:
    s = settings or Settings()
    s = dataclasses.replace(s, storage=StorageSettings(home=str(tmp_path), database=str(tmp_path / "t.db")))
    return Assistant(s, stt=transcriber, tts=synthesizer, llm=llm, turnlog=TurnLog(tmp_path / "t.db"),
                     source="test", llm_error=llm_error)


def test_typed_question_streams_answer_audio(tmp_path, transcriber, synthesizer, language_model) -> None:  # type: ignore[no-untyped-def]
    a = make(tmp_path, transcriber, synthesizer, language_model)
    rec = Recorder()
    r = asyncio.run(a.ask("What is the capital of France?", rec))
    assert r.reply and not r.errors
    assert rec.rate == synthesizer.sample_rate and rec.seconds > 0.5
    t = r.timings_ms
    assert t["llm_first_token"] is not None and t["end_of_speech_to_first_audio"] is not None
    assert t["llm_first_token"] <= t["tts_first_audio"] <= t["end_of_speech_to_first_audio"] <= t["total"]
    (row,) = a.turnlog.recent()
    assert row["status"] == "done" and row["reply"] == r.reply and row["llm_model"]


def test_streaming_speaks_before_the_reply_is_finished(tmp_path, transcriber, synthesizer, language_model) -> None:  # type: ignore[no-untyped-def]
    s = replace(Settings(), "llm", max_reply_tokens=160, temperature=0.0)
    a = make(tmp_path, transcriber, synthesizer, language_model, s)
    r = asyncio.run(a.ask("Tell me a long story about a brave little dragon and a wizard.", Recorder()))
    assert len(r.reply.split()) > 30
    assert r.timings_ms["tts_first_audio"] < r.timings_ms["llm_done"], r.timings_ms
    seq = asyncio.run(a.ask("Tell me a long story about a brave little dragon and a wizard.", Recorder(),
                            streaming=False))
    assert seq.timings_ms["tts_first_audio"] > seq.timings_ms["llm_done"], "sequential waits for the whole reply"


def test_missing_llm_speaks_the_fallback(tmp_path, transcriber, synthesizer) -> None:  # type: ignore[no-untyped-def]
    a = make(tmp_path, transcriber, synthesizer, None, llm_error="llama-cpp-python is not installed")
    rec = Recorder()
    r = asyncio.run(a.ask("What is the capital of France?", rec))
    assert r.reply == Settings().llm.fallback_reply
    assert rec.seconds > 1.0, "the fallback is spoken"
    assert r.errors == ["llama-cpp-python is not installed"]
    row = a.turnlog.recent()[0]
    assert row["error"] == "llama-cpp-python is not installed" and row["reply"] == r.reply


def test_llm_first_token_timeout_falls_back(tmp_path, transcriber, synthesizer, language_model) -> None:  # type: ignore[no-untyped-def]
    s = replace(Settings(), "llm", first_token_timeout_s=0.001)
    a = make(tmp_path, transcriber, synthesizer, language_model, s)
    rec = Recorder()
    r = asyncio.run(a.ask("What is the capital of France?", rec))
    assert r.reply == s.llm.fallback_reply and rec.seconds > 1.0
    assert "timed out waiting for the first word" in r.errors[0]
    # the model is usable again for the next turn (the cancelled generation released it)
    s2 = replace(Settings(), "llm", temperature=0.0)
    b = make(tmp_path / "b", transcriber, synthesizer, language_model, s2)
    assert "paris" in asyncio.run(b.ask("What is the capital of France?", Recorder())).reply.lower()


def test_total_timeout_keeps_what_was_said(tmp_path, transcriber, synthesizer, language_model) -> None:  # type: ignore[no-untyped-def]
    s = replace(Settings(), "llm", timeout_s=0.6, max_reply_tokens=400, temperature=0.0)
    a = make(tmp_path, transcriber, synthesizer, language_model, s)
    r = asyncio.run(a.ask("Tell me a very long story about a dragon.", Recorder()))
    assert "timed out waiting for the whole reply" in r.errors[0]
    assert r.reply and r.reply != s.llm.fallback_reply, "the partial reply stands"


def test_spoken_turn_with_wake_phrase(tmp_path, speech_wav, transcriber, synthesizer, language_model) -> None:  # type: ignore[no-untyped-def]
    a = make(tmp_path, transcriber, synthesizer, language_model)
    samples, _ = read_pcm16(speech_wav("Hey Hearth, what time is it?"))
    r = asyncio.run(a.handle_utterance(samples, Recorder()))
    assert r.decision.accepted and r.decision.reason == "wake_phrase", r.transcript
    assert r.handled_by == "intent:time" and r.reply.startswith("It's "), r
    assert r.timings_ms["asr"] is not None and r.timings_ms["llm_first_token"] is None
    # follow-up without the wake phrase is accepted right after an answer
    samples2, _ = read_pcm16(speech_wav("And what about Germany?"))
    assert asyncio.run(a.handle_utterance(samples2, Recorder())).decision.reason == "follow_up"
    assert [row["activation"] for row in a.turnlog.recent()] == ["wake_phrase", "follow_up"]


def test_speech_without_wake_phrase_is_ignored(tmp_path, speech_wav, transcriber, synthesizer, language_model) -> None:  # type: ignore[no-untyped-def]
    a = make(tmp_path, transcriber, synthesizer, language_model)
    samples, _ = read_pcm16(speech_wav("I think it will rain tomorrow."))
    rec = Recorder()
    r = asyncio.run(a.handle_utterance(samples, rec))
    assert not r.decision.accepted and r.decision.reason == "no_wake_phrase"
    assert rec.chunks == [] and a.turnlog.recent() == []


def test_wake_phrase_alone_gets_a_prompt(tmp_path, speech_wav, transcriber, synthesizer, language_model) -> None:  # type: ignore[no-untyped-def]
    a = make(tmp_path, transcriber, synthesizer, language_model)
    samples, _ = read_pcm16(speech_wav("Hey Hearth."))
    r = asyncio.run(a.handle_utterance(samples, Recorder()))
    assert r.decision.accepted and r.reply == "Yes?"
