from pathlib import Path

import pytest

from edge.errors import SettingsError
from edge.settings import Settings, load_settings, settings_from_dict

EXAMPLE = Path(__file__).resolve().parents[1] / "hearth.example.toml"


def test_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEARTH_CONFIG", raising=False)
    assert load_settings() == Settings()


def test_example_file_is_valid_and_documents_every_key() -> None:
    s = load_settings(EXAMPLE)
    assert s == Settings(), "the example should show the defaults"
    text = EXAMPLE.read_text()
    for section in ("audio", "vad", "activation", "stt", "llm", "tts", "storage"):
        assert f"[{section}]" in text
        for key in getattr(Settings(), section).__dataclass_fields__:
            assert f"\n{key} =" in text or f"\n# {key} =" in text, f"[{section}] {key} is not documented"


def test_values_are_read(tmp_path: Path) -> None:
    p = tmp_path / "h.toml"
    p.write_text('[vad]\nsilence_ms = 700\n[activation]\nwake_phrases = ["computer"]\n[llm]\ntemperature = 1\n')
    s = load_settings(p)
    assert s.vad.silence_ms == 700
    assert s.activation.wake_phrases == ("computer",)
    assert s.llm.temperature == 1.0 and isinstance(s.llm.temperature, float)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"vad": {"silense_ms": 300}}, "unknown setting [vad] silense_ms"),
        ({"vadd": {}}, "unknown section [vadd]"),
        ({"vad": {"frame_ms": 25}}, "[vad] frame_ms = 25 is out of range; allowed: one of 10, 20, 30"),
        ({"vad": {"silence_ms": "500"}}, "[vad] silence_ms must be a whole number"),
        ({"llm": {"enabled": "yes"}}, "[llm] enabled must be true or false"),
        ({"activation": {"wake_phrases": "hey"}}, "[activation] wake_phrases must be a list of strings"),
        ({"vad": 3}, "[vad] must be a table"),
        ({"audio": {"sample_rate": 44100}}, "[audio] sample_rate = 44100 is out of range"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        settings_from_dict(data)  # type: ignore[arg-type]
    assert needle in str(err.value)


def test_broken_toml_names_file_and_fix(tmp_path: Path) -> None:
    p = tmp_path / "broken.toml"
    p.write_text("[vad\nsilence_ms = 3")
    with pytest.raises(SettingsError) as err:
        load_settings(p)
    assert str(p) in str(err.value) and "not valid TOML" in str(err.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    b = tmp_path / "bin.toml"
    b.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SettingsError, match=r"cannot read|not valid TOML"):
        load_settings(b)


def test_device_index_may_be_a_number() -> None:
    assert settings_from_dict({"audio": {"input_device": 3}}).audio.input_device == "3"
