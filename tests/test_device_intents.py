"""Fast-path device grammar: commands and questions, ASR slips, areas, ambiguity, numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.device_intents import DeviceGrammar, words
from edge.protocol import EntityInfo, Hello
from edge.registry import Registry

E = EntityInfo


@pytest.fixture()
def registry(tmp_path: Path) -> Registry:
    reg = Registry(tmp_path / "h.db")
    reg.board_hello(Hello("aaaaaaaaaaa1", "0.1", "relay-board", 1, (
        E("kitchen_light", "switch", "Kitchen light", "kitchen"),
        E("bedroom_light", "switch", "Bedroom light", "bedroom"),
        E("fan", "switch", "Fan", "bedroom"),
        E("talk", "button", "Talk button", "kitchen", ptt=True),
    )), link="serial", trusted=True, synonyms={"kitchen_light": ("ceiling light", "lamp")})
    reg.board_hello(Hello("aaaaaaaaaaa2", "0.1", "climate-node", 1, (
        E("hall_light", "dimmer", "Hallway light", "hallway", unit="%", max=100),
        E("temp", "temperature", "Temperature", "kitchen", unit="C", min=-40, max=80),
        E("hum", "humidity", "Humidity", "kitchen", unit="%", max=100),
        E("garage_contact", "contact", "Garage door", "garage"),
    )), link="mqtt", trusted=True)
    reg.board_hello(Hello("aaaaaaaaaaa3", "0.1", "garage-controller", 1, (
        E("garage_door", "cover", "Garage door", "garage", sensitive=True),
        E("front_lock", "lock", "Front door lock", "entrance", sensitive=True),
        E("bed_temp", "temperature", "Temperature", "bedroom", unit="C", min=-40, max=80),
    )), link="mqtt", trusted=True)
    return reg


@pytest.fixture()
def grammar(registry: Registry) -> DeviceGrammar:
    return DeviceGrammar(registry.entities(usable_only=True))


def test_number_words() -> None:
    assert words("set it to twenty one degrees") == ["set", "it", "to", "21", "degrees"]
    assert words("Dim to 40%") == ["dim", "to", "40", "percent"]
    assert words("half") == ["50"]


@pytest.mark.parametrize(("text", "action", "entity", "value"), [
    ("Turn on the kitchen light.", "on", "kitchen_light", None),
    ("turn the kitchen light off", "off", "kitchen_light", None),
    ("Switch off the fan in the bedroom.", "off", "fan", None),
    ("switch on the lamp", "on", "kitchen_light", None),  # synonym from the profile
    ("turn on the kitchen lite", "on", "kitchen_light", None),  # ASR slip
    ("turn on the light in the bed room", "on", "bedroom_light", None),
    ("Set the hallway light to forty percent.", "set", "hall_light", 40.0),
    ("dim the hallway light", "set", "hall_light", 30.0),
    ("open the garage door", "open", "garage_door", None),
    ("close the garage door please", "close", "garage_door", None),
    ("unlock the front door", "unlock", "front_lock", None),
    ("lock the front door", "lock", "front_lock", None),
    ("toggle the fan", "toggle", "fan", None),
    ("Switch off the fan in the Madroom", "off", "fan", None),  # misheard area in the area slot: one fan
])
def test_commands(grammar: DeviceGrammar, text: str, action: str, entity: str, value: float | None) -> None:
    intent = grammar.match(text)
    assert intent is not None, text
    assert (intent.action, intent.entity.id, intent.value) == (action, entity, value)


def test_command_maps_to_protocol_values(grammar: DeviceGrammar) -> None:
    on = grammar.match("turn on the hallway light")
    assert on is not None and on.command() == ("set", 100)
    off = grammar.match("switch the hallway light off")
    assert off is not None and off.command() == ("set", 0)
    unlock = grammar.match("unlock the front door")
    assert unlock is not None and unlock.command() == ("set", 0)


@pytest.mark.parametrize(("text", "entity"), [
    ("Is the garage door open?", "garage_contact"),
    ("is the kitchen light on", "kitchen_light"),
    ("What's the temperature in the bedroom?", "bed_temp"),
    ("how warm is it in the kitchen", "temp"),
    ("what is the humidity", "hum"),
])
def test_questions(grammar: DeviceGrammar, text: str, entity: str) -> None:
    intent = grammar.match(text)
    assert intent is not None and intent.action == "query"
    assert intent.entity.id == entity


def test_temperature_without_area_lists_every_sensor(grammar: DeviceGrammar) -> None:
    intent = grammar.match("what's the temperature")
    assert intent is not None and {e.id for e in intent.entities} == {"temp", "bed_temp"}


def test_ambiguous_name_asks(grammar: DeviceGrammar) -> None:
    intent = grammar.match("turn on the light")
    assert intent is not None and intent.action == "ambiguous"
    assert {e.id for e in intent.entities} >= {"kitchen_light", "bedroom_light"}


@pytest.mark.parametrize("text", ["what is the capital of France", "tell me a joke", "turn on the toaster",
                                  "switch on the garage light", "", "on"])
def test_not_device_requests(grammar: DeviceGrammar, text: str) -> None:
    assert grammar.match(text) is None


def test_area_rules_out_other_rooms(grammar: DeviceGrammar) -> None:
    # there is no fan in the kitchen: never switch the bedroom fan for it
    assert grammar.match("turn off the fan in the kitchen") is None


def test_quarantined_boards_are_not_in_the_grammar(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "q.db")
    reg.board_hello(Hello("bbbbbbbbbbb1", "0.1", "relay-board", 1, (E("heater", "switch", "Heater", "hall"),)),
                    link="mqtt", trusted=False)
    assert DeviceGrammar(reg.entities(usable_only=True)).match("turn on the heater") is None
    reg.mark_provisioned("bbbbbbbbbbb1")
    assert DeviceGrammar(reg.entities(usable_only=True)).match("turn on the heater") is not None


def test_prompt_words_carry_names(grammar: DeviceGrammar) -> None:
    p = grammar.prompt_words()
    assert p.startswith("Devices: ") and "kitchen light;" in p and "hallway light" in p
    assert "talk button" not in p  # buttons are not spoken about


@pytest.mark.parametrize("text", [
    "don't turn off the fan",
    "do not open the garage door",
    "turn on the porch light",  # no porch light: never the kitchen light
    "open the front door",  # the front door is a lock, not the garage door
    "turn off the hallway light in five minutes",  # a timer, not a command for now
    "turn on the kitchen light tomorrow",
    "what's the temperature in the garage",  # no sensor there: not someone else's reading
])
def test_never_acts_on_the_wrong_thing(grammar: DeviceGrammar, text: str) -> None:
    assert grammar.match(text) is None, text


def test_hundred_and_percent_values(grammar: DeviceGrammar) -> None:
    for text in ["set the hallway light to a hundred percent", "set the hallway light to one hundred",
                 "hallway light to 100%"]:
        intent = grammar.match(text)
        assert intent is not None and (intent.action, intent.value) == ("set", 100.0), text
