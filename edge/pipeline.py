"""One conversational turn: transcript -> activation -> streamed LLM reply -> sentence TTS -> audio sink.

Three stages overlap: the LLM thread produces tokens, a TTS task synthesizes each finished clause, a sink
task plays/writes audio. With 2 cores, llama.cpp and piper get one thread each while they overlap, and whisper
(which runs alone, before them) gets both; running two OpenMP pools on the same cores costs 10x.
Every stage has a deadline, and any failure of the LLM turns into a spoken fallback, so a turn always ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edge import intents
from edge.activation import Activation, Decision
from edge.errors import HearthError, LLMError, TTSError
from edge.llm import Conversation, LanguageModel
from edge.settings import Settings
from edge.stt import Transcriber
from edge.tts import SentenceChunker, Synthesizer, split_text
from edge.turnlog import TurnLog

if TYPE_CHECKING:
    from edge.home import HomeControl, Plan

log = logging.getLogger(__name__)
_DONE = object()
WAKE_ONLY_REPLY = "Yes?"


class AudioSink(Protocol):
    """Where reply audio goes: the speaker or a WAV file (edge.audio_io)."""

    def write(self, samples: np.ndarray, rate: int) -> None: ...


@dataclass
class TurnResult:
    transcript: str
    decision: Decision
    reply: str = ""
    handled_by: str = ""  # "llm" | "fallback" | "intent:<name>" | "wake_only"
    turn_id: int | None = None
    errors: list[str] = field(default_factory=list)
    timings_ms: dict[str, float | None] = field(default_factory=dict)
    output: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"turn_id": self.turn_id, "transcript": self.transcript,
                "accepted": self.decision.accepted,
                "activation": self.decision.reason, "request": self.decision.text, "reply": self.reply,
                "handled_by": self.handled_by,
                "timings_ms": self.timings_ms, "errors": self.errors, "output_wav": self.output}


def _ms(t0: float, t1: float | None) -> float | None:
    return None if t1 is None else round((t1 - t0) * 1000, 1)


class Assistant:
    """Owns the loaded models, the activation state, the conversation memory and the turn log."""

    def __init__(self, settings: Settings, *, stt: Transcriber, tts: Synthesizer, llm: LanguageModel | None,
                 turnlog: TurnLog, source: str, llm_error: str | None = None, home: HomeControl | None = None,
                 on_phase: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.stt, self.tts, self.llm = stt, tts, llm
        self.llm_error = llm_error  # why the LLM is unavailable (logged on each fallback)
        self.turnlog = turnlog
        self.activation = Activation(settings.activation)
        self.source = source
        self._session_id: int | None = None
        self._conversation = Conversation(settings.llm.persona, settings.llm.memory_turns)
        self.home = home  # device control (boards issue); None when no boards are configured
        self.on_phase = on_phase  # "thinking" / "speaking" / "idle", for a board's status LED
        self._busy = 0  # turns in progress: background work (cache warm-up) waits for zero
        self._idle_later: asyncio.TimerHandle | None = None
        self.models = {"stt_model": stt.model_path.name, "llm_model": llm.name if llm else "",
                       "tts_voice": tts.voice_name}

    def reset_session(self) -> None:
        """Forget the conversation; the next turn starts a new session."""
        self._session_id = None

    def _session(self) -> int:
        idle = time.monotonic() - self._conversation.last_active
        if self._session_id is None or idle > self.settings.llm.session_idle_s:
            self._session_id = self.turnlog.start_session(self.source)
            self._conversation = Conversation(self.settings.llm.persona, self.settings.llm.memory_turns)
        return self._session_id

    async def prewarm(self, texts: list[str]) -> int:
        """Synthesize replies we will need (device confirmations) into the TTS cache, only while no turn runs.

        A cached confirmation reaches the speaker right after the board's ack instead of ~150 ms of piper later.
        """
        done = 0
        for text in texts:
            while self._busy:
                await asyncio.sleep(0.2)
            try:
                await asyncio.to_thread(self.tts.cached, text)
                done += 1
            except TTSError as exc:
                log.warning("could not pre-synthesize %r: %s", text, exc)
        return done

    async def handle_utterance(self, samples: np.ndarray, sink: AudioSink, *, streaming: bool = True,
                               output: str | None = None) -> TurnResult:
        """Run a whole turn for one endpointed utterance. The clock starts at the endpoint decision."""
        self._busy += 1
        try:
            return await self._handle_utterance(samples, sink, streaming=streaming, output=output)
        finally:
            self._busy -= 1

    async def _handle_utterance(self, samples: np.ndarray, sink: AudioSink, *, streaming: bool,
                                output: str | None) -> TurnResult:
        t_end = time.perf_counter()
        self._phase("thinking")
        extra = self.home.prompt_words() if self.home else ""
        try:
            transcript = await asyncio.to_thread(self.stt.transcribe, samples, extra_prompt=extra)
        except BaseException:
            self._phase("idle")
            raise
        t_asr = time.perf_counter()
        decision = self.activation.check(transcript.text)
        result = TurnResult(transcript=transcript.text, decision=decision, output=output)
        result.timings_ms["asr"] = _ms(t_end, t_asr)
        if not decision.accepted:
            log.info("ignored %r (%s)", transcript.text, decision.reason)
            self._phase("idle")
            return result
        await self._logged_turn(result, decision.text, sink, t_end, audio_s=transcript.audio_s, streaming=streaming)
        self.activation.answered()
        follow_up = self.settings.activation.follow_up_s
        if follow_up > 0 and self.on_phase is not None:
            # The follow-up window is open (no wake phrase needed): show it, and go idle when it closes.
            self._phase("listening")
            self._idle_later = asyncio.get_running_loop().call_later(follow_up, self._phase, "idle")
        return result

    async def ask(self, text: str, sink: AudioSink, *, streaming: bool = True) -> TurnResult:
        """A typed question (``hearth ask``): same path as speech, minus STT and activation."""
        result = TurnResult(transcript=text, decision=Decision(True, "typed", text))
        self._busy += 1
        try:
            await self._logged_turn(result, text, sink, time.perf_counter(), audio_s=0.0, streaming=streaming)
        finally:
            self._busy -= 1
        return result

    def _phase(self, phase: str) -> None:
        if self._idle_later is not None:
            self._idle_later.cancel()
            self._idle_later = None
        if self.on_phase is not None:
            self.on_phase(phase)

    async def _logged_turn(self, result: TurnResult, request: str, sink: AudioSink, t0: float, *, audio_s: float,
                           streaming: bool) -> None:
        result.turn_id = self.turnlog.start_turn(self._session(), transcript=result.transcript,
                                                 activation=result.decision.reason, audio_s=audio_s,
                                                 models=self.models)
        try:
            await self._respond(request, sink, result, t0, streaming=streaming)
        finally:
            self._phase("idle")
            # Written even if the turn was cancelled (Ctrl-C): the row never stays "started" on a clean stop.
            result.timings_ms["total"] = _ms(t0, time.perf_counter())
            self.turnlog.finish_turn(result.turn_id, reply=result.reply, handled_by=result.handled_by,
                                     timings_ms=result.timings_ms, error="; ".join(result.errors) or None,
                                     output=result.output)

    async def _respond(self, request: str, sink: AudioSink, result: TurnResult, t0: float, *,
                       streaming: bool) -> None:
        first: dict[str, float] = {}
        chunks: asyncio.Queue[object] = asyncio.Queue(maxsize=16)
        audio: asyncio.Queue[object] = asyncio.Queue(maxsize=4)

        async def tts_stage() -> None:
            while (item := await chunks.get()) is not _DONE:
                try:
                    if isinstance(item, asyncio.Future):  # synthesized ahead (device confirmations)
                        pcm = await item
                    else:
                        assert isinstance(item, str)
                        fixed = item in (self.settings.llm.fallback_reply, WAKE_ONLY_REPLY)
                        pcm = await asyncio.to_thread(self.tts.cached if fixed else self.tts.synthesize, item)
                except TTSError as exc:
                    result.errors.append(str(exc))
                    log.error("%s", exc)
                    continue
                first.setdefault("tts", time.perf_counter())
                await audio.put(pcm)
            await audio.put(_DONE)

        async def sink_stage() -> None:
            while (item := await audio.get()) is not _DONE:
                assert isinstance(item, np.ndarray)
                if "audio" not in first:
                    first["audio"] = time.perf_counter()
                    self._phase("speaking")
                await asyncio.to_thread(sink.write, item, self.tts.sample_rate)

        tasks = [asyncio.create_task(tts_stage()), asyncio.create_task(sink_stage())]
        try:
            intent = intents.match(request)
            plan = self.home.plan(request) if self.home and request.strip() else None
            if not request.strip():
                result.reply, result.handled_by = WAKE_ONLY_REPLY, "wake_only"
                await chunks.put(WAKE_ONLY_REPLY)
            elif plan is not None:
                await self._device_turn(plan, chunks, result)
            elif intent is not None:
                result.reply, result.handled_by = intent.text, f"intent:{intent.intent}"
                if intent.text:
                    await chunks.put(intent.text)
            elif (tool_plan := await self._llm_tool(request, result)) is not None:
                await self._device_turn(tool_plan, chunks, result)
                result.handled_by = f"llm-tool:{result.handled_by}"
            else:
                await self._llm_to_chunks(request, chunks, result, first, streaming)
            await chunks.put(_DONE)
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        result.timings_ms["llm_first_token"] = _ms(t0, first.get("token"))
        result.timings_ms["llm_done"] = _ms(t0, first.get("llm_done"))
        result.timings_ms["tts_first_audio"] = _ms(t0, first.get("tts"))
        result.timings_ms["end_of_speech_to_first_audio"] = _ms(t0, first.get("audio"))

    async def _device_turn(self, plan: Plan, chunks: asyncio.Queue[object], result: TurnResult) -> None:
        """Synthesize the expected confirmation while the command runs: the ack usually wins the race."""
        ahead = asyncio.ensure_future(asyncio.to_thread(self.tts.cached, plan.expected))
        reply = await plan.run(result.turn_id)
        result.reply, result.handled_by = reply.text, reply.handled_by
        if reply.result is not None and not reply.result.ok:
            result.errors.append(f"{reply.result.board}.{reply.result.entity}: {reply.result.error}")
        if reply.text == plan.expected:
            await chunks.put(ahead)
        else:
            ahead.add_done_callback(lambda f: f.exception())  # consumed, so a TTS error is not reported twice
            await chunks.put(reply.text)

    async def _llm_tool(self, request: str, result: TurnResult) -> Plan | None:
        """Device-sounding requests the grammar missed: the LLM picks a device action under a grammar."""
        if self.home is None or self.llm is None or not self.home.looks_like_device_request(request):
            return None
        llm, home = self.llm, self.home
        try:
            key, action = await asyncio.wait_for(asyncio.to_thread(home.ask_llm, llm, request),
                                                 self.settings.llm.first_token_timeout_s)
        except (TimeoutError, LLMError) as exc:
            result.errors.append(f"device tool call: {exc or 'timed out'}")
            return None
        if key == "none":
            return None
        return home.plan_tool_call(key, action)

    async def _llm_to_chunks(self, request: str, chunks: asyncio.Queue[object], result: TurnResult,
                             first: dict[str, float], streaming: bool) -> None:
        cfg = self.settings.llm
        chunker = SentenceChunker(self.settings.tts.first_chunk_min_words)
        pieces: list[str] = []
        spoken = 0
        try:
            async for piece in self._tokens(request, first):
                pieces.append(piece)
                if streaming:
                    for c in chunker.feed(piece):
                        spoken += 1
                        await chunks.put(c)
        except LLMError as exc:
            result.errors.append(str(exc))
            log.error("LLM failed, speaking the fallback: %s", exc)
        first["llm_done"] = time.perf_counter()
        reply = "".join(pieces).strip()
        if streaming:
            for c in chunker.flush():
                spoken += 1
                await chunks.put(c)
        elif reply:
            for c in split_text(reply, self.settings.tts.first_chunk_min_words):
                spoken += 1
                await chunks.put(c)
        result.handled_by = "llm"
        if spoken == 0:
            reply, result.handled_by = cfg.fallback_reply, "fallback"
            await chunks.put(reply)
        result.reply = reply
        self._conversation.remember(request, reply)

    async def _tokens(self, request: str, first: dict[str, float]) -> AsyncIterator[str]:
        """Async iterator over LLM pieces with first-token and total deadlines; raises LLMError."""
        if self.llm is None:
            raise LLMError(self.llm_error or "no language model is loaded")
        cfg = self.settings.llm
        llm = self.llm
        messages = self._conversation.messages(request, llm.count_tokens, llm.context_tokens - cfg.max_reply_tokens)
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def produce() -> None:
            try:
                for piece in llm.generate(messages, max_tokens=cfg.max_reply_tokens,
                                          temperature=cfg.temperature, cancel=cancel):
                    loop.call_soon_threadsafe(q.put_nowait, piece)
            except HearthError as exc:
                loop.call_soon_threadsafe(q.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(q.put_nowait, _DONE)

        worker = loop.run_in_executor(None, produce)
        start = time.perf_counter()
        try:
            while True:
                limit = cfg.timeout_s - (time.perf_counter() - start)
                if "token" not in first:
                    limit = min(limit, cfg.first_token_timeout_s)
                try:
                    item = await asyncio.wait_for(q.get(), timeout=max(limit, 0.0))
                except TimeoutError:
                    what = "first word" if "token" not in first else "whole reply"
                    raise LLMError(f"the LLM timed out waiting for the {what} "
                                   f"(limit {cfg.first_token_timeout_s if what == 'first word' else cfg.timeout_s} s)"
                                   ) from None
                if item is _DONE:
                    return
                if isinstance(item, HearthError):
                    raise LLMError(str(item)) from item
                first.setdefault("token", time.perf_counter())
                assert isinstance(item, str)
                yield item
        finally:
            cancel.set()  # the worker stops at its next token; we don't wait for it here
            del worker

