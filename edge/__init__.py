"""Hearth host agent: the offline voice loop (mic -> VAD -> whisper.cpp -> llama.cpp -> piper)."""

__version__ = "0.1.0"
