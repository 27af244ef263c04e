"""The `trader` command.

Each subcommand lives in its own module under `trader.commands`, imported only when it is the command being run,
so `trader --help` and `trader order sign` start fast. A command module exposes:

    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int          # the process exit status

A command reports an expected failure by raising: `ConfigError` (usage, settings, a path or port that cannot be
used; exit 2) or any other `TraderError` such as `RuntimeFailure` (a server down or refusing; exit 1). `main` prints
it as ONE line on stderr, `trader: <cause>: <fix>`, also when it arrives inside Trio's exception groups; the
traceback only with `--debug`. Anything else is a bug and keeps its traceback. Ctrl+C is exit 130 ("interrupted"),
except for the commands that run until Ctrl+C (`sim`, `watch`), which it stops: exit 0 (`run` stops by its own
signal handling: a drain, exit 0; a second Ctrl+C, 130).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn, Protocol, cast

from trader import __version__
from trader.errors import ConfigError, TraderError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: subcommand -> (module, one-line help). Keep in step with the README's command table.
COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("trader.commands.db", "database tools: `trader db migrate` applies the schema migrations"),
    "run": ("trader.commands.run", "run the engine: paper trading against the built-in simulated venue by default"),
    "order": ("trader.commands.order", "order tools: `trader order sign` signs a CLOB V2 order read from stdin"),
    "sim": ("trader.commands.sim", "run the simulated Polymarket venue on loopback"),
    "watch": ("trader.commands.watch", "stream chosen markets and print top of book and book health"),
    "status": ("trader.commands.status", "how a running engine is doing: state, halt reason, money, refusals"),
    "stop": ("trader.commands.stop", "emergency-stop a running engine (or --resume it) through its HTTP server"),
    "reconcile": ("trader.commands.reconcile", "compare the store with the venue for our key; --fix the store"),
    "flatten": ("trader.commands.flatten", "cancel all our orders, then sell every position back into the book"),
    "pnl": ("trader.commands.pnl", "realized PnL by day and by market from the store (--since/--until, --csv)"),
    "trades": ("trader.commands.trades", "our fills from the store: prices, fees, settlement status (--csv)"),
    "report": ("trader.commands.report", "write a self-contained HTML report: equity, daily PnL, per strategy"),
    "doctor": ("trader.commands.doctor", "check Python, settings, database, Redis, venue endpoints, clock and keys"),
    "record": ("trader.commands.record", "record the market channel of the selected markets to compressed files"),
    "replay": ("trader.commands.replay", "serve a recording on the simulated venue's WebSocket and REST"),
    "backtest": ("trader.commands.backtest", "run the strategies over a recording or the quotes data, with a report"),
}

#: The commands that run until Ctrl+C: it is how they are stopped, so it exits 0.
STOPPED_BY_CTRL_C = frozenset({"sim", "watch", "record", "replay"})

EPILOG = """\
exit status: 0 done; 1 a failure at run time (a server down or refusing); 2 bad usage or configuration (an
argument, a setting, a path or port that cannot be used); 130 interrupted (Ctrl+C; `sim` and `watch` exit 0, as
does `run` after its drain). Errors are one line on stderr; --debug adds the traceback."""


class _CommandModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class ArgumentParser(argparse.ArgumentParser):
    """Usage mistakes as one line, `trader: <what is wrong> (see `trader <command> --help`)`, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"trader: {message} (see `{self.prog} --help`)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported to define its arguments."""
    parser = ArgumentParser(
        prog="trader",
        description="A trading engine for the Polymarket CLOB (paper mode by default).",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"trader {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback behind an error message")
    # `--debug` is also taken right after the command (`trader run --debug`), without overriding the global one
    debug_too = ArgumentParser(add_help=False)
    debug_too.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text, parents=[debug_too])
        if name == command:
            cast(_CommandModule, importlib.import_module(module_name)).add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args: argparse.Namespace | None = None
    try:
        parser = build_parser(command if command in COMMANDS else None)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_OK
        module = cast(_CommandModule, importlib.import_module(COMMANDS[args.command][0]))
        return module.run(args)
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # sorted by `report`: an expected failure is one line, a bug re-raises
        debug = args.debug if args is not None else "--debug" in argv
        return report(exc, command=args.command if args is not None else command, debug=debug)


def report(exc: BaseException, *, command: str | None, debug: bool) -> int:
    """Print an expected failure as one line (and its traceback with `debug`); the exit status. A bug re-raises."""
    explained = explain(exc)
    if explained is None:
        raise exc
    status, message = explained
    if status == EXIT_INTERRUPTED and command in STOPPED_BY_CTRL_C:
        status, message = EXIT_OK, ""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if message:
        print(f"trader: {message}", file=sys.stderr)
    return status


def explain(exc: BaseException) -> tuple[int, str] | None:
    """(exit status, message) for an expected failure, looking inside exception groups; None for a bug."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [leaf for leaf in _leaves(exc) if not _is_cancelled(leaf)]
        if any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            return EXIT_INTERRUPTED, "interrupted"
        explained = [explain(leaf) for leaf in leaves]
        if not explained or any(e is None for e in explained):
            return None
        statuses = [status for status, _ in cast(list[tuple[int, str]], explained)]
        messages = dict.fromkeys(message for _, message in cast(list[tuple[int, str]], explained))
        return max(statuses), "; ".join(messages)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(exc, ConfigError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, TraderError):
        return EXIT_FAILED, str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_FAILED, f"{where}{exc.strerror or exc}"
    return None


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves


def _is_cancelled(exc: BaseException) -> bool:
    trio = sys.modules.get("trio")  # only a command that imported Trio can have raised its Cancelled
    return trio is not None and isinstance(exc, trio.Cancelled)
