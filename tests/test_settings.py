from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from trader.errors import ConfigError, InputError
from trader.settings import RunSettings, Settings, VenueKind, load_settings


def test_defaults_are_paper_trading_against_the_sim() -> None:
    settings = load_settings({}, dotenv=None)
    assert settings == Settings()
    assert settings.run.venue is VenueKind.SIM
    assert settings.run.live is False
    assert settings.http.host == "127.0.0.1"
    assert settings.http.admin_token is None


def test_sections_nested_sections_and_aliases() -> None:
    settings = load_settings(
        {
            "TRADER_RISK__MAX_ORDER_NOTIONAL_USD": "50",
            "TRADER_RISK__DAILY_RESET_UTC": "13:30",
            "TRADER_MARKET_DATA__BACKOFF__MAX_SECS": "10",
            "TRADER_ADMIN_TOKEN": "tok",
            "TRADER_PRIVATE_KEY": "0x" + "11" * 32,
            "TRADER_DATABASE_URL": "postgresql://postgres@127.0.0.1/test",
            "TRADER_MARKETS__SLUGS": "a,b",
            "TRADER_CONFIRM_LIVE": "yes",  # read by `trader run` itself
            "PATH": "/usr/bin",
        },
        dotenv=None,
    )
    assert settings.risk.max_order_notional_usd == Decimal(50)
    assert settings.risk.daily_reset_utc == dt.time(13, 30)
    assert settings.market_data.backoff.max_secs == 10.0
    assert settings.http.admin_token == "tok"
    assert settings.keys.private_key is not None
    assert "11" * 32 not in repr(settings)
    assert settings.run.store_url.startswith("postgresql://")
    assert settings.markets.slugs == ("a", "b")


def test_a_typo_is_an_error_not_a_default() -> None:
    with pytest.raises(ConfigError, match="TRADER_RISK__MAX_ORDER_NOTIONL_USD"):
        load_settings({"TRADER_RISK__MAX_ORDER_NOTIONL_USD": "50"}, dotenv=None)


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("TRADER_EXECUTION__CANCEL_RESTING_ON_DRAIN", "TRADER_RUN__CANCEL_RESTING_ON_EXIT"),
        ("TRADER_ESPN__BASE_URL", "TRADER_ENDPOINTS__ESPN_URL"),
    ],
)
def test_a_removed_setting_is_an_error_naming_its_replacement(name: str, replacement: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{name} was removed .* set {replacement} instead"):
        load_settings({name: "false"}, dotenv=None)
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"{name}=x\n")
    with pytest.raises(ConfigError, match=replacement):
        load_settings({}, dotenv=dotenv)


def test_the_test_suites_variables_never_affect_the_engine() -> None:
    """The README tells developers to export them; `trader run` must neither refuse nor read them."""
    environ = {"TRADER_TEST_PG_DSN": "postgresql://postgres@127.0.0.1:5432/test", "TRADER_TEST_REDIS_URL": "redis://x"}
    assert load_settings(environ, dotenv=None) == Settings()


def test_bad_values_and_conflicting_aliases_are_errors() -> None:
    with pytest.raises(ConfigError, match="TRADER_RUN__VENUE"):
        load_settings({"TRADER_RUN__VENUE": "binance"}, dotenv=None)
    with pytest.raises(ConfigError, match="database_url"):
        load_settings({"TRADER_DATABASE_URL": "mysql://x"}, dotenv=None)
    with pytest.raises(ConfigError, match="both set"):
        load_settings({"TRADER_ADMIN_TOKEN": "a", "TRADER_HTTP__ADMIN_TOKEN": "b"}, dotenv=None)
    with pytest.raises(ConfigError, match="TRADER_RUN: drain_secs: must be a positive number of seconds"):
        load_settings({"TRADER_RUN__DRAIN_SECS": "0"}, dotenv=None)
    with pytest.raises(InputError, match="duration_secs"):
        RunSettings(duration_secs=-1.0)
    with pytest.raises(ConfigError, match="TRADER_MARKETS: max_pages must be >= 1"):
        load_settings({"TRADER_MARKETS__MAX_PAGES": "0"}, dotenv=None)
    assert load_settings({"TRADER_MARKETS__MAX_PAGES": "500"}, dotenv=None).markets.max_pages == 500
    # A port the server could never bind is refused here, not by a traceback from the server's bind.
    for port in ("70000", "-1"):
        with pytest.raises(ConfigError, match=r"TRADER_HTTP: port must be 0\.\.65535"):
            load_settings({"TRADER_HTTP__PORT": port}, dotenv=None)
    # A starting cash so large that a cent added to it would round away is refused, not run with.
    with pytest.raises(ConfigError, match="TRADER_RUN: starting_cash_usd must be at most 1,000,000,000,000"):
        load_settings({"TRADER_RUN__STARTING_CASH_USD": "1e999"}, dotenv=None)
    assert load_settings({"TRADER_RUN__STARTING_CASH_USD": "1e12"}, dotenv=None).run.starting_cash_usd == 10**12
    # A section's own check names the section, as the checks of the settings module do.
    with pytest.raises(ConfigError, match=r"^TRADER_PAPER: keep_closed must be >= 1$"):
        load_settings({"TRADER_PAPER__KEEP_CLOSED": "0"}, dotenv=None)


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("TRADER_RUN__DURATION_SECS=60\n")
    assert load_settings({}, dotenv=dotenv).run.duration_secs == 60.0


def test_a_nested_section_keeps_its_components_own_defaults() -> None:
    """The ESPN poller backs off from 2 s to 120 s; setting only the jitter must not reset those to the generic
    backoff defaults."""
    default = Settings().espn.backoff
    settings = load_settings({"TRADER_ESPN__BACKOFF__JITTER": "0.1"}, dotenv=None)
    assert settings.espn.backoff.jitter == 0.1
    assert (settings.espn.backoff.initial_secs, settings.espn.backoff.max_secs) == (
        default.initial_secs,
        default.max_secs,
    )
    assert default.initial_secs != type(default)().initial_secs  # the test would prove nothing otherwise
