"""The README stays true: its quick start, its command table and its settings table follow the code."""

from __future__ import annotations

import re
from pathlib import Path

from trader.cli import COMMANDS
from trader.settings_doc import BEGIN, END, markdown

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_quick_start_is_exactly_two_commands_run_then_test() -> None:
    block = re.search(r"```[a-z]*\n(.*?)```", README, re.S)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2
    assert "trader run" in commands[0]
    assert "scripts/test" in commands[1]


def test_every_command_is_documented() -> None:
    table = README.split("## Commands", 1)[1]
    for name in COMMANDS:
        assert f"`trader {name}" in table, f"`trader {name}` is missing from the README's command table"


def test_settings_table_is_the_generated_one() -> None:
    current = README.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert current == markdown(), "run scripts/update-readme-settings"
