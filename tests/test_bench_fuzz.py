"""`python -m bench fuzz` stays runnable and honest: a few hundred examples per parser, every one counted under a
documented outcome, and an undocumented exception is reported with its input (exit 1). A smoke test of the output's
shape at a fixed seed, not the fuzzing itself (that is the bench's job, 100,000 examples per parser)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from bench import fuzz
from trader.domain.feed import ParsedFrame

pytestmark = [pytest.mark.usefixtures("engine_recursion_limit"), pytest.mark.timeout(120)]

PARSERS = ["market", "user", "rest", "gamma", "espn"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    code = fuzz.main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_every_parser_counts_every_example_under_a_documented_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    code, (header, *rows, last), err = run(capsys, "--examples", "300", "--seed", "7")

    assert code == 0, err
    assert header == {"bench": "fuzz", "seed": 7, "examples_per_parser": 300, "parsers": PARSERS}
    assert [row["parser"] for row in rows] == PARSERS
    for row in rows:
        assert row["examples"] == 300
        assert row["value"] + row["drop"] + row["documented_error"] == 300, row
        assert row["undocumented"] == 0
        assert row["undocumented_by_type"] == {}
        assert row["value"] > 0  # the seeds and light mutations still parse: the fuzzing reaches the parsers' ends
        assert row["drop"] or row["documented_error"]
    by_parser = {row["parser"]: row for row in rows}
    assert "MALFORMED_JSON" in by_parser["market"]["drops_by_reason"]
    assert "NOT_JSON" in by_parser["user"]["drops_by_reason"]
    assert "VenueProtocolError" in by_parser["rest"]["documented_errors_by_type"]
    assert "EspnBadReply" in by_parser["espn"]["documented_errors_by_type"]
    assert last == {"bench": "fuzz", "seed": 7, "examples": 1500, "undocumented": 0}


def test_the_same_seed_draws_the_same_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run(capsys, "--examples", "200", "--seed", "11", "--parser", "user")
    _, again, _ = run(capsys, "--examples", "200", "--seed", "11", "--parser", "user")

    for row in (*first[1:], *again[1:]):
        row.pop("secs", None)
    assert first == again


def test_an_undocumented_exception_is_counted_shown_and_fails_the_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(data: str | bytes, ticks: object) -> ParsedFrame:
        if b"book" in (data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")):
            raise KeyError("bids")
        return ParsedFrame()

    monkeypatch.setattr(fuzz, "parse_market_frame", broken)

    code, (_, row, last), err = run(capsys, "--examples", "200", "--seed", "3", "--parser", "market", "--show", "1")

    assert code == 1
    assert row["undocumented"] == row["undocumented_by_type"]["KeyError"] > 0
    assert last["undocumented"] == row["undocumented"]
    assert err.count("--- market: undocumented exception in parse_market_frame for input b'") == 1
    assert "KeyError: 'bids'" in err


def test_a_raised_recursion_limit_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)  # as after importing eth-account
    try:
        code = fuzz.main(["--examples", "10"])
    finally:
        sys.setrecursionlimit(previous)

    assert code == 2
    assert "the recursion limit is 100000" in capsys.readouterr().err
