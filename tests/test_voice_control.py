"""Voice control end to end: real models, the real House (registry, hub, serial link) and a simulated board."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.house import House
from edge.pipeline import Assistant
from edge.settings import Settings, StorageSettings, replace
from edge.turnlog import TurnLog
from tests.conftest import read_pcm16
from tests.hw import GARAGE_SPEC, RELAY_SPEC, BoardSim

BOARD = "a1b2c3d4e5f6"
SPEC = RELAY_SPEC + "\n".join(GARAGE_SPEC.splitlines()[1:]) + "\n"


class Recorder:
    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def write(self, samples: np.ndarray, rate: int) -> None:
        self.chunks.append(samples)


def settings_for(tmp: Path, sim: BoardSim, **boards: Any) -> Settings:
    s = Settings()
    s = dataclasses.replace(s, storage=StorageSettings(home=str(tmp), database=str(tmp / "h.db")))
    s = replace(s, "boards", serial_ports=(str(sim.pty_link),), mqtt_host="", **boards)
    return replace(s, "activation", require_wake_phrase=False)


def run_with_house(tmp: Path, sim: BoardSim, models: tuple[Any, Any, Any],
                   body: Callable[[Assistant, House], Awaitable[None]], **boards: Any) -> None:
    stt, tts, llm = models
    settings = settings_for(tmp, sim, **boards)

    async def go() -> None:
        house = House(settings)
        await house.start()
        try:
            deadline = time.monotonic() + 10
            while not house.hub.online(BOARD):
                assert time.monotonic() < deadline, "the simulated board never came online"
                await asyncio.sleep(0.05)
            a = Assistant(settings, stt=stt, tts=tts, llm=llm, turnlog=TurnLog(settings.storage.database_path),
                          source="test", home=house.home, on_phase=house.phase)
            await body(a, house)
        finally:
            await house.stop()

    asyncio.run(go())


@pytest.fixture
def sim(tmp_path: Path) -> Any:
    s = BoardSim(tmp_path, SPEC, board_id=BOARD).start()
    yield s
    s.stop()


@pytest.fixture
def models(transcriber: Any, synthesizer: Any, language_model: Any) -> tuple[Any, Any, Any]:
    return transcriber, synthesizer, language_model


def test_spoken_command_switches_the_relay_and_confirms(tmp_path: Path, sim: BoardSim, models: Any,
                                                        speech_wav: Callable[..., Path]) -> None:
    samples, _ = read_pcm16(speech_wav("Turn on the kitchen light."))

    async def body(a: Assistant, house: House) -> None:
        rec = Recorder()
        r = await a.handle_utterance(samples, rec)
        assert r.handled_by == "device:command", r.to_json()
        assert r.reply == "The kitchen light is on." and rec.chunks
        assert "out kitchen_light 1" in sim.log
        audit = house.registry.commands(1)[0]
        assert (audit["source"], audit["turn_id"], audit["status"]) == ("voice", r.turn_id, "ok")
        assert {"led thinking", "led speaking"} <= set(sim.log)  # the status LED followed the turn
        deadline = time.monotonic() + 3
        while "led listening" not in sim.log:  # then shows the open follow-up window
            assert time.monotonic() < deadline, sim.log[-10:]
            await asyncio.sleep(0.02)
        q = await a.ask("Is the kitchen light on?", Recorder())
        assert q.handled_by == "device:query" and q.reply == "The kitchen light is on."

    run_with_house(tmp_path, sim, models, body)


def test_sensitive_action_needs_a_spoken_yes(tmp_path: Path, sim: BoardSim, models: Any) -> None:
    async def body(a: Assistant, house: House) -> None:
        r = await a.ask("Open the garage door.", Recorder())
        assert r.handled_by == "device:confirm" and "Say yes" in r.reply
        await asyncio.sleep(0.3)
        assert not any(line.startswith("out garage_door") for line in sim.log)
        no = await a.ask("No.", Recorder())
        assert no.reply == "Okay, I won't."
        assert house.registry.commands() == []
        await a.ask("Open the garage door.", Recorder())
        yes = await a.ask("Yes.", Recorder())
        assert yes.handled_by == "device:command" and yes.reply == "The garage door is opening."
        assert "out garage_door 1" in sim.log
        # the LLM's tool path cannot skip the question either
        plan = house.home.plan_tool_call("garage_door", "close")
        assert plan is not None and "Say yes" in plan.expected
        reply = await plan.run(None)
        assert reply.handled_by == "device:confirm" and len(house.registry.commands()) == 1
        assert house.home.plan_tool_call("garage_door", "unlock") is None  # not an action a cover has
        assert house.home.plan_tool_call("front_door_lock", "unlock") is None  # not a registered device

    run_with_house(tmp_path, sim, models, body)


def test_confirmation_expires(tmp_path: Path, sim: BoardSim, models: Any) -> None:
    async def body(a: Assistant, house: House) -> None:
        await a.ask("Close the garage door.", Recorder())
        await asyncio.sleep(1.2)
        late = await a.ask("Yes.", Recorder())
        assert late.handled_by != "device:command"
        assert house.registry.commands() == []

    run_with_house(tmp_path, sim, models, body, confirm_window_s=1.0)


def test_unresponsive_board_is_reported(tmp_path: Path, sim: BoardSim, models: Any) -> None:
    async def body(a: Assistant, house: House) -> None:
        sim.send("unplug")
        deadline = time.monotonic() + 5
        while house.hub.online(BOARD):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        r = await a.ask("Turn off the kitchen light.", Recorder())
        assert r.reply == "The kitchen light is not responding."
        assert r.errors and "offline" in r.errors[0]
        assert house.registry.commands(1)[0]["status"] == "failed"

    run_with_house(tmp_path, sim, models, body, ack_timeout_s=0.2, command_attempts=2)


def test_board_button_starts_listening(tmp_path: Path, sim: BoardSim, models: Any,
                                       speech_wav: Callable[..., Path]) -> None:
    samples, _ = read_pcm16(speech_wav("What time is it?"))

    async def body(a: Assistant, house: House) -> None:
        a.settings = replace(a.settings, "activation", require_wake_phrase=True)
        a.activation.settings = a.settings.activation
        house.on_button = a.activation.trigger
        before = await a.handle_utterance(samples, Recorder())
        assert not before.decision.accepted  # no wake phrase, no button: ignored
        sim.send("press talk")
        deadline = time.monotonic() + 3
        while a.activation._trigger is None:
            assert time.monotonic() < deadline, "the button press never reached the activation"
            await asyncio.sleep(0.02)
        after = await a.handle_utterance(samples, Recorder())
        assert after.decision.accepted and after.decision.reason == f"push_to_talk:button:{BOARD}.talk"

    run_with_house(tmp_path, sim, models, body)


def test_llm_tool_call_stays_inside_the_registry(tmp_path: Path, sim: BoardSim, models: Any) -> None:
    async def body(a: Assistant, house: House) -> None:
        choices = house.home.tool_choices()
        assert "garage_door" in choices and "talk" not in choices  # buttons are not actions
        for request in ["It is too dark in the kitchen.", "Could you get some air moving in the bedroom?",
                        "Please make the garage secure.", "Tell me about the weather."]:
            key, action = house.home.ask_llm(models[2], request)
            assert key == "none" or (key in choices and action in choices[key][1]), (request, key, action)

    run_with_house(tmp_path, sim, models, body)


def test_cli_run_on_a_spoken_command(tmp_path: Path, sim: BoardSim, speech_wav: Callable[..., Path]) -> None:
    wav = speech_wav("Hey Hearth, turn on the fan.")
    cfg = tmp_path / "hearth.toml"
    # models from the user's store (installed by setup.sh); turns and the registry in a scratch database
    real_home = Settings().storage.home_path
    cfg.write_text(f'[storage]\nhome = "{real_home}"\ndatabase = "{tmp_path / "cli.db"}"\n'
                   f'[boards]\nserial_ports = ["{sim.pty_link}"]\nmqtt_host = ""\n')
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(cfg), "run", "--input", str(wav),
                           "--once", "--json", "--out", str(tmp_path / "reply.wav")],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    turn = json.loads(proc.stdout.strip().splitlines()[-1])
    assert turn["handled_by"] == "device:command", turn
    assert turn["reply"] == "The fan is on."
    assert any(line.startswith("out fan ") and not line.endswith(" 0") for line in sim.log)
    assert (tmp_path / "reply.wav").stat().st_size > 1000
