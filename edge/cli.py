"""`hearth` command line. Every user-facing failure is a HearthError printed as one line, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from edge import __version__, agent, audio_io, boards_cli
from edge.errors import HearthError, SettingsError
from edge.house import House
from edge.model_store import ModelStore, required_models
from edge.pipeline import AudioSink, TurnResult
from edge.settings import Settings, load_settings

DEMO_WAV = "demo_question.wav"


def _store(settings: Settings) -> ModelStore:
    return ModelStore(settings.storage.model_dir)


def _reply_path(settings: Settings, out: str | None, n: int = 0) -> Path:
    if out:
        p = Path(out)
        return p if n == 0 else p.with_name(f"{p.stem}-{n + 1}{p.suffix}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return settings.storage.home_path / "replies" / f"reply-{stamp}-{n + 1}.wav"


def _print_turn(r: TurnResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(r.to_json()), flush=True)
        return
    if not r.decision.accepted:
        print(f"(ignored: {r.transcript!r}, {r.decision.reason.replace('_', ' ')})")
        return
    t = r.timings_ms
    print(f"you:    {r.transcript}")
    print(f"hearth: {r.reply}")
    print(f"        asr {t.get('asr')} ms, first token {t.get('llm_first_token')} ms, "
          f"first audio {t.get('end_of_speech_to_first_audio')} ms after end of speech")
    for e in r.errors:
        print(f"        error: {e}")
    if r.output:
        print(f"        reply audio: {r.output}")


def _file_turns(settings: Settings, wav: Path, args: argparse.Namespace, source: str) -> int:
    loaded = agent.load_models(settings, _store(settings))

    async def turns(house: House | None) -> list[TurnResult]:
        assistant = agent.make_assistant(settings, loaded, source, house)
        return await agent.run_file(assistant, wav, sink_for, once=args.once, streaming=not args.sequential)

    def sink_for(n: int) -> tuple[AudioSink, str | None]:
        if getattr(args, "speak", False):
            return audio_io.Speaker(settings.audio.output_device or None), None
        path = _reply_path(settings, args.out, n)
        return audio_io.WavSink(path), str(path)

    results = asyncio.run(agent.with_house(settings, source != "demo" and not args.no_boards, turns, one_shot=True))
    for r in results:
        _print_turn(r, args.json)
    if not any(r.decision.accepted for r in results):
        heard = "; ".join(repr(r.transcript) for r in results)
        raise HearthError(f"no request was accepted in {wav} (heard: {heard}); start with a wake phrase "
                          f"({', '.join(settings.activation.wake_phrases)}) or set [activation] "
                          "require_wake_phrase = false")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    args.once = True
    with resources.as_file(resources.files("edge") / "data" / DEMO_WAV) as wav:
        if not args.json:
            print(f"Playing the bundled question {wav.name} into the loop ...")
        return _file_turns(settings, wav, args, "demo")


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    if args.input:
        return _file_turns(settings, Path(args.input), args, "file")
    loaded = agent.load_models(settings, _store(settings))

    async def live(house: House | None) -> None:
        assistant = agent.make_assistant(settings, loaded, "mic", house, prewarm=True)
        await agent.run_live(assistant, settings, lambda r: _print_turn(r, args.json))

    asyncio.run(agent.with_house(settings, not args.no_boards, live))
    return 0


def cmd_transcribe(settings: Settings, args: argparse.Namespace) -> int:
    samples = audio_io.load_wav(Path(args.file))
    paths = agent.resolve_models(settings, _store(settings))
    from edge.stt import Transcriber

    stt = Transcriber(paths.stt, threads=settings.stt.threads, audio_ctx=settings.stt.audio_ctx,
                      language=settings.stt.language, prompt=settings.stt.prompt)
    t = stt.transcribe(samples)
    if args.json:
        print(json.dumps({"text": t.text, "audio_s": t.audio_s, "elapsed_ms": round(t.elapsed_s * 1000, 1)}))
    else:
        print(t.text)
    return 0


def cmd_say(settings: Settings, args: argparse.Namespace) -> int:
    paths = agent.resolve_models(settings, _store(settings))
    from edge.tts import Synthesizer

    tts = Synthesizer(paths.tts_model, paths.tts_config, threads=settings.tts.threads,
                      length_scale=settings.tts.length_scale)
    text = " ".join(args.text).strip()
    if not text:
        raise HearthError("nothing to say: give some text, e.g. hearth say \"Hello\" --out hello.wav")
    audio = tts.synthesize(text)
    if args.out:
        audio_io.write_wav(Path(args.out), audio, tts.sample_rate)
        print(f"wrote {args.out} ({audio.size / tts.sample_rate:.1f} s)")
    else:
        with audio_io.Speaker(settings.audio.output_device or None) as speaker:
            speaker.write(audio, tts.sample_rate)
    return 0


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    loaded = agent.load_models(settings, _store(settings))
    text = " ".join(args.text).strip()
    if not text:
        raise HearthError("nothing to ask: e.g. hearth ask \"What is the capital of France?\"")
    sink: AudioSink
    if args.out:
        sink = audio_io.WavSink(Path(args.out))
    elif args.speak:
        sink = audio_io.Speaker(settings.audio.output_device or None)
    else:
        sink = _Discard()

    async def ask(house: House | None) -> TurnResult:
        assistant = agent.make_assistant(settings, loaded, "typed", house)
        return await assistant.ask(text, sink, streaming=not args.sequential)

    r = asyncio.run(agent.with_house(settings, not args.no_boards, ask, one_shot=True))
    getattr(sink, "close", lambda: None)()
    r.output = args.out
    _print_turn(r, args.json)
    return 0


class _Discard:
    def write(self, samples: Any, rate: int) -> None:
        pass


def cmd_log(settings: Settings, args: argparse.Namespace) -> int:
    from edge.turnlog import TurnLog

    rows = TurnLog(settings.storage.database_path).recent(args.n)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print(f"no turns yet in {settings.storage.database_path}")
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["started_at"]))
        e2a = row.get("end_of_speech_to_first_audio_ms")
        print(f"#{row['id']} {when} [{row['status']}] {row['transcript']!r} -> {row['reply']!r}"
              + (f" ({e2a:.0f} ms to first audio)" if e2a else "")
              + (f" error: {row['error']}" if row.get("error") else ""))
    return 0


def cmd_config_check(settings: Settings, args: argparse.Namespace) -> int:
    store = _store(settings)
    paths = agent.resolve_models(settings, store)
    print(f"settings OK ({args.config or 'defaults'}); models: {paths.stt.name}, "
          f"{paths.llm.name if paths.llm else 'LLM disabled'}, {paths.tts_model.name}")
    return 0


def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    store = _store(settings)
    if args.models_command == "list":
        for m in store.catalog.values():
            size = sum(f.size for f in m.files) / 2**20
            print(f"{m.name:28s} {m.role:4s} {size:7.0f} MB  {store.status(m.name):9s} {m.description}")
        print(f"store: {store.root}")
        return 0
    if args.models_command == "install":
        if args.defaults:
            names = required_models(settings)  # settings that point at files outside the store are skipped
        elif args.name:
            names = [args.name]
        else:
            raise HearthError("name a model (see `hearth models list`) or use --defaults")
        for name in names:
            print(f"{name}: {store.status(name)}" + (" -> installing" if store.status(name) != "installed" else ""),
                  file=sys.stderr)
            files = store.install(name)
            print(f"{name}: installed ({', '.join(str(f) for f in files)})", file=sys.stderr)
        return 0
    names = [args.name] if args.name else [n for n in store.catalog if store.status(n) != "missing"]
    bad = 0
    for name in names:
        problems = store.verify(name)
        bad += bool(problems)
        print(f"{name}: " + ("ok" if not problems else "; ".join(problems)
                            + f" -> delete the file and run `hearth models install {name}`"))
    return 1 if bad else 0


def cmd_audio_devices(settings: Settings, args: argparse.Namespace) -> int:
    devices = audio_io.list_devices()
    if not devices:
        print("no audio devices found (is a sound card or USB microphone connected?)")
    for d in devices:
        print(f"{d.index:3d}  in:{d.max_input_channels} out:{d.max_output_channels}  {d.name}")
    return 0


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from edge.doctor import run_checks

    return run_checks(settings, _store(settings))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hearth", description="Hearth: an offline voice assistant for the home.")
    p.add_argument("--config", help="settings TOML file (default: ./hearth.toml or $HEARTH_CONFIG)")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    p.add_argument("--version", action="version", version=f"hearth {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def turn_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="one JSON object per turn on stdout")
        sp.add_argument("--out", help="write the reply audio to this WAV file")
        sp.add_argument("--speak", action="store_true", help="play the reply on the speaker instead of a WAV")
        sp.add_argument("--sequential", action="store_true",
                        help="no streaming: whole reply, then whole speech (for comparison)")
        sp.add_argument("--no-boards", action="store_true", help="do not start the serial/MQTT links to boards")

    sp = sub.add_parser("demo", help="run the loop on the bundled spoken question")
    turn_opts(sp)
    sp.set_defaults(func=cmd_demo)
    sp = sub.add_parser("run", help="the live loop (microphone), or --input FILE.wav")
    sp.add_argument("--input", help="a WAV file instead of the microphone")
    sp.add_argument("--once", action="store_true", help="stop after the first answered request")
    turn_opts(sp)
    sp.set_defaults(func=cmd_run)
    sp = sub.add_parser("transcribe", help="print the transcript of a WAV file")
    sp.add_argument("file")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_transcribe)
    sp = sub.add_parser("say", help="speak text (to the speaker or --out FILE.wav)")
    sp.add_argument("text", nargs="+")
    sp.add_argument("--out")
    sp.set_defaults(func=cmd_say)
    sp = sub.add_parser("ask", help="ask a typed question")
    sp.add_argument("text", nargs="+")
    turn_opts(sp)
    sp.set_defaults(func=cmd_ask)
    sp = sub.add_parser("log", help="recent turns")
    sp.add_argument("-n", type=int, default=20)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_log)
    sp = sub.add_parser("config", help="settings")
    csub = sp.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    csub.add_parser("check", help="validate the settings and that the models they name are installed"
                    ).set_defaults(func=cmd_config_check)
    sp = sub.add_parser("models", help="list, install and verify models")
    msub = sp.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    msub.add_parser("list", help="catalog and what is installed")
    mi = msub.add_parser("install", help="install a model by name (or --defaults)")
    mi.add_argument("name", nargs="?")
    mi.add_argument("--defaults", action="store_true", help="the offline defaults named in the settings")
    mv = msub.add_parser("verify", help="check sha256 of installed models")
    mv.add_argument("name", nargs="?")
    sp.set_defaults(func=cmd_models)
    sp = sub.add_parser("audio", help="audio devices")
    asub = sp.add_subparsers(dest="audio_command", required=True, metavar="ACTION")
    asub.add_parser("devices", help="list microphones and speakers").set_defaults(func=cmd_audio_devices)
    sp = sub.add_parser("doctor", help="check microphone, models and settings; print what to fix")
    sp.set_defaults(func=cmd_doctor)
    boards_cli.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
        return int(args.func(settings, args))
    except SettingsError as exc:
        print(f"hearth: settings error: {exc}", file=sys.stderr)
        return 2
    except HearthError as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hearth: stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
