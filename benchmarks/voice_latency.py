"""Voice loop benchmark: per-stage latency, streaming vs sequential side by side, peak RSS, load time, WER.

Clips are made here (piper joe voice and two espeak-ng voices), so the run needs nothing but the installed
defaults. Streaming and sequential runs alternate on every clip, so both see the same machine load; compare
their ratio rather than absolute numbers on a shared machine.

    .venv/bin/python benchmarks/voice_latency.py --runs 5 --json benchmarks/results/voice_latency.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import Any

import numpy as np

from edge import agent, audio_io
from edge.device_intents import words
from edge.model_store import ModelStore
from edge.settings import Settings, StorageSettings, load_settings, replace

QUESTIONS = [
    "What is the capital of France?",
    "What time is it?",
    "Tell me a joke.",
    "How many legs does a spider have?",
    "What is the weather like today?",
    "Turn on the kitchen light.",
    "Set a timer for five minutes.",
    "Who wrote Romeo and Juliet?",
]
WAKE = "Hey Hearth, "
# Short commands without the wake phrase (push-to-talk / follow-up): the 2-3 s clips the STT target is about.
SHORT = ["What time is it?", "Turn on the kitchen light.", "Is the garage door open?",
         "Set the hallway light to forty percent.", "Switch off the fan in the bedroom."]


def wer(ref: str, hyp: str) -> tuple[int, int]:
    """(word edits, reference words) by Levenshtein over normalized words ("five" and "5" count as equal)."""
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, d[0] = d[0], i
        for j, hw in enumerate(h, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
    return d[len(h)], len(r)


def make_clips(folder: Path, tts: Any, texts: list[str], tag: str) -> list[tuple[str, str, Path]]:
    """(voice, text, wav) for each text in three voices, with 0.5 s lead-in and 1 s of trailing silence."""
    clips = []
    for n, text in enumerate(texts):
        i = f"{tag}{n}"
        pcm = tts.synthesize(text)
        wav = folder / f"piper-{i}.wav"
        rate = tts.sample_rate
        lead, tail = np.zeros(rate // 2, dtype=np.int16), np.zeros(rate, dtype=np.int16)
        audio_io.write_wav(wav, np.concatenate([lead, pcm, tail]), rate)
        clips.append(("piper-joe", text, wav))
        for voice in ("en-us", "en-gb"):
            raw, out = folder / f"{voice}-{i}.raw.wav", folder / f"{voice}-{i}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
            subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out),
                            "pad", "0.5", "1.0"], check=True)
            clips.append((f"espeak-{voice}", text, out))
    return clips


class FirstAudio:
    """Sink that keeps nothing: the benchmark measures when audio is ready, not playback."""

    def write(self, samples: np.ndarray, rate: int) -> None:
        pass


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, round(q * (len(v) - 1)))]


def summarize(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    vals = [r[key] for r in rows if r.get(key) is not None]
    if not vals:
        return {}
    return {"n": len(vals), "median": round(statistics.median(vals), 1), "p90": round(pct(vals, 0.9), 1)}


def clips_in_child(settings_path: str | None, folder: Path) -> dict[str, list[tuple[str, str, Path]]]:
    """Make the clips in a separate process, so the measured peak RSS is the agent's alone."""
    cmd = [sys.executable, __file__, "--make-clips", str(folder)]
    cmd += ["--config", settings_path] if settings_path else []
    subprocess.run(cmd, check=True)
    manifest = json.loads((folder / "clips.json").read_text())
    return {k: [(v, t, Path(w)) for v, t, w in rows] for k, rows in manifest.items()}


def make_clip_files(settings: Settings, folder: Path) -> None:
    from edge.tts import Synthesizer

    store = ModelStore(settings.storage.model_dir)
    paths = agent.resolve_models(settings, store)
    tts = Synthesizer(paths.tts_model, paths.tts_config, threads=settings.tts.threads)
    manifest = {"questions": make_clips(folder, tts, [WAKE + q for q in QUESTIONS], "q"),
                "short": make_clips(folder, tts, SHORT, "s")}
    (folder / "clips.json").write_text(json.dumps({k: [(v, t, str(w)) for v, t, w in rows]
                                                   for k, rows in manifest.items()}))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(settings: Settings, runs: int, clip_sets: dict[str, list[tuple[str, str, Path]]]) -> dict[str, Any]:
    store = ModelStore(settings.storage.model_dir)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    loaded = agent.load_models(settings, store)
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()
    assistant = agent.make_assistant(settings, loaded, "benchmark")
    clips = clip_sets["questions"]
    # Warm-up: first calls allocate buffers and page in weights.
    warm = clips[0][2]
    async for utt in agent.utterances_from_file(warm, settings):
        await assistant.handle_utterance(utt.samples, FirstAudio())

    stream_rows: list[dict[str, Any]] = []
    seq_rows: list[dict[str, Any]] = []
    errors, words = 0, 0
    stt_rows: list[dict[str, Any]] = []
    for rnd in range(runs):
        for voice, text, wav in clips:
            utts = [u async for u in agent.utterances_from_file(wav, settings)]
            utt = max(utts, key=lambda u: u.samples.size)
            if rnd == 0:
                tr = loaded.stt.transcribe(utt.samples)
                e, n = wer(text, tr.text)
                errors, words = errors + e, words + n
                stt_rows.append({"voice": voice, "ref": text, "hyp": tr.text, "edits": e, "words": n,
                                 "audio_s": round(tr.audio_s, 2), "asr_ms": round(tr.elapsed_s * 1000, 1)})
            # alternate the order so neither mode always runs first
            modes = [True, False] if rnd % 2 == 0 else [False, True]
            for streaming in modes:
                # each clip is a first question: no follow-up window, no memory from earlier clips
                assistant.activation = type(assistant.activation)(settings.activation)
                assistant.reset_session()
                r = await assistant.handle_utterance(utt.samples, FirstAudio(), streaming=streaming)
                row = {"voice": voice, "clip": wav.name, "accepted": r.decision.accepted, **r.timings_ms}
                (stream_rows if streaming else seq_rows).append(row)
        print(f"round {rnd + 1}/{runs} done", file=sys.stderr)

    # STT alone on short commands (no wake phrase), every round: the "2-3 s clip" target.
    short_rows: list[dict[str, Any]] = []
    for _ in range(runs):
        for voice, text, wav in clip_sets["short"]:
            utts = [u async for u in agent.utterances_from_file(wav, settings)]
            utt = max(utts, key=lambda u: u.samples.size)
            tr = loaded.stt.transcribe(utt.samples)
            e, n = wer(text, tr.text)
            short_rows.append({"voice": voice, "ref": text, "hyp": tr.text, "edits": e, "words": n,
                               "audio_s": round(tr.audio_s, 2), "asr_ms": round(tr.elapsed_s * 1000, 1)})
    in_2_3 = [r for r in short_rows if 2.0 <= r["audio_s"] <= 3.0]

    keys = ["asr", "llm_first_token", "tts_first_audio", "end_of_speech_to_first_audio", "total"]
    s_first = summarize(stream_rows, "end_of_speech_to_first_audio")
    q_first = summarize(seq_rows, "end_of_speech_to_first_audio")
    return {
        "machine": machine(),
        "settings": {"stt_threads": settings.stt.threads, "audio_ctx": settings.stt.audio_ctx,
                     "llm_threads": settings.llm.threads, "tts_threads": settings.tts.threads},
        "models": assistant.models,
        "runs": runs, "clips": len(clips),
        "load_s": {k: round(v, 2) for k, v in loaded.load_s.items()} | {"wall": round(load_s, 2)},
        "rss_mb": {"before_load": round(rss0), "after_load": round(rss_loaded), "peak": round(rss_mb())},
        "streaming": {k: summarize(stream_rows, k) for k in keys},
        "sequential": {k: summarize(seq_rows, k) for k in keys},
        "first_audio_ratio_sequential_over_streaming": round(q_first["median"] / s_first["median"], 2)
        if s_first and q_first else None,
        "accepted": sum(r["accepted"] for r in stream_rows), "turns": len(stream_rows),
        "wer": round(errors / max(words, 1), 3), "stt": stt_rows,
        "short_commands_asr_ms": summarize(short_rows, "asr_ms"),
        "short_commands_2_3s_asr_ms": summarize(in_2_3, "asr_ms"),
        "short_commands_audio_s": summarize(short_rows, "audio_s"),
        "short_commands_wer": round(sum(r["edits"] for r in short_rows) / max(sum(r["words"] for r in short_rows), 1),
                                    3),
        "short_stt": short_rows[: len(clip_sets["short"])],
    }


def machine() -> dict[str, Any]:
    return {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version()}


def report(result: dict[str, Any], path: str | None) -> None:
    """Print the results, and keep them in ``path`` (benchmarks/results/*.json) when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--config")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--make-clips", help=argparse.SUPPRESS)
    args = ap.parse_args()
    settings = load_settings(args.config)
    if args.make_clips:
        make_clip_files(settings, Path(args.make_clips))
        return
    with tempfile.TemporaryDirectory() as tmp:
        # a scratch turn log, so benchmark turns don't fill the user's history
        settings = dc_replace(settings, storage=StorageSettings(home=str(settings.storage.home_path),
                                                                database=str(Path(tmp) / "bench.db")))
        settings = replace(settings, "activation", follow_up_s=0.0)
        clip_sets = clips_in_child(args.config, Path(tmp))
        result = asyncio.run(run(settings, args.runs, clip_sets))
    report(result, args.json)


if __name__ == "__main__":
    main()
