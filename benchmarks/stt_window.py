"""Encoder window (`[stt] audio_ctx`) side by side: speed and WER of the same clips at several windows.

One Transcriber per window, loaded in one process; every clip is transcribed by all of them back to back
(order reversed every other round), so they share the machine's load.

    .venv/bin/python benchmarks/stt_window.py --windows 512 448 384 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import voice_latency as vl

from edge import agent
from edge.model_store import ModelStore
from edge.settings import load_settings
from edge.stt import Transcriber


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--windows", type=int, nargs="+", default=[512, 448, 384])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--config")
    args = ap.parse_args()
    s = load_settings(args.config)
    paths = agent.resolve_models(s, ModelStore(s.storage.model_dir))
    with tempfile.TemporaryDirectory() as tmp:
        sets = vl.clips_in_child(args.config, Path(tmp))

        async def utterances() -> list[tuple[str, str, np.ndarray]]:
            out = []
            for name in ("short", "questions"):
                for _voice, text, wav in sets[name]:
                    us = [u async for u in agent.utterances_from_file(wav, s)]
                    out.append((name, text, max(us, key=lambda u: u.samples.size).samples))
            return out

        clips = asyncio.run(utterances())
    trs = {w: Transcriber(paths.stt, threads=s.stt.threads, audio_ctx=w, prompt=s.stt.prompt) for w in args.windows}
    times: dict[int, list[float]] = {w: [] for w in args.windows}
    short: dict[int, list[float]] = {w: [] for w in args.windows}
    edits = dict.fromkeys(args.windows, 0)
    words = dict.fromkeys(args.windows, 0)
    for rnd in range(args.rounds):
        for name, text, samples in clips:
            for w in args.windows if rnd % 2 == 0 else args.windows[::-1]:
                tr = trs[w].transcribe(samples)
                times[w].append(tr.elapsed_s * 1000)
                if name == "short" and 2.0 <= tr.audio_s <= 3.0:
                    short[w].append(tr.elapsed_s * 1000)
                if rnd == 0:
                    e, n = vl.wer(text, tr.text)
                    edits[w] += e
                    words[w] += n
    print("window  median_ms  median_2_3s_ms  n_2_3s  wer")
    for w in args.windows:
        print(f"{w:6d}  {statistics.median(times[w]):9.0f}  {statistics.median(short[w]):14.0f}  {len(short[w]):6d}  "
              f"{edits[w] / max(words[w], 1):.3f}")


if __name__ == "__main__":
    main()
