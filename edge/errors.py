"""Exception tree for the host agent.

Every message is meant for a person: it names what is wrong and how to fix it, so the CLI can print
``str(exc)`` without a traceback. Library errors are wrapped with ``raise ... from`` at the boundary.
"""


class HearthError(Exception):
    """Base of every error the agent reports to a user."""


class SettingsError(HearthError):
    """The TOML settings file is missing, unreadable or has a bad key/value."""


class AudioInputError(HearthError):
    """Audio that cannot be used: not a WAV, truncated, empty, unsupported encoding."""


class AudioDeviceError(HearthError):
    """A microphone/speaker that cannot be opened, or pyaudio is not installed."""


class ModelError(HearthError):
    """A model is missing, corrupt, or cannot be loaded."""


class ModelNotInstalledError(ModelError):
    """The model is in the catalog but not in the store; the message says which install command to run."""


class DownloadError(ModelError):
    """A download failed (HTTP error, network, disk); any partial file is kept only as ``.part``."""


class ChecksumError(DownloadError):
    """A downloaded or installed file does not match the catalog's sha256."""


class ConversionError(ModelError):
    """The CTranslate2 -> ggml whisper conversion failed (unexpected input layout)."""


class STTError(HearthError):
    """Speech-to-text failed at run time."""


class LLMError(HearthError):
    """The language model failed, timed out, or is not installed; the pipeline falls back to a spoken reply."""


class TTSError(HearthError):
    """Speech synthesis failed at run time."""


class TurnLogError(HearthError):
    """The SQLite turn log cannot be opened or written."""


class BoardProfileError(HearthError):
    """A board profile (hardware/boards/*.toml) is missing, not TOML, or describes hardware that cannot work."""


class FlashError(HearthError):
    """Building or flashing firmware failed; the message names the fix (port, permissions, chip, tools)."""


class BrokerAuthError(HearthError):
    """Mosquitto password/ACL files cannot be written, or a board id/username is unsafe in a topic or ACL."""
