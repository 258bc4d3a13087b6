"""The `mam` command line: parse, delegate to one command module, render text or JSON.

Exit codes (errors.py): 0 ok, 1 failed (a check, or a command mam ran), 2 usage, 3 a tool is
missing, 4 a file exists that mam will not overwrite, 6 the roster is invalid; `mam agent send`
passes send-message.sh's own code on (5: message too large).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import EXIT_FAILED, EXIT_USAGE, MamError, UsageError

SCHEMA_VERSION = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit 2 with a usage block
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--roster", type=Path, default=argparse.SUPPRESS,
                        help="the roster file (default: ~/.config/mam/fleet.json)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON document on stdout")
    common.add_argument("--manager", choices=("auto", "systemd", "launchd", "direct"),
                        default=argparse.SUPPRESS,
                        help="who runs the holder and agents (default: auto)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(prog="mam", parents=[common],
                     description="Run this machine's fleet of coding agents (docs/fleet.md).")
    groups = parser.add_subparsers(dest="group", metavar="fleet|agent|broker")
    groups.required = True
    fleet = groups.add_parser("fleet", help="the whole fleet").add_subparsers(dest="command")
    fleet.required = True
    init = fleet.add_parser("init", parents=[common], help="write an example roster")
    init.add_argument("--profile", choices=("minimal", "team"), default="minimal")
    for verb, text in (("start", "start the holder and the agents (or one)"),
                       ("stop", "stop one agent, or all and the holder"),
                       ("restart", "restart one agent, or each in turn")):
        fleet.add_parser(verb, parents=[common], help=text).add_argument("agent", nargs="?")
    fleet.add_parser("status", parents=[common], help="holder and agents, running or not")
    verify = fleet.add_parser("verify", parents=[common], help="prove the holder pattern live")
    verify.add_argument("--agent", help="the agent to restart for the check (default: first)")
    adopt = fleet.add_parser("adopt", parents=[common],
                             help="propose a roster from the default tmux server's sessions")
    adopt.add_argument("--write", type=Path, help="save the proposal as a new roster file")
    agent = groups.add_parser("agent", help="one agent").add_subparsers(dest="command")
    agent.required = True
    agent.add_parser("roster", parents=[common], help="list the roster's agents")
    agent.add_parser("status", parents=[common], help="is it running").add_argument(
        "agent", nargs="?")
    send = agent.add_parser("send", parents=[common], help="deliver a message to its pane")
    send.add_argument("agent")
    source = send.add_mutually_exclusive_group()
    source.add_argument("-m", "--message")
    source.add_argument("-f", "--file", type=Path)
    agent.add_parser("reset", parents=[common], help="clear it for the next task").add_argument(
        "agent")
    tail = agent.add_parser("tail", parents=[common], help="print the end of its pane")
    tail.add_argument("agent")
    tail.add_argument("-n", "--lines", type=int, default=40)
    broker = groups.add_parser("broker", help="the private MQTT broker").add_subparsers(
        dest="command")
    broker.required = True
    binit = broker.add_parser("init", parents=[common], help="CA, certificate, users, unit")
    binit.add_argument("--host", action="append", default=[], dest="hosts",
                       help="a name or address the broker is reached by (repeatable)")
    binit.add_argument("--user", action="append", default=[], dest="users",
                       help="an MQTT user to create (repeatable; default: $USER)")
    return parser


def _read_message(args: argparse.Namespace) -> str:
    if args.message is not None:
        return str(args.message)
    if args.file is not None:
        try:
            return Path(args.file).read_text(errors="replace")
        except OSError as exc:
            raise UsageError(f"cannot read {args.file} ({exc.strerror})") from None
    if sys.stdin.isatty():
        raise UsageError("no message: give -m MSG or -f FILE, or pipe it on stdin")
    return sys.stdin.read()


def dispatch(args: argparse.Namespace, fleet: Any) -> Any:
    from . import agent
    from . import fleet as fleet_cmds

    key = (args.group, args.command)
    if key == ("fleet", "init"):
        return fleet_cmds.init(fleet, args.profile)
    if key == ("fleet", "start"):
        return fleet_cmds.start(fleet, args.agent)
    if key == ("fleet", "stop"):
        return fleet_cmds.stop(fleet, args.agent)
    if key == ("fleet", "restart"):
        return fleet_cmds.restart(fleet, args.agent)
    if key == ("fleet", "status"):
        return fleet_cmds.status(fleet)
    if key == ("fleet", "verify"):
        from .verify import verify

        return verify(fleet, args.agent)
    if key == ("fleet", "adopt"):
        from .adopt import adopt

        return adopt(fleet, args.write)
    if key == ("agent", "roster"):
        return agent.roster(fleet)
    if key == ("agent", "status"):
        return agent.status(fleet, args.agent)
    if key == ("agent", "send"):
        return agent.send(fleet, args.agent, _read_message(args))
    if key == ("agent", "reset"):
        return agent.reset(fleet, args.agent)
    if key == ("agent", "tail"):
        if args.lines < 1:
            raise UsageError("-n takes a positive number of lines")
        return agent.tail(fleet, args.agent, args.lines)
    from .broker import broker_init

    return broker_init(fleet, args.hosts, args.users)


def main(argv: Sequence[str] | None = None, runner: Any = None) -> int:
    from .context import Fleet
    from .paths import fleet_paths
    from .runner import SubprocessRunner

    as_json = "--json" in (argv or [])
    command = "mam"
    try:
        args = build_parser().parse_args(list(argv or []))
        as_json = bool(getattr(args, "json", False))
        command = f"{args.group} {args.command}"
        fleet = Fleet(fleet_paths(), runner or SubprocessRunner(), dict(os.environ),
                      getattr(args, "roster", None), getattr(args, "manager", "auto"))
        report = dispatch(args, fleet)
    except MamError as exc:
        return _fail(command, exc.code, str(exc), as_json)
    except KeyboardInterrupt:
        return _fail(command, 130, "interrupted", as_json)
    if as_json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "command": command,
                          "ok": report.ok, **report.data}, indent=2, sort_keys=True))
    else:
        for line in report.lines:
            print(line)
    return 0 if report.ok else EXIT_FAILED


def _fail(command: str, code: int, message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "command": command, "ok": False,
                          "error": {"code": code, "message": message}}, indent=2))
    print(f"mam: error: {message}", file=sys.stderr)
    return code if code != 0 else EXIT_USAGE
