"""The `trader` command.

Each subcommand lives in its own module under `trader.commands`, imported only when it is the command being run,
so `trader --help` and `trader order sign` start fast. A command module exposes:

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

#: subcommand -> (module, one-line help). Keep in step with the README's command table.
COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("trader.commands.db", "database tools: `trader db migrate` applies the schema migrations"),
    "run": ("trader.commands.run", "run the engine: paper trading against the built-in simulated venue by default"),
    "order": ("trader.commands.order", "order tools: `trader order sign` signs a CLOB V2 order read from stdin"),
    "sim": ("trader.commands.sim", "run the simulated Polymarket venue on loopback"),
    "watch": ("trader.commands.watch", "stream chosen markets and print top of book and book health"),
    "stop": ("trader.commands.stop", "emergency-stop a running engine (or --resume it) through its HTTP server"),
    "reconcile": ("trader.commands.reconcile", "compare the store with the venue for our key; --fix the store"),
    "flatten": ("trader.commands.flatten", "cancel all our orders, then sell every position back into the book"),
    "doctor": ("trader.commands.doctor", "check Python, settings, database, Redis, venue endpoints, clock and keys"),
}


class _CommandModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported to define its arguments."""
    parser = argparse.ArgumentParser(
        prog="trader", description="A trading engine for the Polymarket CLOB (paper mode by default)."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            cast(_CommandModule, importlib.import_module(module_name)).add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    module = cast(_CommandModule, importlib.import_module(COMMANDS[args.command][0]))
    try:
        return module.run(args)
    except ConfigError as exc:
        print(f"trader: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
