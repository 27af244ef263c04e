from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

import pytest

from trader.config import (
    Secret,
    build_section,
    check_positive_secs,
    merged_environment,
    read_dotenv,
    reject_unknown,
)
from trader.errors import ConfigError, InputError


class Mode(enum.StrEnum):
    PAPER = "paper"
    LIVE = "live"


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    max_notional: Decimal = Decimal("100")
    port: int = 8080
    period_secs: float = 0.1
    enabled: bool = True
    mode: Mode = Mode.PAPER
    fmt: Literal["json", "console"] = "json"
    token: Secret | None = None
    slugs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.port < 0:
            raise ValueError("port must be >= 0")


def build(env: dict[str, str]) -> Example:
    used: set[str] = set()
    result = build_section(Example, env, "ex", used)
    reject_unknown(env, used)
    return result


def test_defaults_without_environment() -> None:
    assert build({}) == Example()


def test_every_type_is_converted_exactly() -> None:
    example = build(
        {
            "TRADER_EX__MAX_NOTIONAL": "0.1",
            "TRADER_EX__PORT": "9000",
            "TRADER_EX__PERIOD_SECS": "0.25",
            "TRADER_EX__ENABLED": "no",
            "TRADER_EX__MODE": "live",
            "TRADER_EX__FMT": "console",
            "TRADER_EX__TOKEN": "hunter2",
            "TRADER_EX__SLUGS": "a, b,,c",
        }
    )
    assert example.max_notional == Decimal("0.1")
    assert example.port == 9000
    assert example.period_secs == 0.25
    assert example.enabled is False
    assert example.mode is Mode.LIVE
    assert example.fmt == "console"
    assert example.token is not None
    assert example.token.get() == "hunter2"
    assert example.slugs == ("a", "b", "c")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRADER_EX__MAX_NOTIONAL", "lots", "decimal"),
        ("TRADER_EX__MAX_NOTIONAL", "NaN", "finite"),
        ("TRADER_EX__PORT", "80.5", "integer"),
        ("TRADER_EX__PERIOD_SECS", "inf", "finite"),
        ("TRADER_EX__ENABLED", "maybe", "true or false"),
        ("TRADER_EX__MODE", "yolo", "paper, live"),
        ("TRADER_EX__FMT", "xml", "json, console"),
        ("TRADER_EX__PORT", "-1", "port must be >= 0"),
        ("TRADER_EX__MAX_NOTIONL", "5", "unknown setting"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        build({name: value})
    assert "TRADER_EX" in str(info.value)


def test_secret_never_shows_itself() -> None:
    secret = Secret("0xdeadbeef")
    assert "deadbeef" not in repr(secret)
    assert "deadbeef" not in str(secret)
    assert "deadbeef" not in repr(Example(token=secret))
    assert secret == Secret("0xdeadbeef")
    assert hash(secret) == hash(Secret("0xdeadbeef"))


def test_dotenv_is_read_and_the_process_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\n\nexport TRADER_EX__PORT=9001\nTRADER_EX__FMT='console'\nOTHER=ignored\nTRADER_EX__ENABLED=\"no\"\n"
    )
    env = merged_environment({"TRADER_EX__PORT": "9002", "HOME": "/root"}, dotenv)
    assert env == {"TRADER_EX__PORT": "9002", "TRADER_EX__FMT": "console", "TRADER_EX__ENABLED": "no"}
    assert build(env).port == 9002


def test_a_missing_dotenv_is_fine_and_a_bad_line_is_an_error(tmp_path: Path) -> None:
    assert read_dotenv(tmp_path / "absent") == {}
    bad = tmp_path / ".env"
    bad.write_text("TRADER_EX__PORT 9000\n")
    with pytest.raises(ConfigError, match=r"\.env:1: expected KEY=VALUE"):
        read_dotenv(bad)


def test_a_name_in_the_wrong_case_is_an_error_with_its_spelling(tmp_path: Path) -> None:
    """`trader_...` would otherwise be ignored, leaving the setting at its default."""
    with pytest.raises(ConfigError, match="rename trader_ex__port -> TRADER_EX__PORT"):
        merged_environment({"trader_ex__port": "9000"}, None)
    dotenv = tmp_path / "prod.env"
    dotenv.write_text("TRADER_ex__Port=9000\n")
    with pytest.raises(ConfigError, match=r"upper case \(in .*prod.env\): rename TRADER_ex__Port -> TRADER_EX__PORT"):
        merged_environment({}, dotenv)


def test_the_test_suites_variables_are_not_settings() -> None:
    env = {"TRADER_TEST_PG_DSN": "postgresql://postgres@127.0.0.1/test", "TRADER_TEST_REDIS_URL": "redis://h/0"}
    assert merged_environment(env, None) == {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Timers:
    wait_secs: float = 1.0
    optional_secs: float | None = None

    def __post_init__(self) -> None:
        check_positive_secs(self, "wait_secs", "optional_secs")


@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), float("nan"), True])
def test_check_positive_secs_refuses_what_is_not_a_positive_number_of_seconds(value: object) -> None:
    with pytest.raises(InputError, match=r"wait_secs: must be a positive number of seconds"):
        Timers(wait_secs=value)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="optional_secs"):
        Timers(optional_secs=value)  # type: ignore[arg-type]


def test_check_positive_secs_accepts_positive_numbers_and_an_unset_optional() -> None:
    assert Timers(wait_secs=0.001, optional_secs=3).optional_secs == 3
    assert Timers().optional_secs is None
