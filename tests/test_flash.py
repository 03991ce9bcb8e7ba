"""Flashing: argv per chip, offsets, merged images, and the errors a person meets at the bench.

No ESP32 is attached here, so the one stand-in is a tiny `esptool` script first on PATH that prints what
esptool 5.x prints for a given chip (its output format is copied from esptool's own sources). Everything
else is real: the real esptool builds merged images, real files and permissions are checked.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from edge import flash
from edge.boards import load_profile
from edge.errors import FlashError, HearthError

ROOT = Path(__file__).resolve().parent.parent

FAKE_ESPTOOL = r"""#!/bin/sh
# Stand-in for esptool 5.x talking to a board whose chip is $FAKE_CHIP (e.g. ESP32-S3).
echo "$*" >> "$FAKE_LOG"
echo "esptool v5.6.0"
if [ "$FAKE_MODE" = hang ]; then exec sleep 30; fi
if [ "$FAKE_MODE" = perm ]; then
  echo "A fatal error occurred: Could not open $3, the port is busy or doesn't exist."
  echo "([Errno 13] could not open port $3: [Errno 13] Permission denied: '$3')"
  exit 2
fi
want=""
while [ $# -gt 0 ]; do
  case "$1" in
    --chip) want="$2"; shift ;;
    --port) port="$2"; shift ;;
    chip-id|read-mac|write-flash) cmd="$1" ;;
  esac
  shift
done
have=$(echo "$FAKE_CHIP" | tr 'A-Z' 'a-z' | tr -d '-')
if [ -n "$want" ] && [ "$want" != "$have" ]; then
  echo "Connecting...."
  echo
  label=$(echo "$want" | tr 'a-z' 'A-Z' | sed 's/^ESP32/ESP32-/;s/-$//')
  echo "A fatal error occurred: This chip is $FAKE_CHIP, not $label. Wrong chip argument?" >&2
  exit 2
fi
echo "Connected to $FAKE_CHIP on $port:"
echo "Chip type:          $FAKE_CHIP (QFN56) (revision v0.2)"
echo "MAC:                24:0a:c4:12:34:56"
echo
if [ "$cmd" = write-flash ]; then
  printf 'Writing at 0x00010000 [>         ]  10.0%% 4096/40960 bytes...\r'
  printf 'Writing at 0x00014000 [=====>    ]  60.0%% 24576/40960 bytes...\r'
  echo "Wrote 40960 bytes (20480 compressed) at 0x00010000 in 0.5 seconds (655.4 kbit/s)."
  echo "Hash of data verified."
fi
echo "Hard resetting via RTS pin..."
"""


@pytest.fixture
def fake_esptool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `esptool` first on PATH; returns the log file of the argv it was called with."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    script = bindir / "esptool"
    script.write_text(FAKE_ESPTOOL)
    script.chmod(0o755)
    log = tmp_path / "esptool.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_CHIP", "ESP32-S3")
    monkeypatch.setenv("FAKE_MODE", "")
    return log


@pytest.fixture
def port(tmp_path: Path) -> str:
    """An existing, writable path standing in for /dev/ttyUSB0 (the fake esptool never opens it)."""
    p = tmp_path / "ttyUSB0"
    p.touch()
    return str(p)


def image_header(chip: str) -> bytes:
    """An ESP image header: magic, segments, flash mode/size, entry, extended header with the chip id."""
    chip_id = flash.CHIP_TABLE[chip].image_id
    return bytes([0xE9, 1, 2, 0x20]) + struct.pack("<I", 0x40080000) + bytes([0xEE, 0, 0, 0]) + \
        struct.pack("<H", chip_id) + bytes(10)


def make_parts(d: Path, chip: str) -> flash.FlashImages:
    d.mkdir(parents=True, exist_ok=True)
    (d / "bootloader.bin").write_bytes(image_header(chip) + bytes(2000))
    (d / "partitions.bin").write_bytes(flash.PARTITION_MAGIC + bytes(3070))
    (d / "boot_app0.bin").write_bytes(b"\xff" * 8192)
    (d / "firmware.bin").write_bytes(image_header(chip) + os.urandom(30000))
    return flash.FlashImages(d / "bootloader.bin", d / "partitions.bin", d / "firmware.bin", d / "boot_app0.bin")


def merged_image(path: Path, chip: str) -> Path:
    """What `esptool merge-bin` produces (0xFF padding between parts), made in Python for the fake tests."""
    images = make_parts(path.parent / f"parts-{chip}", chip)
    data = bytearray(b"\xff" * flash.APP)
    for off, part in flash.image_parts(chip, images):
        blob = part.read_bytes()
        if off + len(blob) > len(data):
            data.extend(b"\xff" * (off + len(blob) - len(data)))
        data[off:off + len(blob)] = blob
    path.write_bytes(bytes(data))
    return path


# ------------------------------------------------------------------------------------------- argv and offsets


def test_offset_table() -> None:
    assert {c: i.bootloader for c, i in flash.CHIP_TABLE.items()} == {
        "esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0, "esp32c6": 0x0, "esp32p4": 0x2000}
    assert flash.flash_offsets("esp32") == {"bootloader": 0x1000, "partitions": 0x8000, "boot_app0": 0xE000,
                                            "app": 0x10000}
    with pytest.raises(FlashError, match="unknown chip 'esp8266'"):
        flash.flash_offsets("esp8266")


@pytest.mark.parametrize(("chip", "boot"), [("esp32", "0x1000"), ("esp32s3", "0x0"), ("esp32c3", "0x0"),
                                            ("esp32p4", "0x2000"), ("esp32s2", "0x1000"), ("esp32c6", "0x0")])
def test_write_flash_args_per_chip(chip: str, boot: str) -> None:
    images = flash.FlashImages(Path("b.bin"), Path("p.bin"), Path("app.bin"), Path("ba.bin"))
    argv = flash.write_flash_args(chip, "/dev/ttyUSB0", flash.image_parts(chip, images))
    assert argv == ["esptool", "--chip", chip, "--port", "/dev/ttyUSB0", "--baud", "460800",
                    "--before", "default-reset", "--after", "hard-reset", "write-flash",
                    boot, "b.bin", "0x8000", "p.bin", "0xe000", "ba.bin", "0x10000", "app.bin"]


def test_merge_bin_args_and_optional_boot_app0() -> None:
    images = flash.FlashImages(Path("bootloader.bin"), Path("partitions.bin"), Path("firmware.bin"))
    argv = flash.merge_bin_args("esp32", flash.image_parts("esp32", images), Path("out.bin"),
                                esptool=["python", "-m", "esptool"])
    assert argv == ["python", "-m", "esptool", "--chip", "esp32", "merge-bin", "-o", "out.bin",
                    "0x1000", "bootloader.bin", "0x8000", "partitions.bin", "0x10000", "firmware.bin"]


@pytest.mark.parametrize("chip", ["esp32", "esp32s3", "esp32c3"])
def test_real_esptool_merge_bin_makes_an_image_check_image_accepts(tmp_path: Path, chip: str) -> None:
    pytest.importorskip("esptool", reason="esptool is the `boards` extra: pip install -e '.[boards]'")
    esptool = flash.find_esptool()
    images = make_parts(tmp_path / "parts", chip)
    out = tmp_path / "merged.bin"
    lines: list[str] = []
    flash.run_esptool(flash.merge_bin_args(chip, flash.image_parts(chip, images), out, esptool=esptool),
                      progress=lines.append)
    assert any("merged.bin" in line for line in lines)
    data = out.read_bytes()
    boot = flash.CHIP_TABLE[chip].bootloader
    assert data[:boot] == b"\xff" * boot and data[boot:boot + 24] == images.bootloader.read_bytes()[:24]
    assert data[flash.APP:flash.APP + 100] == images.app.read_bytes()[:100]
    flash.check_image(out, chip)
    other = "esp32c3" if chip == "esp32s3" else "esp32s3"
    with pytest.raises(FlashError):
        flash.check_image(out, other)


def test_check_image_refuses_app_only_and_other_chip(tmp_path: Path) -> None:
    app = make_parts(tmp_path / "p", "esp32s3").app
    with pytest.raises(FlashError, match=r"not a merged flash image.*for esp32s3.*merge-bin"):
        flash.check_image(app, "esp32s3")
    s3 = merged_image(tmp_path / "s3.bin", "esp32s3")
    flash.check_image(s3, "esp32s3")
    c3 = merged_image(tmp_path / "c3.bin", "esp32c3")
    with pytest.raises(FlashError, match="built for esp32c3, not esp32s3"):
        flash.check_image(c3, "esp32s3")
    with pytest.raises(FlashError, match="does not exist"):
        flash.check_image(tmp_path / "nope.bin", "esp32")


# ------------------------------------------------------------------------------------------------- errors


def test_missing_port() -> None:
    with pytest.raises(FlashError, match=r"/dev/ttyHEARTH_NOPE does not exist.*USB data cable"):
        flash.check_port("/dev/ttyHEARTH_NOPE")
    with pytest.raises(FlashError, match="does not exist"):
        flash.flash_board(load_profile("relay-board"), "/dev/ttyHEARTH_NOPE", progress=lambda s: None)


def test_permission_denied_names_the_dialout_group() -> None:
    """A real mode-000 file; as root (who may open anything) the check runs as the user nobody."""
    d = Path(tempfile.mkdtemp(prefix="hearth-port-"))
    try:
        d.chmod(0o755)
        p = d / "ttyUSB0"
        p.touch()
        p.chmod(0)
        if os.geteuid() != 0:
            with pytest.raises(FlashError, match=r"permission denied.*dialout") as ei:
                flash.check_port(str(p))
            assert str(p) in str(ei.value)
            return
        try:
            pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root and there is no user nobody to lose the permission")
        python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
        code = (f"from edge.flash import check_port\ntry:\n    check_port({str(p)!r})\n"
                "except Exception as e:\n    print(type(e).__name__, e)\n")
        r = subprocess.run([python, "-c", code], user="nobody", cwd=ROOT, capture_output=True, text=True,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("FlashError permission denied on " + str(p)), r.stdout
        assert "dialout" in r.stdout
    finally:
        shutil.rmtree(d)


def test_esptool_permission_error_is_translated(fake_esptool: Path, port: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "perm")
    with pytest.raises(FlashError, match=f"permission denied on {port}.*usermod -aG dialout"):
        flash.detect_chip(port)


def test_real_esptool_missing_port_is_translated() -> None:
    pytest.importorskip("esptool", reason="esptool is the `boards` extra: pip install -e '.[boards]'")
    argv = [*flash.find_esptool(), "--port", "/dev/ttyHEARTH_NOPE", "--connect-attempts", "1", "chip-id"]
    with pytest.raises(FlashError, match="/dev/ttyHEARTH_NOPE does not exist"):
        flash.run_esptool(argv, port="/dev/ttyHEARTH_NOPE", progress=None, timeout=60)


def test_esptool_missing(tmp_path: Path) -> None:
    with pytest.raises(FlashError, match=r"esptool is not installed.*\[boards\]"):
        flash.find_esptool(path=str(tmp_path), extra_dirs=())
    with pytest.raises(FlashError, match="esptool is not installed"):
        flash.run_esptool([str(tmp_path / "esptool"), "version"])


def test_pio_missing_says_how_to_install_or_use_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path / "pio"))
    with pytest.raises(FlashError) as ei:
        flash.build_firmware(load_profile("relay-board"), progress=lambda s: None)
    msg = str(ei.value)
    assert "pip install platformio" in msg and "--image" in msg


def test_detect_chip_parses_esptool_output(fake_esptool: Path, port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert flash.detect_chip(port) == "esp32s3"
    monkeypatch.setenv("FAKE_CHIP", "ESP32")
    assert flash.detect_chip(port) == "esp32"
    assert f"--port {port} chip-id" in fake_esptool.read_text()
    assert flash.read_board_id(port) == "240ac4123456"


def test_wrong_chip_is_refused_before_writing(fake_esptool: Path, port: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CHIP", "ESP32")
    image = merged_image(tmp_path / "garage.bin", "esp32s3")
    with pytest.raises(FlashError) as ei:
        flash.flash_board(load_profile("garage-controller"), port, image=image, progress=lambda s: None)
    msg = str(ei.value)
    assert "wrong chip" in msg and "esp32s3" in msg and "is esp32" in msg
    assert "write-flash" not in fake_esptool.read_text()


def test_wrong_chip_reported_by_esptool_itself(fake_esptool: Path, port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CHIP", "ESP32")
    argv = flash.write_flash_args("esp32s3", port, [(0, Path("x.bin"))])
    want = r"wrong chip: the board on .* is an ESP32, but the firmware is for an ESP32-S3"
    with pytest.raises(FlashError, match=want):
        flash.run_esptool(argv, port=port, progress=None)


def test_flash_board_with_image_passes_progress_through(fake_esptool: Path, port: str, tmp_path: Path) -> None:
    image = merged_image(tmp_path / "garage.bin", "esp32s3")
    lines: list[str] = []
    flash.flash_board("garage-controller", port, image=str(image), progress=lines.append)
    calls = fake_esptool.read_text().splitlines()
    assert calls[0] == f"--port {port} chip-id"
    assert calls[1] == (f"--chip esp32s3 --port {port} --baud 460800 --before default-reset --after hard-reset "
                        f"write-flash 0x0 {image}")
    assert any("10.0%" in line for line in lines) and any("60.0%" in line for line in lines)  # \r-separated bars
    assert "Hash of data verified." in lines and lines[-1].startswith("done: garage-controller")


def test_image_for_another_chip_is_refused_before_talking_to_the_board(fake_esptool: Path, port: str,
                                                                       tmp_path: Path) -> None:
    image = merged_image(tmp_path / "relay.bin", "esp32")
    with pytest.raises(FlashError, match="built for esp32, not esp32s3"):
        flash.flash_board(load_profile("garage-controller"), port, image=image, progress=lambda s: None)
    assert fake_esptool.read_text() == ""


def test_hung_esptool_times_out(fake_esptool: Path, port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "hang")
    with pytest.raises(FlashError, match="did not finish within 1 s"):
        flash.detect_chip(port, timeout=1)


def test_unrecognised_failure_keeps_esptool_words(fake_esptool: Path, port: str) -> None:
    bogus = Path(fake_esptool.parent / "fakebin" / "esptool")
    bogus.write_text(textwrap.dedent("""\
        #!/bin/sh
        echo "A fatal error occurred: Something odd (0x1234)"
        exit 2
        """))
    with pytest.raises(FlashError, match=r"esptool failed \(exit 2\): A fatal error occurred: Something odd"):
        flash.detect_chip(port)


def test_flash_cli_reports_errors_in_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "edge.flash", "--board", "relay-board", "--port", "/dev/ttyHEARTH_NOPE"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("hearth: serial port /dev/ttyHEARTH_NOPE does not exist")


def test_flash_script_runs_the_flash_code_path() -> None:
    pytest.importorskip("esptool", reason="flash.sh would install the `boards` extra first")
    script = ROOT / "scripts" / "flash.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    r = subprocess.run(["bash", str(script), "--board", "climate-node", "--port", "/dev/ttyHEARTH_NOPE"],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, HEARTH_VENV=sys.prefix))
    assert r.returncode == 1, r.stderr
    assert "serial port /dev/ttyHEARTH_NOPE does not exist" in r.stderr


def test_errors_are_hearth_errors() -> None:
    assert issubclass(FlashError, HearthError)
