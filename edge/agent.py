"""Wires settings, model store, audio sources and the pipeline into the commands users run.

Model loading happens once per process, here, with progress on stderr; the LLM is optional at run time:
if it is disabled, missing or broken the agent still starts and answers with the spoken fallback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from edge import audio_io
from edge.errors import AudioInputError, HearthError
from edge.house import House
from edge.llm import LanguageModel
from edge.model_store import ModelStore
from edge.pipeline import Assistant, AudioSink, TurnResult
from edge.settings import Settings
from edge.stt import Transcriber
from edge.tts import Synthesizer
from edge.turnlog import TurnLog
from edge.vad import Endpointer, Utterance

log = logging.getLogger(__name__)
T = TypeVar("T")


def status(msg: str) -> None:
    """Progress for people, on stderr so --json output on stdout stays machine-readable."""
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ModelPaths:
    stt: Path
    llm: Path | None
    tts_model: Path
    tts_config: Path


def resolve_models(settings: Settings, store: ModelStore) -> ModelPaths:
    """Catalog names -> files in the store; a value that is an existing path is used as it is."""

    def one(name: str) -> Path:
        p = Path(name).expanduser()
        return p if p.suffix and p.is_file() else store.path(name)

    tts = Path(settings.tts.voice).expanduser()
    if tts.suffix == ".onnx" and tts.is_file():
        tts_model, tts_config = tts, tts.with_suffix(".onnx.json")
    else:
        files = store.files(settings.tts.voice)
        tts_model = next(f for f in files if f.suffix == ".onnx")
        tts_config = next(f for f in files if f.name.endswith(".onnx.json"))
    llm: Path | None = None
    if settings.llm.enabled:
        llm = one(settings.llm.model)
    return ModelPaths(stt=one(settings.stt.model), llm=llm, tts_model=tts_model, tts_config=tts_config)


@dataclass
class Loaded:
    stt: Transcriber
    tts: Synthesizer
    llm: LanguageModel | None
    llm_error: str | None
    load_s: dict[str, float]


def load_models(settings: Settings, store: ModelStore, *, need_llm: bool = True) -> Loaded:
    paths = resolve_models(settings, store)
    t0 = time.perf_counter()
    status(f"Loading speech recognition ({paths.stt.name}) ...")
    stt = Transcriber(paths.stt, threads=settings.stt.threads, audio_ctx=settings.stt.audio_ctx,
                      language=settings.stt.language, prompt=settings.stt.prompt)
    status(f"Loading voice ({paths.tts_model.name}) ...")
    tts = Synthesizer(paths.tts_model, paths.tts_config, threads=settings.tts.threads,
                      length_scale=settings.tts.length_scale, cache_size=settings.tts.cache_size)
    llm: LanguageModel | None = None
    llm_error: str | None = None
    if not settings.llm.enabled:
        llm_error = "the LLM is disabled in the settings ([llm] enabled = false)"
    elif need_llm and paths.llm is not None:
        status(f"Loading language model ({paths.llm.name}) ...")
        try:
            llm = LanguageModel(paths.llm, threads=settings.llm.threads, context_tokens=settings.llm.context_tokens)
        except HearthError as exc:  # the loop still runs: questions get the spoken fallback
            llm_error = str(exc)
            status(f"warning: {exc}")
    load = {"stt": stt.load_s, "tts": tts.load_s, "llm": llm.load_s if llm else 0.0,
            "total": time.perf_counter() - t0}
    return Loaded(stt=stt, tts=tts, llm=llm, llm_error=llm_error, load_s=load)


def make_assistant(settings: Settings, loaded: Loaded, source: str, house: House | None = None, *,
                   prewarm: bool = False) -> Assistant:
    """``prewarm``: in the long-running loop, synthesize every device confirmation ahead of time (and again
    when a board says hello), so a command's spoken answer starts right after the ack."""
    turnlog = TurnLog(settings.storage.database_path)
    if turnlog.interrupted:
        status(f"note: {turnlog.interrupted} turn(s) were interrupted when the agent last stopped")
    assistant = Assistant(settings, stt=loaded.stt, tts=loaded.tts, llm=loaded.llm, turnlog=turnlog, source=source,
                          llm_error=loaded.llm_error, home=house.home if house else None,
                          on_phase=house.phase if house else None)
    if house is not None:
        def button(source: str) -> None:
            assistant.activation.trigger(source)
            house.phase("listening")
            status(f"listening ({source}) ...")

        house.on_button = button
        if prewarm:
            tasks: list[asyncio.Task[int]] = []

            def warm() -> None:
                for t in tasks:
                    t.cancel()
                tasks[:] = [asyncio.get_running_loop().create_task(assistant.prewarm(house.home.confirmation_texts()))]

            house.on_entities_changed = warm
            warm()
    return assistant


async def with_house(settings: Settings, use: bool, fn: Callable[[House | None], Awaitable[T]], *,
                     one_shot: bool = False) -> T:
    """Run ``fn`` with the boards' links up (registry, serial, MQTT) when ``use`` and [boards] enabled.

    ``one_shot`` (ask, run --input): a client id of its own and no agent availability messages, so a running
    `hearth run` keeps its broker session and is not reported offline when this command exits."""
    house = None
    if use and settings.boards.enabled:
        house = House(settings, client_id=f"hearth-cli-{os.getpid()}", announce=False) if one_shot \
            else House(settings)
    if house is not None:
        await house.start()
    try:
        return await fn(house)
    finally:
        if house is not None:
            await house.stop()


async def utterances_from_file(path: Path, settings: Settings) -> AsyncIterator[Utterance]:
    """Endpoint a WAV file as if it were live audio (faster than real time)."""
    samples = audio_io.load_wav(path)
    ep = Endpointer(settings.vad)
    found = False
    step = 16000 * settings.vad.frame_ms // 1000 * 10  # feed ~300 ms at a time, like a mic buffer
    for i in range(0, samples.size, step):
        for utt in ep.feed(samples[i : i + step]):
            found = True
            yield utt
    for utt in ep.flush():
        found = True
        yield utt
    if not found:
        raise AudioInputError(f"{path}: no speech found (only silence or noise); check the recording level")


async def run_file(assistant: Assistant, path: Path, sink_for: Callable[[int], tuple[AudioSink, str | None]], *,
                   once: bool, streaming: bool = True) -> list[TurnResult]:
    """Every utterance in the file is a turn (``once``: only the first accepted one)."""
    results: list[TurnResult] = []
    n = 0
    async for utt in utterances_from_file(path, assistant.settings):
        sink, out = sink_for(n)
        try:
            result = await assistant.handle_utterance(utt.samples, sink, streaming=streaming, output=out)
        finally:
            close = getattr(sink, "close", None)
            if close:
                close()
        n += 1
        results.append(result)
        if once and result.decision.accepted:
            break
    return results


async def run_live(assistant: Assistant, settings: Settings, on_result: Callable[[TurnResult], None]) -> None:
    """Microphone loop. Half duplex: the mic is ignored while the assistant speaks (no echo cancellation)."""
    mic = audio_io.MicStream(settings.audio.input_device or None, frame_ms=settings.vad.frame_ms)
    speaker = audio_io.Speaker(settings.audio.output_device or None)
    ep = Endpointer(settings.vad)
    frames: asyncio.Queue[np.ndarray | HearthError] = asyncio.Queue(maxsize=200)  # ~6 s of 30 ms frames
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def capture() -> None:
        try:
            with mic:
                for frame in mic:
                    if stop.is_set():
                        return
                    loop.call_soon_threadsafe(_offer, frame)
        except HearthError as exc:  # unplugged mic: end the loop with a clear message instead of hanging
            loop.call_soon_threadsafe(_offer, exc)

    def _offer(item: np.ndarray | HearthError) -> None:
        try:
            frames.put_nowait(item)
        except asyncio.QueueFull:
            log.warning("audio frames dropped: the agent is falling behind")

    def keyboard() -> None:  # push-to-talk: Enter
        for _line in sys.stdin:
            assistant.activation.trigger("keyboard")
            status("listening (push-to-talk) ...")

    threading.Thread(target=capture, name="mic", daemon=True).start()
    if sys.stdin.isatty():
        threading.Thread(target=keyboard, name="ptt", daemon=True).start()
    status("Listening. Say \"hey hearth\" and a question, or press Enter to talk without it. Ctrl-C stops.")
    try:
        while True:
            frame = await frames.get()
            if isinstance(frame, HearthError):
                raise frame
            for utt in ep.feed(frame):
                result = await assistant.handle_utterance(utt.samples, speaker)
                on_result(result)
                ep.reset()
                while not frames.empty():  # drop what the mic heard while we were speaking
                    frames.get_nowait()
    finally:
        stop.set()
        speaker.close()

