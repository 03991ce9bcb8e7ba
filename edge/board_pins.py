"""GPIO facts per chip, used to refuse pins that cannot work before anything is built or wired.

Kept apart from edge.boards because it is reference data that changes with each chip added, not logic. The
reasons are written for the person choosing a pin: they end up verbatim in error messages and wiring notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from edge.errors import BoardProfileError


@dataclass(frozen=True)
class Chip:
    """What a chip's GPIO matrix allows; the reasons end up in error messages, so they say why."""

    name: str
    max_gpio: int
    missing: frozenset[int]  # numbers inside 0..max_gpio with no GPIO behind them
    reserved: Mapping[int, str]  # pins the module or the serial link already uses
    input_only: frozenset[int] = frozenset()
    no_pullup: frozenset[int] = frozenset()
    caution: Mapping[int, str] = field(default_factory=dict)  # usable, but read this first (strapping, PSRAM)


def _same(pins: range | tuple[int, ...], why: str) -> dict[int, str]:
    return {p: why for p in pins}


CHIPS: dict[str, Chip] = {
    "esp32": Chip(
        "esp32", 39, frozenset({20, 24, 28, 29, 30, 31}),
        {**_same(range(6, 12), "wired to the SPI flash inside the module (using it crashes the board)"),
         1: "UART0 TX: the USB serial link and flashing use it",
         3: "UART0 RX: the USB serial link and flashing use it"},
        input_only=frozenset(range(34, 40)), no_pullup=frozenset(range(34, 40)),
        caution={0: "strapping pin (BOOT): must not be held low at reset",
                 2: "strapping pin: must be low or floating at reset for flashing to work",
                 5: "strapping pin: keep it high or floating at reset",
                 12: "strapping pin (MTDI): a pull-up at reset selects 1.8 V flash and the board will not boot",
                 15: "strapping pin (MTDO): low at reset silences the boot log"}),
    "esp32s3": Chip(
        "esp32s3", 48, frozenset(range(22, 26)),
        {**_same(range(26, 33), "wired to the SPI flash/PSRAM inside the module"),
         19: "native USB D-: the USB serial link and flashing use it",
         20: "native USB D+: the USB serial link and flashing use it",
         43: "UART0 TX: the USB-UART bridge uses it", 44: "UART0 RX: the USB-UART bridge uses it"},
        caution={0: "strapping pin (BOOT): must not be held low at reset",
                 3: "strapping pin (JTAG source): keep it floating at reset",
                 45: "strapping pin (flash voltage): a pull-up at reset selects 1.8 V flash",
                 46: "strapping pin: must be low or floating at reset",
                 **_same(range(33, 38), "used by octal PSRAM on N8R8/N16R8 modules: free only without octal PSRAM")}),
    "esp32c3": Chip(
        "esp32c3", 21, frozenset(),
        {**_same(range(12, 18), "wired to the SPI flash inside the module"),
         18: "native USB D-: the USB serial link and flashing use it",
         19: "native USB D+: the USB serial link and flashing use it",
         20: "UART0 RX: the serial console uses it", 21: "UART0 TX: the serial console uses it"},
        caution={2: "strapping pin: must be high or floating at reset",
                 8: "strapping pin: must be high or floating at reset (ROM download needs it high)",
                 9: "strapping pin (BOOT): must not be held low at reset"}),
}


def check_pin(chip: Chip, pin: int, where: str, *, output: bool) -> None:
    if pin < 0 or pin > chip.max_gpio or pin in chip.missing:
        raise BoardProfileError(
            f"{where}: GPIO{pin} does not exist on {chip.name} (valid: 0..{chip.max_gpio}"
            + (f" except {', '.join(map(str, sorted(chip.missing)))})" if chip.missing else ")")
        )
    if pin in chip.reserved:
        raise BoardProfileError(f"{where}: GPIO{pin} cannot be used on {chip.name}: {chip.reserved[pin]}; "
                                "pick another pin")
    if output and pin in chip.input_only:
        raise BoardProfileError(f"{where}: GPIO{pin} is input-only on {chip.name} and cannot drive an output; "
                                "use it for a button or contact, or pick another pin")
