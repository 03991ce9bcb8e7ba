"""Build and flash a board's firmware with PlatformIO and esptool 5.x, with errors a person can act on.

esptool runs as a subprocess (not through its Python API) so its own progress output reaches the user
unchanged and a crash inside it cannot take the agent down. Its failures arrive as free text; the common ones
(no port, no permission, wrong chip, board not in download mode) are recognised here and turned into a
FlashError that says what to do. Before writing anything the chip on the port is compared with the profile's
chip, and a prebuilt image's header with both: flashing an ESP32-S3 image onto an ESP32 "succeeds" and leaves
a board that boot-loops.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.boards import Profile, load_profile
from edge.errors import FlashError

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
PARTITIONS = 0x8000
BOOT_APP0 = 0xE000  # Arduino's OTA-data initialiser: boots ota_0/app after a fresh flash
APP = 0x10000
DEFAULT_BAUD = 460800
IMAGE_MAGIC = 0xE9
PARTITION_MAGIC = b"\xaa\x50"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ChipInfo:
    name: str  # esptool's --chip value and the profile's chip
    label: str  # how esptool prints it ("ESP32-S3")
    bootloader: int  # second-stage bootloader offset in flash
    image_id: int  # chip id in the extended image header (byte 12), to check prebuilt images


CHIP_TABLE: dict[str, ChipInfo] = {c.name: c for c in (
    ChipInfo("esp32", "ESP32", 0x1000, 0),
    ChipInfo("esp32s2", "ESP32-S2", 0x1000, 2),
    ChipInfo("esp32s3", "ESP32-S3", 0x0, 9),
    ChipInfo("esp32c3", "ESP32-C3", 0x0, 5),
    ChipInfo("esp32c6", "ESP32-C6", 0x0, 13),
    ChipInfo("esp32p4", "ESP32-P4", 0x2000, 18),
)}


@dataclass(frozen=True)
class FlashImages:
    """The files a PlatformIO Arduino build produces; boot_app0 comes from the framework package."""

    bootloader: Path
    partitions: Path
    app: Path
    boot_app0: Path | None = None


def chip_info(chip: str) -> ChipInfo:
    try:
        return CHIP_TABLE[chip]
    except KeyError:
        raise FlashError(f"unknown chip {chip!r}; supported: {', '.join(CHIP_TABLE)}") from None


def flash_offsets(chip: str) -> dict[str, int]:
    return {"bootloader": chip_info(chip).bootloader, "partitions": PARTITIONS, "boot_app0": BOOT_APP0, "app": APP}


def image_parts(chip: str, images: FlashImages) -> list[tuple[int, Path]]:
    """(offset, file) pairs in flash order; boot_app0 only when the build has one."""
    off = flash_offsets(chip)
    parts = [(off["bootloader"], images.bootloader), (off["partitions"], images.partitions)]
    if images.boot_app0 is not None:
        parts.append((off["boot_app0"], images.boot_app0))
    parts.append((off["app"], images.app))
    return parts


def _addr_files(parts: Sequence[tuple[int, Path]]) -> list[str]:
    return [a for off, path in parts for a in (f"{off:#x}", str(path))]


def merge_bin_args(chip: str, parts: Sequence[tuple[int, Path]], out: Path, *,
                   esptool: Sequence[str] = ("esptool",)) -> list[str]:
    """argv for one image flashed at 0x0 (padding included), handy to hand to someone without PlatformIO."""
    chip_info(chip)
    return [*esptool, "--chip", chip, "merge-bin", "-o", str(out), *_addr_files(parts)]


def write_flash_args(chip: str, port: str, parts: Sequence[tuple[int, Path]], *, baud: int = DEFAULT_BAUD,
                     esptool: Sequence[str] = ("esptool",)) -> list[str]:
    """argv for write-flash; --chip makes esptool itself refuse a different chip as a second line of defence."""
    chip_info(chip)
    return [*esptool, "--chip", chip, "--port", port, "--baud", str(baud), "--before", "default-reset",
            "--after", "hard-reset", "write-flash", *_addr_files(parts)]


# ------------------------------------------------------------------------------------------ tools and port


def find_esptool(path: str | None = None, extra_dirs: Sequence[Path] | None = None) -> list[str]:
    """The esptool command: on PATH first, then next to this Python (a venv that was not activated)."""
    found = shutil.which("esptool", path=path)
    if found:
        return [found]
    for d in extra_dirs if extra_dirs is not None else (Path(sys.executable).parent,):
        candidate = d / "esptool"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    raise FlashError("esptool is not installed: run `.venv/bin/pip install -e '.[boards]'` (esptool 5.x) "
                     "or `pip install esptool`, then retry")


def find_pio(path: str | None = None) -> str | None:
    for name in ("pio", "platformio"):
        found = shutil.which(name, path=path)
        if found:
            return found
    core = Path(os.environ.get("PLATFORMIO_CORE_DIR") or Path.home() / ".platformio")
    candidate = core / "penv" / "bin" / "pio"
    return str(candidate) if candidate.is_file() else None


def check_port(port: str) -> None:
    """Fail early and clearly before esptool's own (longer, vaguer) attempts; never opens the port."""
    try:
        os.stat(port)
    except FileNotFoundError:
        raise FlashError(_no_port(port)) from None
    except PermissionError:
        raise FlashError(_no_permission(port)) from None
    if not os.access(port, os.R_OK | os.W_OK):
        raise FlashError(_no_permission(port))


def _no_port(port: str) -> str:
    return (f"serial port {port} does not exist: plug the board in with a USB data cable (charge-only cables "
            "have no data lines) and find its port with `ls /dev/ttyUSB* /dev/ttyACM*`")


def _no_permission(port: str) -> str:
    return (f"permission denied on {port}: add your user to the dialout group (`sudo usermod -aG dialout $USER`), "
            "then log out and in again")


# -------------------------------------------------------------------------------------------- running esptool


def _translate(output: str, port: str | None, returncode: int) -> FlashError:
    m = re.search(r"This chip is (ESP[\w-]+), not (ESP[\w-]+)", output)
    if m:
        return FlashError(f"wrong chip: the board on {port} is an {m.group(1)}, but the firmware is for an "
                          f"{m.group(2)}; choose the profile made for this board or plug in the right board")
    if port and re.search(r"Errno 13\]|Permission denied", output):
        return FlashError(_no_permission(port))
    if port and re.search(r"Errno 2\]|No such file or directory: '/dev", output):
        return FlashError(_no_port(port))
    if re.search(r"Errno 16\]|port is busy|Device or resource busy|Resource temporarily unavailable", output):
        return FlashError(f"{port} is busy: stop whatever holds it (a serial monitor, `hearth run` talking to "
                          "the board, ModemManager) and retry")
    if re.search(r"Failed to connect|No serial data received|Wrong boot mode", output):
        return FlashError(f"no answer from the bootloader on {port}: hold BOOT, tap EN/RST, release BOOT and "
                          "retry; check the cable is a data cable")
    tail = " | ".join(line.strip() for line in output.strip().splitlines()[-4:])
    return FlashError(f"esptool failed (exit {returncode}): {tail or 'no output'}")


def run_esptool(argv: Sequence[str], *, port: str | None = None, progress: Progress | None = print,
                timeout: float | None = None) -> str:
    """Run esptool, pass every output line to ``progress`` as it comes, return the output or raise FlashError."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1")
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    except FileNotFoundError:
        raise FlashError(f"cannot run {argv[0]}: esptool is not installed; run "
                         "`.venv/bin/pip install -e '.[boards]'`") from None
    except PermissionError as exc:
        raise FlashError(f"cannot run {argv[0]}: {exc}; is it executable?") from exc
    assert proc.stdout is not None
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        proc.kill()  # closes its end of the pipe, so the read loop below ends too

    timer = threading.Timer(timeout, expire) if timeout is not None else None
    if timer is not None:
        timer.start()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a UTF-8 character may straddle two reads
    chunks: list[str] = []
    pending = ""
    try:
        while True:
            data = os.read(proc.stdout.fileno(), 4096)  # whatever is there: progress bars arrive as they are drawn
            if not data:
                break
            text = decoder.decode(data)
            chunks.append(text)
            *lines, pending = re.split(r"[\r\n]", pending + text)
            for line in lines:
                if line.strip() and progress is not None:
                    progress(line.rstrip())
        if pending.strip() and progress is not None:
            progress(pending.rstrip())
        rc = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
        proc.stdout.close()
    if timed_out.is_set():
        raise FlashError(f"esptool did not finish within {timeout:.0f} s on {port}; unplug and replug the "
                         "board and retry")
    output = "".join(chunks)
    if rc != 0:
        raise _translate(output, port, rc)
    return output


def _parse_chip(output: str) -> str | None:
    m = re.search(r"Connected to (ESP[\w-]+) on", output) or re.search(r"Detecting chip type\.*\s*(ESP[\w-]+)",
                                                                      output)
    return m.group(1).lower().replace("-", "") if m else None


def detect_chip(port: str, *, esptool: Sequence[str] | None = None, progress: Progress | None = None,
                timeout: float = 60.0) -> str:
    """The chip on ``port`` in profile spelling (``esp32s3``), from ``esptool --port P chip-id``."""
    check_port(port)
    cmd = list(esptool) if esptool is not None else find_esptool()
    output = run_esptool([*cmd, "--port", port, "chip-id"], port=port, progress=progress, timeout=timeout)
    chip = _parse_chip(output)
    if chip is None:
        raise FlashError(f"esptool talked to {port} but did not say which chip it is; is esptool 5.x installed? "
                         f"Output: {' | '.join(output.strip().splitlines()[-3:])}")
    return chip


def read_board_id(port: str, *, esptool: Sequence[str] | None = None, timeout: float = 60.0) -> str:
    """The board id of docs/protocol.md: the Wi-Fi MAC as 12 lower-case hex digits (stable across reflashes)."""
    check_port(port)
    cmd = list(esptool) if esptool is not None else find_esptool()
    output = run_esptool([*cmd, "--port", port, "read-mac"], port=port, progress=None, timeout=timeout)
    m = re.search(r"MAC:\s*((?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2})", output)
    if not m:
        raise FlashError(f"esptool read-mac on {port} printed no MAC address")
    return m.group(1).replace(":", "").lower()


# --------------------------------------------------------------------------------------- build, check, flash


def image_chip(data: bytes) -> str | None:
    """The chip a merged image was built for (bootloader header at that chip's offset), or None if not merged."""
    if len(data) < APP or data[PARTITIONS:PARTITIONS + 2] != PARTITION_MAGIC:
        return None
    for c in CHIP_TABLE.values():
        b = c.bootloader
        if data[b] == IMAGE_MAGIC and int.from_bytes(data[b + 12:b + 14], "little") == c.image_id:
            return c.name
    return None


def check_image(path: Path, chip: str) -> None:
    """Refuse a file that is not a merged image for ``chip``: an app-only or other-chip image bricks the boot."""
    info = chip_info(chip)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FlashError(f"image {path} does not exist; build one with `pio run` + merge-bin or omit --image") from None
    except OSError as exc:
        raise FlashError(f"cannot read image {path}: {exc}") from exc
    found = image_chip(data)
    if found is None:
        boot = info.bootloader
        raise FlashError(f"{path} is not a merged flash image (no bootloader at {boot:#x} and partition table at "
                         f"{PARTITIONS:#x} for {chip}); make one with `esptool --chip {chip} merge-bin -o merged.bin "
                         f"{boot:#x} bootloader.bin {PARTITIONS:#x} partitions.bin {BOOT_APP0:#x} boot_app0.bin "
                         f"{APP:#x} firmware.bin`")
    if found != chip:
        raise FlashError(f"{path} was built for {found}, not {chip}; build it for this board's profile")


def _boot_app0() -> Path | None:
    core = Path(os.environ.get("PLATFORMIO_CORE_DIR") or Path.home() / ".platformio")
    candidate = core / "packages" / "framework-arduinoespressif32" / "tools" / "partitions" / "boot_app0.bin"
    return candidate if candidate.is_file() else None


def build_firmware(profile: Profile, *, firmware_dir: Path = FIRMWARE_DIR, progress: Progress = print,
                   pio: str | None = None) -> FlashImages:
    """``pio run -e <pio_env>`` in firmware/, returning the images it produced."""
    pio = pio or find_pio()
    if pio is None:
        raise FlashError("PlatformIO (`pio`) is not installed, so the firmware cannot be built: "
                         "`pip install platformio` (or install the VS Code PlatformIO extension), or pass "
                         "--image with a prebuilt merged image")
    if not (firmware_dir / "platformio.ini").is_file():
        raise FlashError(f"{firmware_dir}/platformio.ini is missing; run from a full checkout or pass --image")
    progress(f"building {profile.pio_env} with PlatformIO (first build downloads the toolchain)")
    proc = subprocess.run([pio, "run", "-e", profile.pio_env, "-d", str(firmware_dir)], check=False)
    if proc.returncode != 0:
        raise FlashError(f"`pio run -e {profile.pio_env}` failed (exit {proc.returncode}); its output above says "
                         "why; check that firmware/platformio.ini has an [env:" + profile.pio_env + "] section")
    build = firmware_dir / ".pio" / "build" / profile.pio_env
    images = FlashImages(build / "bootloader.bin", build / "partitions.bin", build / "firmware.bin", _boot_app0())
    for p in (images.bootloader, images.partitions, images.app):
        if not p.is_file():
            raise FlashError(f"PlatformIO finished but {p} is missing; run `pio run -e {profile.pio_env} -t clean`")
    if images.boot_app0 is None:
        progress("note: boot_app0.bin not found in the PlatformIO packages; flashing without it")
    return images


def flash_board(profile: Profile | str, port: str, *, image: Path | str | None = None, progress: Progress = print,
                baud: int = DEFAULT_BAUD) -> None:
    """Check port, tool and chip, build (or take ``image``, a merged image), then write and verify the flash.

    ``profile`` is a loaded Profile or a profile name/path. esptool verifies what it wrote (esptool 5.x default).
    """
    if isinstance(profile, str):
        profile = load_profile(profile)
    image = Path(image) if image is not None else None
    info = chip_info(profile.chip)
    check_port(port)
    esptool = find_esptool()
    if image is not None:
        check_image(image, profile.chip)
    progress(f"checking the chip on {port}")
    found = detect_chip(port, esptool=esptool, progress=None)
    if found != profile.chip:
        raise FlashError(f"wrong chip: profile {profile.name} is for {profile.chip} but the board on {port} is "
                         f"{found}; choose a profile for {found} (`python -m edge.boards list`) or plug in the "
                         f"right board")
    if image is not None:
        parts: list[tuple[int, Path]] = [(0x0, image)]
    else:
        parts = image_parts(profile.chip, build_firmware(profile, progress=progress))
    progress(f"flashing {profile.name} ({info.label}) on {port}")
    run_esptool(write_flash_args(profile.chip, port, parts, baud=baud, esptool=esptool), port=port,
                progress=progress)
    progress(f"done: {profile.name} flashed on {port}; the board restarts and sends hello")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge.flash``: the same as ``hearth boards flash``, for scripts/flash.sh before the CLI has it."""
    import argparse

    from edge.errors import HearthError

    p = argparse.ArgumentParser(prog="python -m edge.flash", description="Build and flash a board profile.")
    p.add_argument("--board", required=True, help="profile name (relay-board) or path to a .toml")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    p.add_argument("--image", type=Path, default=None, help="prebuilt merged image (skips the PlatformIO build)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    args = p.parse_args(argv)
    try:
        flash_board(args.board, args.port, image=args.image, baud=args.baud)
    except HearthError as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
