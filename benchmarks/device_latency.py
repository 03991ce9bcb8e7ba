"""Device control benchmark: command → ack over serial (pty) and MQTT (loopback Mosquitto), spoken command →
relay switched and → first confirmation audio, telemetry ingest rate into SQLite, fast-path intent accuracy.

The board is the simulator built from the firmware's C++ core (scripts/build_firmware.sh); the broker is a
private Mosquitto on a free port; the agent side is the real registry, hub, links, grammar and voice
pipeline with the default models.

    .venv/bin/python benchmarks/device_latency.py --commands 500 --json benchmarks/results/device_latency.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.voice_latency import FirstAudio, machine, pct, report  # noqa: E402
from edge import agent  # noqa: E402
from edge.devices import DeviceHub  # noqa: E402
from edge.home import HomeControl  # noqa: E402
from edge.model_store import ModelStore  # noqa: E402
from edge.mqtt_link import MqttConfig, MqttLink  # noqa: E402
from edge.registry import Registry  # noqa: E402
from edge.serial_link import SerialLink  # noqa: E402
from edge.settings import Settings, load_settings, replace  # noqa: E402
from tests.hw import RELAY_SPEC, BoardSim, Mosquitto  # noqa: E402

BOARD = "b0a4d0000001"
GARAGE_LINES = ("id=garage_door;kind=cover;name=Garage door;area=garage;pin=5;drv=gpio;sens=1\n"
                "id=garage_contact;kind=contact;name=Garage door;area=garage;pin=6;drv=gpio\n"
                "id=hall_light;kind=dimmer;name=Hallway light;area=hallway;unit=%;max=100;pin=12;drv=pwm\n"
                "id=bed_light;kind=switch;name=Bedroom light;area=bedroom;pin=13;drv=gpio\n")
# (spoken text, expected action, expected entity) for the fast-path accuracy run
COMMANDS = [
    ("Turn on the kitchen light.", "on", "kitchen_light"),
    ("Turn off the kitchen light.", "off", "kitchen_light"),
    ("Switch the kitchen light off.", "off", "kitchen_light"),
    ("Switch off the fan in the bedroom.", "off", "fan"),
    ("Turn on the fan.", "on", "fan"),
    ("Set the fan to sixty percent.", "set", "fan"),
    ("Set the hallway light to forty percent.", "set", "hall_light"),
    ("Dim the hallway light.", "set", "hall_light"),
    ("Turn on the bedroom light.", "on", "bed_light"),
    ("Turn off the light in the bedroom.", "off", "bed_light"),
    ("Is the garage door open?", "query", "garage_contact"),
    ("Open the garage door.", "open", "garage_door"),
    ("Close the garage door.", "close", "garage_door"),
    ("What's the temperature in the kitchen?", "query", "temp"),
    ("Is the kitchen light on?", "query", "kitchen_light"),
    ("Toggle the kitchen light.", "toggle", "kitchen_light"),
]


def stats(v: list[float]) -> dict[str, float]:
    return {"n": len(v), "p50": round(statistics.median(v), 2), "p90": round(pct(v, 0.9), 2),
            "p99": round(pct(v, 0.99), 2), "max": round(max(v), 2)}


async def wait(cond: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise RuntimeError("timed out")
        await asyncio.sleep(0.01)


async def ack_latency(tmp: Path, n: int, broker: Mosquitto) -> dict[str, Any]:
    """The same board on both links; commands alternate between them so both see the same machine load."""
    sim = BoardSim(tmp, RELAY_SPEC, board_id=BOARD, mqtt_port=broker.port).start()
    reg = Registry(tmp / "ack.db")
    reg.mark_provisioned(BOARD)
    hub = DeviceHub(reg, ack_timeout_s=1.0, attempts=1)
    ser = SerialLink(str(sim.pty_link), hub.on_message, hub.on_lost)
    task = asyncio.create_task(ser.run())
    mq = MqttLink(MqttConfig(port=broker.port, client_id="bench-agent"), hub.on_message, hub.on_status)
    mq.start()
    await wait(lambda: len(hub._links.get(BOARD, {})) == 2)
    lat: dict[str, list[float]] = {"serial": [], "mqtt": []}
    fails = 0
    try:
        for i in range(n):
            for name in (("serial", "mqtt") if i % 2 == 0 else ("mqtt", "serial")):
                links = hub._links[BOARD]
                other = links.pop("serial" if name == "mqtt" else "mqtt")  # force the link under test
                try:
                    r = await hub.command(BOARD, "kitchen_light", "set", i % 2, source="benchmark")
                finally:
                    links["serial" if name == "mqtt" else "mqtt"] = other
                if r.ok:
                    lat[name].append(r.latency_ms)
                else:
                    fails += 1
    finally:
        ser.stop()
        task.cancel()
        mq.stop()
        sim.stop()
        reg.close()
    return {"serial_ms": stats(lat["serial"]), "mqtt_ms": stats(lat["mqtt"]), "failed": fails}


async def ingest(tmp: Path, broker: Mosquitto, boards: int, per_board: int) -> dict[str, Any]:
    """Boards publish sensor states as fast as they can; rows/s that land in the telemetry table."""
    reg = Registry(tmp / "ingest.db")
    hub = DeviceHub(reg)
    mq = MqttLink(MqttConfig(port=broker.port, client_id="ingest-agent"), hub.on_message, hub.on_status)
    mq.start()
    maint = asyncio.create_task(hub.maintain(interval_s=0.1))
    await mq.wait_connected(5)
    ids = [f"5e45{i:08x}" for i in range(boards)]
    pubs = []
    for b in ids:
        reg.mark_provisioned(b)
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{b}")
        c.max_inflight_messages_set(1000)
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        hello = {"v": 1, "t": "hello", "board": b, "fw": "bench", "profile": "climate", "boot": 1,
                 "entities": [{"id": "temp", "kind": "temperature", "name": "Temperature", "area": b}]}
        c.publish(f"hearth/home/{b}/status", "online", qos=1, retain=True).wait_for_publish(5)
        c.publish(f"hearth/home/{b}/hello", json.dumps(hello), qos=1, retain=True).wait_for_publish(5)
        pubs.append(c)
    await wait(lambda: len(reg.boards()) == boards, timeout=30)
    loop = asyncio.get_running_loop()

    def publish_all(c: mqtt.Client, b: str) -> None:
        for k in range(per_board):
            c.publish(f"hearth/home/{b}/state/temp", f'{{"v":1,"t":"state","e":"temp","val":{20 + k % 100 / 10}}}',
                      qos=0)

    t0 = time.perf_counter()
    await asyncio.gather(*(loop.run_in_executor(None, publish_all, c, b) for c, b in zip(pubs, ids, strict=True)))
    total = boards * per_board

    def rows() -> int:
        return int(reg.db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0])

    end = time.monotonic() + 60
    last, still = -1, 0
    while time.monotonic() < end:
        await asyncio.sleep(0.2)
        n = rows()
        if n >= total:
            break
        still = still + 1 if n == last else 0
        last = n
        if still > 10:  # QoS 0 may drop under overload: stop when nothing more arrives
            break
    elapsed = time.perf_counter() - t0
    stored = rows()
    for c in pubs:
        c.loop_stop()
        c.disconnect()
    maint.cancel()
    mq.stop()
    reg.close()
    return {"boards": boards, "published": total, "stored": stored, "seconds": round(elapsed, 2),
            "messages_per_s": round(stored / elapsed)}


async def voice(tmp: Path, settings: Settings, rounds: int) -> dict[str, Any]:
    """Spoken commands through the whole loop to a board on serial: end of speech → ack and → first audio."""
    sim = BoardSim(tmp, RELAY_SPEC + GARAGE_LINES, board_id=BOARD).start()
    settings = replace(settings, "boards", serial_ports=(str(sim.pty_link),), mqtt_host="")
    settings = replace(settings, "activation", require_wake_phrase=False)
    loaded = agent.load_models(settings, ModelStore(settings.storage.model_dir))
    from edge.house import House

    house = House(settings)
    await house.start()
    await wait(lambda: house.hub.online(BOARD))
    assistant = agent.make_assistant(settings, loaded, "benchmark", house)
    home: HomeControl = house.home
    warmed = await assistant.prewarm(home.confirmation_texts())  # what `hearth run` does in the background
    clips = []
    for i, (text, action, entity) in enumerate(COMMANDS):
        for voice_name in ("en-us", "en-gb", "piper"):
            wav = tmp / f"cmd{i}-{voice_name}.wav"
            if voice_name == "piper":
                from edge import audio_io

                pcm = loaded.tts.synthesize(text)
                audio_io.write_wav(wav, pcm, loaded.tts.sample_rate)
            else:
                raw = tmp / f"raw{i}-{voice_name}.wav"
                subprocess.run(["espeak-ng", "-v", voice_name, "-s", "150", "-w", str(raw), text], check=True)
                subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav), "pad", "0.3", "0.8"],
                               check=True)
            clips.append((text, action, entity, voice_name, wav))
    acked: list[tuple[float, bool]] = []  # (perf_counter when the board's ack arrived, ok)
    command = house.hub.command

    async def timed_command(*a: Any, **kw: Any) -> Any:
        r = await command(*a, **kw)
        acked.append((time.perf_counter(), r.ok))
        return r

    house.hub.command = timed_command  # type: ignore[method-assign]
    correct, rows = 0, []
    first_audio: list[float] = []
    first_audio_cold: list[float] = []
    via_llm: list[float] = []
    turns: list[dict[str, Any]] = []
    to_ack: list[float] = []
    for rnd in range(rounds):
        for text, action, entity, voice_name, wav in clips:
            utts = [u async for u in agent.utterances_from_file(wav, settings)]
            utt = max(utts, key=lambda u: u.samples.size)
            if rnd == 0:
                heard = loaded.stt.transcribe(utt.samples, extra_prompt=home.prompt_words()).text
                intent = home.grammar.match(heard)
                ok = intent is not None and intent.action == action and intent.entity.id == entity
                correct += ok
                rows.append({"text": text, "voice": voice_name, "heard": heard, "ok": ok,
                             "got": None if intent is None else [intent.action, intent.entity.id]})
            if action in ("on", "off", "set", "toggle"):
                for cold in (False, True) if rnd % 2 == 0 else (True, False):
                    if cold:  # without the prewarmed cache: the confirmation is synthesized after the ack
                        saved = dict(loaded.tts._cache)
                        loaded.tts._cache.clear()
                    acked.clear()
                    t_end = time.perf_counter()
                    r = await assistant.handle_utterance(utt.samples, FirstAudio())
                    if cold:
                        loaded.tts._cache.clear()
                        loaded.tts._cache.update(saved)
                    if acked and acked[-1][1] and not cold and r.handled_by == "device:command":
                        to_ack.append((acked[-1][0] - t_end) * 1000)
                    fa = r.timings_ms.get("end_of_speech_to_first_audio")
                    turns.append({"text": text, "voice": voice_name, "cold": cold, "heard": r.transcript,
                                  "handled_by": r.handled_by, "reply": r.reply, "timings_ms": r.timings_ms})
                    if fa is not None and r.handled_by == "device:command":  # the fast path, not the LLM tool
                        (first_audio_cold if cold else first_audio).append(fa)
                    elif fa is not None and r.handled_by.startswith("llm-tool:") and not cold:
                        via_llm.append(fa)
    await house.stop()
    sim.stop()
    return {"clips": len(clips), "intent_accuracy": round(correct / len(clips), 3), "intent_rows": rows,
            "end_of_speech_to_ack_ms": stats(to_ack) if to_ack else {},
            "end_of_speech_to_first_audio_ms": stats(first_audio) if first_audio else {},
            "end_of_speech_to_first_audio_cold_cache_ms": stats(first_audio_cold) if first_audio_cold else {},
            "prewarmed_confirmations": warmed,
            "llm_tool_turns_first_audio_ms": stats(via_llm) if via_llm else {}, "turns": turns}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(args.config)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        from dataclasses import replace as dc_replace

        from edge.settings import StorageSettings

        settings = dc_replace(settings, storage=StorageSettings(home=str(settings.storage.home_path),
                                                                database=str(tmp / "bench.db")))
        broker = Mosquitto(tmp).start()
        try:
            out: dict[str, Any] = {"machine": machine()}
            if not args.voice_only:
                out["ack"] = await ack_latency(tmp, args.commands, broker)
                print("ack latency done", file=sys.stderr)
                out["ingest"] = await ingest(tmp, broker, args.boards, args.per_board)
                print("ingest done", file=sys.stderr)
            if not args.no_voice:
                out["voice"] = await voice(tmp, settings, args.rounds)
        finally:
            broker.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--commands", type=int, default=300, help="commands per link")
    ap.add_argument("--boards", type=int, default=4)
    ap.add_argument("--per-board", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2, help="rounds over the spoken command clips")
    ap.add_argument("--no-voice", action="store_true")
    ap.add_argument("--voice-only", action="store_true")
    ap.add_argument("--config")
    ap.add_argument("--json")
    args = ap.parse_args()
    report(asyncio.run(main_async(args)), args.json)


if __name__ == "__main__":
    main()
