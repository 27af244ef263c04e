"""`python -m bench per_event` stays runnable: small histories, the shape of its lines, and the one thing that is not
a timing: what the order manager still holds after a session's history is bounded, not the history itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import per_event

pytestmark = pytest.mark.timeout(120)


def test_it_prints_one_line_per_history_and_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert per_event.main(["--history", "0", "700", "--events", "20"]) == 0
    lines: list[dict[str, Any]] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    *rows, summary = lines
    assert [row["history"] for row in rows] == [0, 700]
    assert all(row["risk_check_us"] > 0 and row["order_us"] > 0 for row in rows)
    # ten orders a second for 70 s, forgotten 60 s after they close: about 600 of the 700 left memory
    assert rows[1]["orders_in_memory"] < 700
    assert summary["bench"] == "per_event"
    assert summary["history"] == [0, 700]
