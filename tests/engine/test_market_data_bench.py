"""`python -m bench ingest` stays runnable and checks itself (books equal the venue's on both paths)."""

from __future__ import annotations

import json

import pytest

from bench import ingest


def test_ingest_bench_runs_and_both_paths_end_with_the_venues_books(capsys: pytest.CaptureFixture[str]) -> None:
    assert ingest.main(["--frames", "300", "--entries-per-frame", "4"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[1]["entries"] == lines[2]["entries"] == 1200
    assert lines[1]["mismatches"] == lines[2]["mismatches"] == 0
    assert lines[-1]["books_match"] is True
    assert {"entries_per_s", "p99_us", "baseline_entries_per_s"} <= lines[-1].keys()
