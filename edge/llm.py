"""Local language model (llama.cpp through llama-cpp-python) and per-session conversation memory.

Generation is a blocking generator meant to run in a worker thread; the pipeline reads its tokens through a
queue with deadlines, and stops it through ``cancel``. That split keeps every timeout and fallback decision in
one place (the pipeline), so a stuck or missing model can never hang a turn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import LLMError, ModelError


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass
class Conversation:
    """Memory of one session. Old exchanges are dropped first when the prompt would not fit the context."""

    persona: str
    max_turns: int = 4
    turns: list[tuple[str, str]] = field(default_factory=list)  # (user, assistant)
    last_active: float = field(default_factory=time.monotonic)

    def remember(self, user: str, assistant: str) -> None:
        self.turns.append((user, assistant))
        self.last_active = time.monotonic()

    def messages(self, user: str, count_tokens: Callable[[str], int], budget: int) -> list[ChatMessage]:
        """The prompt for ``user``: persona + as many recent exchanges as fit in ``budget`` tokens."""
        system = ChatMessage("system", self.persona)
        current = ChatMessage("user", user)
        # ~8 tokens of chat-template overhead per message
        used = count_tokens(system.content) + count_tokens(user) + 16
        kept: list[ChatMessage] = []
        for u, a in reversed(self.turns[-self.max_turns:] if self.max_turns else []):
            cost = count_tokens(u) + count_tokens(a) + 16
            if used + cost > budget:
                break
            kept[:0] = [ChatMessage("user", u), ChatMessage("assistant", a)]
            used += cost
        if used > budget:
            raise LLMError(f"the question alone is {used} tokens, more than the context allows ({budget})")
        return [system, *kept, current]


class LanguageModel:
    """One loaded GGUF model. Calls are serialized: a llama.cpp context serves one generation at a time."""

    def __init__(self, model_path: Path, *, threads: int = 1, context_tokens: int = 2048) -> None:
        if not model_path.is_file():
            raise ModelError(f"LLM file {model_path} does not exist: run `hearth models install`")
        try:
            import llama_cpp
        except ImportError as exc:
            raise LLMError(
                "llama-cpp-python is not installed, so answers fall back to a fixed reply: "
                "run scripts/setup.sh (it builds a portable wheel once)"
            ) from exc
        t0 = time.perf_counter()
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=context_tokens,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=256,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(
                f"llama.cpp could not load {model_path.name} ({exc}); run `hearth models verify`"
            ) from exc
        self.load_s = time.perf_counter() - t0
        self.name = model_path.stem
        self.context_tokens = context_tokens
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def generate(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        cancel: threading.Event,
    ) -> Iterator[str]:
        """Yield reply text pieces as llama.cpp produces them; stops early when ``cancel`` is set."""
        with self._lock:
            try:
                stream: Any = self._llm.create_chat_completion(
                    messages=[_as_dict(m) for m in messages],
                    max_tokens=max_tokens,
                    temperature=temperature,
                    top_p=0.9,
                    repeat_penalty=1.1,
                    stream=True,
                )
                for chunk in stream:
                    if cancel.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except (ValueError, RuntimeError) as exc:
                raise LLMError(f"llama.cpp failed while generating: {exc}") from exc


    def constrained(self, messages: list[ChatMessage], grammar: str, *, max_tokens: int = 48) -> str:
        """One reply that must match a GBNF ``grammar``: the model cannot produce anything outside it."""
        try:
            from llama_cpp.llama_grammar import LlamaGrammar

            g = LlamaGrammar.from_string(grammar, verbose=False)
        except (ImportError, ValueError, RuntimeError) as exc:
            raise LLMError(f"cannot build the tool grammar: {exc}") from exc
        with self._lock:
            try:
                out: Any = self._llm.create_chat_completion(
                    messages=[_as_dict(m) for m in messages], grammar=g, max_tokens=max_tokens, temperature=0.0)
            except (ValueError, RuntimeError) as exc:
                raise LLMError(f"llama.cpp failed on a tool call: {exc}") from exc
        return str(out["choices"][0]["message"]["content"] or "")


def _as_dict(m: ChatMessage) -> Any:
    return {"role": m.role, "content": m.content}
