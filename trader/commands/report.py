"""`trader report`: one self-contained HTML file (inline SVG charts, no script, nothing fetched) with the equity
curve (the samples the engine kept, one a minute), daily PnL and the results per strategy and per market, from
the store.

    trader report [--output report.html] [--since 2026-12-01] [--until 2026-12-07] [--database-url URL]

Exit status: 0 written, 1 the database could not be read, 2 bad arguments or an output path that cannot be written.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from trader.app.history import render_report
from trader.commands.checks import check_file_writable
from trader.commands.history import add_history_arguments, read_history
from trader.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default="report.html", metavar="PATH", help="where to write (report.html)")
    add_history_arguments(parser, csv=False)


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    check_file_writable(output, what=f"--output {output}")
    history, settings = read_history(args)
    mode = "live" if settings.run.live else "paper"
    html = render_report(
        history, title=f"trader report ({mode}, {settings.run.venue.value})", generated=dt.datetime.now(dt.UTC)
    )
    try:
        output.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror}") from None
    print(f"wrote {output} ({len(history.fills)} fills)")
    return 0
