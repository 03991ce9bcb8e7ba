import threading

import pytest

from edge.errors import LLMError
from edge.llm import Conversation


def words(text: str) -> int:
    return len(text.split())


def test_memory_keeps_recent_turns_within_budget() -> None:
    conv = Conversation("persona", max_turns=100)
    for i in range(50):
        conv.remember(f"question {i} " + "x " * 20, f"answer {i} " + "y " * 20)
    msgs = conv.messages("now?", words, budget=200)
    assert msgs[0].role == "system" and msgs[-1].content == "now?"
    kept = [m.content.split()[1] for m in msgs[1:-1] if m.role == "user"]
    assert kept and kept[-1] == "49", "the most recent exchange is kept"
    assert kept == sorted(kept, key=int), "order is preserved"
    assert sum(words(m.content) + 8 for m in msgs) <= 200 + 16
    assert len(conv.messages("now?", words, budget=10_000)) == 2 + 2 * 50


def test_question_larger_than_context_is_an_error() -> None:
    with pytest.raises(LLMError, match="more than the context allows"):
        Conversation("p").messages("word " * 500, words, budget=100)


def test_real_model_answers_and_streams(language_model) -> None:  # type: ignore[no-untyped-def]
    conv = Conversation("You are a helpful assistant. Answer briefly.")
    msgs = conv.messages("What is the capital of France?", language_model.count_tokens, 1800)
    pieces = list(language_model.generate(msgs, max_tokens=40, temperature=0.0, cancel=threading.Event()))
    assert len(pieces) > 3, "tokens arrive one by one"
    assert "paris" in "".join(pieces).lower()


def test_cancel_stops_generation(language_model) -> None:  # type: ignore[no-untyped-def]
    conv = Conversation("You are a storyteller.")
    msgs = conv.messages("Tell me a very long story about a dragon.", language_model.count_tokens, 1800)
    cancel = threading.Event()
    got = []
    for piece in language_model.generate(msgs, max_tokens=400, temperature=0.0, cancel=cancel):
        got.append(piece)
        if len(got) == 5:
            cancel.set()
    assert len(got) == 5


def test_memory_is_capped_in_turns() -> None:
    conv = Conversation("persona", max_turns=2)
    for i in range(5):
        conv.remember(f"q{i}", f"a{i}")
    assert [m.content for m in conv.messages("now", words, 1000)] == ["persona", "q3", "a3", "q4", "a4", "now"]
    assert len(Conversation("p", max_turns=0, turns=[("q", "a")]).messages("now", words, 1000)) == 2
