import numpy as np

from tests.conftest import read_pcm16


def test_transcribes_a_command(transcriber, speech_wav) -> None:  # type: ignore[no-untyped-def]
    samples, _ = read_pcm16(speech_wav("Turn on the kitchen light."))
    t = transcriber.transcribe(samples)
    assert "kitchen light" in t.text.lower() and t.audio_s > 1.0


def test_long_utterance_is_not_cut_by_the_short_window(transcriber, speech_wav) -> None:  # type: ignore[no-untyped-def]
    text = ("The quick brown fox jumps over the lazy dog while the children play in the garden, "
            "and later everyone goes inside to eat dinner and watch a movie about elephants.")
    samples, _ = read_pcm16(speech_wav(text, wpm=130))
    assert samples.size / 16000 > 10.5, "longer than the 448-frame (8.96 s) window"
    out = transcriber.transcribe(samples).text.lower()
    assert "elephant" in out, out


def test_silence_gives_an_empty_transcript(transcriber) -> None:  # type: ignore[no-untyped-def]
    t = transcriber.transcribe(np.zeros(16000 * 2, dtype=np.int16))
    assert t.is_empty, t.text


def test_very_short_input_is_padded(transcriber, speech_wav) -> None:  # type: ignore[no-untyped-def]
    samples, _ = read_pcm16(speech_wav("Yes."))
    assert samples.size < 16000
    assert "yes" in transcriber.transcribe(samples).text.lower()


def test_repetition_loops_are_collapsed() -> None:
    from edge.stt import collapse_repeats

    assert collapse_repeats("Turn on the kitchen light. Turn on the kitchen light. Turn on the") == \
        "Turn on the kitchen light."
    assert collapse_repeats("Set the hallway light to 40%. Set the hallway light to 40%.") == \
        "Set the hallway light to 40%."
    assert collapse_repeats("Turn on the fan.") == "Turn on the fan."
    assert collapse_repeats("no no") == "no no"
    assert collapse_repeats("What is the capital of France?") == "What is the capital of France?"
    assert collapse_repeats("the cat saw the dog") == "the cat saw the dog"
