"""The `trader` command.

Each subcommand lives in its own module under `trader.commands`, imported only when it runs, so that
`trader --help` and `trader order sign` stay fast. A command module exposes:

    HELP: str
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int          # the process exit status
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from trader.errors import ConfigError

#: subcommand name -> module in trader.commands
COMMANDS: dict[str, str] = {
    "order": "trader.commands.order",
}


class _CommandModule(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(module: str) -> _CommandModule:
    return cast(_CommandModule, importlib.import_module(module))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trader", description="A trading engine for the Polymarket CLOB (paper mode by default)."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = _load(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return _load(args._module).run(args)
    except ConfigError as exc:
        print(f"trader: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
