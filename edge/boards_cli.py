"""`hearth boards ...`: list, flash, provision, inspect and command boards (kept out of cli.py for size)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import os
import sys
from typing import Any

from edge.errors import HearthError
from edge.settings import Settings


def _ago(ts: float) -> str:
    if not ts:
        return "never"
    s = dt.datetime.now().timestamp() - ts
    return f"{s:.0f} s ago" if s < 120 else f"{s / 60:.0f} min ago" if s < 7200 else f"{s / 3600:.1f} h ago"


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    from edge.registry import Registry

    reg = Registry(settings.storage.database_path)
    try:
        boards = reg.boards()
        if args.json:
            for b in boards:
                ents = [{"id": e.id, "kind": e.info.kind, "name": e.info.name, "area": e.info.area,
                         "state": e.state, "sensitive": e.info.sensitive} for e in reg.entities(b.id)]
                print(json.dumps({"board": b.id, "profile": b.profile, "fw": b.fw, "link": b.link,
                                  "status": b.status, "last_seen": b.last_seen, "entities": ents}))
            return 0
        if not boards:
            print("No boards yet. Plug one in over USB (with `hearth run` running) or provision one: "
                  "hearth boards provision --port /dev/ttyUSB0 ...")
            return 0
        for b in boards:
            print(f"{b.id}  {b.profile or '?'}  fw {b.fw or '?'}  {b.link}  {b.status}  last seen {_ago(b.last_seen)}")
            for e in reg.entities(b.id):
                unit = f" {e.info.unit}" if e.info.unit and e.state is not None else ""
                flags = " (confirm)" if e.info.sensitive else ""
                print(f"    {e.id:<16} {e.info.kind:<12} {e.info.name} [{e.info.area}]: "
                      f"{'-' if e.state is None else e.state}{unit}{flags}")
        return 0
    finally:
        reg.close()


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from edge.registry import Registry

    reg = Registry(settings.storage.database_path)
    try:
        for c in reg.commands(args.n):
            if args.json:
                print(json.dumps(c))
                continue
            when = dt.datetime.fromtimestamp(c["ts"]).strftime("%Y-%m-%d %H:%M:%S")
            who = f"{c['source']}" + (f" turn {c['turn_id']}" if c["turn_id"] else "")
            print(f"{when}  {who:<14} {c['board']}.{c['entity']} {c['action']} {c['value']}: {c['status']} "
                  f"({c['result']}, {c['attempts']} attempt(s), {c['latency_ms'] or 0:.0f} ms)")
        return 0
    finally:
        reg.close()


def cmd_profiles(settings: Settings, args: argparse.Namespace) -> int:
    from edge.boards import list_profiles, load_profile

    for name in list_profiles():
        p = load_profile(name)
        print(f"{p.name:<20} {p.chip:<8} {p.title}  ({len(p.entities)} entities)")
    return 0


def cmd_wiring(settings: Settings, args: argparse.Namespace) -> int:
    from edge.boards import load_profile

    print(load_profile(args.board).wiring_markdown())
    return 0


def cmd_ports(settings: Settings, args: argparse.Namespace) -> int:
    from serial.tools import list_ports

    from edge.serial_link import KNOWN_USB_IDS

    ports = list(list_ports.comports())
    if not ports:
        print("No serial ports. Plug the board in with a data-capable USB cable; on Linux check `dmesg | tail`.")
    for p in ports:
        chip = KNOWN_USB_IDS.get((p.vid, p.pid), "") if p.vid is not None else ""
        print(f"{p.device:<20} {chip or p.description}{'  <- likely an ESP32 board' if chip else ''}")
    return 0


def cmd_flash(settings: Settings, args: argparse.Namespace) -> int:
    from edge.flash import flash_board

    flash_board(args.board, args.port, image=args.image)
    return 0


def cmd_provision(settings: Settings, args: argparse.Namespace) -> int:
    from edge.provision import provision

    wifi_password = os.environ.get("HEARTH_WIFI_PASSWORD", "")
    if not wifi_password:
        if not sys.stdin.isatty():
            raise HearthError("no Wi-Fi password: set HEARTH_WIFI_PASSWORD (or run in a terminal to be asked)")
        wifi_password = getpass.getpass(f"Wi-Fi password for {args.ssid}: ")
    host = args.broker or settings.boards.mqtt_host
    if args.ssid and not args.broker and host in ("", "127.0.0.1", "localhost"):
        raise HearthError("give --broker with this machine's LAN address: [boards] mqtt_host is "
                          f"{host or 'empty'}, which a board on Wi-Fi cannot reach")
    r = provision(settings, args.port, ssid=args.ssid, wifi_password=wifi_password, broker_host=host,
                  broker_port=args.broker_port, timeout=args.timeout)
    print(f"Provisioned board {r.board} (profile {r.profile or '?'}): MQTT user {r.username}.")
    print(f"Broker files updated: {r.password_file}, {r.acl_file}. Reload Mosquitto to apply: "
          "sudo systemctl reload mosquitto")
    return 0


def cmd_broker_setup(settings: Settings, args: argparse.Namespace) -> int:
    from edge import broker_auth
    from edge.provision import broker_files

    pw, acl = broker_files(settings)
    creds = broker_auth.provision_agent(pw, acl, settings.boards.site, username=args.username)
    print(f"Agent account {creds.username!r} written to {pw} and {acl}.")
    print("\n1) Mosquitto config (e.g. /etc/mosquitto/conf.d/hearth.conf), then sudo systemctl restart mosquitto:\n")
    print(broker_auth.mosquitto_conf_snippet(pw, acl))
    print("2) In hearth.toml (never commit it):\n")
    print(f'[boards]\nmqtt_username = "{creds.username}"\nmqtt_password = "{creds.password}"')
    return 0


def cmd_send(settings: Settings, args: argparse.Namespace) -> int:
    from edge.house import House

    try:
        value = float(args.value) if args.value is not None else None
    except ValueError:
        raise HearthError(f"value {args.value!r} is not a number: e.g. `hearth boards send BOARD kitchen_light set 1`"
                          ) from None

    async def go() -> Any:
        # its own client id and no availability messages: the running agent's broker session is left alone
        house = House(settings, client_id=f"hearth-cli-{os.getpid()}", announce=False)
        await house.start()
        try:
            await asyncio.sleep(args.settle)  # let the links connect and the boards say hello
            return await house.hub.command(args.board_id, args.entity, args.action, value, source="cli")
        finally:
            await house.stop()

    r = asyncio.run(go())
    print(json.dumps({"ok": r.ok, "value": r.value, "error": r.error, "attempts": r.attempts,
                      "latency_ms": round(r.latency_ms, 1)}))
    return 0 if r.ok else 1


def add_parser(sub: Any) -> None:
    sp = sub.add_parser("boards", help="ESP32 boards: list, flash, provision, wiring, send a command")
    bsub = sp.add_subparsers(dest="boards_command", required=True, metavar="ACTION")
    p = bsub.add_parser("list", help="known boards, their link, status and entity states")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = bsub.add_parser("audit", help="recent device commands: who asked, what was sent, the result")
    p.add_argument("-n", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)
    bsub.add_parser("profiles", help="bundled board profiles (hardware/boards)").set_defaults(func=cmd_profiles)
    p = bsub.add_parser("wiring", help="pin table and wiring notes for a profile")
    p.add_argument("--board", required=True)
    p.set_defaults(func=cmd_wiring)
    bsub.add_parser("ports", help="serial ports, marking likely ESP32 boards").set_defaults(func=cmd_ports)
    p = bsub.add_parser("flash", help="build (PlatformIO) and flash (esptool) a profile onto a board")
    p.add_argument("--board", required=True, help="profile name, e.g. relay-board")
    p.add_argument("--port", required=True, help="e.g. /dev/ttyUSB0")
    p.add_argument("--image", help="a prebuilt merged image instead of building")
    p.set_defaults(func=cmd_flash)
    p = bsub.add_parser("provision", help="give a USB-attached board Wi-Fi, broker and its own MQTT account")
    p.add_argument("--port", required=True)
    p.add_argument("--ssid", required=True, help="Wi-Fi network (password asked, or $HEARTH_WIFI_PASSWORD)")
    p.add_argument("--broker", help="broker address the board connects to (this machine's LAN address)")
    p.add_argument("--broker-port", type=int)
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(func=cmd_provision)
    p = bsub.add_parser("broker-setup", help="create the agent's broker account and print the Mosquitto config")
    p.add_argument("--username", default="agent")
    p.set_defaults(func=cmd_broker_setup)
    p = bsub.add_parser("send", help="send one command and wait for the ack (starts the links briefly)")
    p.add_argument("board_id")
    p.add_argument("entity")
    p.add_argument("action", choices=["set", "toggle", "get"])
    p.add_argument("value", nargs="?")
    p.add_argument("--settle", type=float, default=1.0, help="seconds to let the links connect first")
    p.set_defaults(func=cmd_send)
