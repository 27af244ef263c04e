"""Hypothesis under CI and scripts/test draws the same examples on every run, with no example database, so a red run
is red again on the next run, on any machine and in a fresh clone; at a developer's prompt it explores anew."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import hypothesis_profile

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent

DRAWING_TEST = """
import os

from hypothesis import given, strategies as st


@given(st.binary(min_size=1))
def test_draws(data: bytes) -> None:
    with open(os.environ["DRAWS"], "a") as out:
        out.write(data.hex() + "\\n")
"""


@pytest.mark.parametrize(
    ("environ", "profile"),
    [
        ({}, "dev"),
        ({"CI": "true"}, "ci"),
        ({"CI": "1"}, "ci"),
        ({"CI": "false"}, "dev"),
        ({"CI": ""}, "dev"),
        ({"CI": "true", "HYPOTHESIS_PROFILE": "dev"}, "dev"),
        ({"HYPOTHESIS_PROFILE": "ci"}, "ci"),
    ],
)
def test_the_profile_follows_ci_unless_chosen(environ: dict[str, str], profile: str) -> None:
    assert hypothesis_profile(environ) == profile


def draws_of_two_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, **environ: str) -> list[list[str]]:
    pytester.makeconftest("import tests.conftest  # noqa: F401  (the suite's Hypothesis profiles)\n")
    pytester.makepyfile(test_drawing=DRAWING_TEST)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for name in ("CI", "HYPOTHESIS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    runs = []
    for run in (1, 2):
        draws = pytester.path / f"draws-{run}.txt"
        monkeypatch.setenv("DRAWS", str(draws))
        pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
        runs.append(draws.read_text().splitlines())
    return runs


def test_under_ci_every_run_draws_the_same_examples_and_keeps_no_database(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first run starts with no .hypothesis/ (a fresh clone), the second with what the first left there (an old
    # checkout: Hypothesis still caches the constants it reads from the source, keyed by their content).
    first, second = draws_of_two_runs(pytester, monkeypatch, CI="true")

    assert len(first) > 50
    assert first == second
    assert not (pytester.path / ".hypothesis" / "examples").exists()  # nothing an old checkout would replay


def test_at_a_prompt_each_run_explores_anew(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = draws_of_two_runs(pytester, monkeypatch)

    assert first != second
