"""Loading `trader run`'s settings: `load_settings` reads every section from the environment and `.env`.

A variable `TRADER_<SECTION>__<FIELD>` sets one field, e.g. `TRADER_RISK__MAX_ORDER_NOTIONAL_USD=50`; nested
sections add a level (`TRADER_MARKET_DATA__BACKOFF__MAX_SECS=10`). `ALIASES` lists the short names. The sections
themselves are `trader.app.config.Settings` (the composition root's), re-exported here for the commands; the
machinery (types, unknown names, `.env`) is `trader.config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from trader.app.config import (
    BusSettings,
    EndpointSettings,
    KeySettings,
    RedisSettings,
    RunSettings,
    SelectionSettings,
    Settings,
    SimSettings,
    SlackAlertSettings,
    SlackSinkSettings,
    StoreSettings,
    SupervisorSettings,
    VenueKind,
    default_database_url,
)
from trader.config import build_section, merged_environment, reject_unknown
from trader.errors import ConfigError

__all__ = [
    "ALIASES",
    "COMMAND_VARIABLES",
    "RETIRED",
    "BusSettings",
    "EndpointSettings",
    "KeySettings",
    "RedisSettings",
    "RunSettings",
    "SelectionSettings",
    "Settings",
    "SimSettings",
    "SlackAlertSettings",
    "SlackSinkSettings",
    "StoreSettings",
    "SupervisorSettings",
    "VenueKind",
    "default_database_url",
    "load_settings",
]

#: Short names for the settings people set most.
ALIASES: dict[str, str] = {
    "TRADER_ADMIN_TOKEN": "TRADER_HTTP__ADMIN_TOKEN",
    "TRADER_DATABASE_URL": "TRADER_RUN__DATABASE_URL",
    "TRADER_REDIS_URL": "TRADER_RUN__REDIS_URL",
    "TRADER_SLACK_WEBHOOK_URL": "TRADER_SLACK__WEBHOOK_URL",
    "TRADER_PRIVATE_KEY": "TRADER_KEYS__PRIVATE_KEY",
    "TRADER_SIGNATURE_TYPE": "TRADER_KEYS__SIGNATURE_TYPE",
    "TRADER_FUNDER": "TRADER_KEYS__FUNDER",
    "TRADER_API_KEY": "TRADER_KEYS__API_KEY",
    "TRADER_API_SECRET": "TRADER_KEYS__API_SECRET",
    "TRADER_API_PASSPHRASE": "TRADER_KEYS__API_PASSPHRASE",
}

#: Read by the commands themselves, not settings of a section.
COMMAND_VARIABLES = frozenset({"TRADER_CONFIRM_LIVE", "TRADER_HTTP_URL"})

#: Settings that were removed because they never had an effect (another setting always decided), and what decides.
#: Setting one is an error naming its replacement: a variable that is silently ignored is as bad as a misspelt one.
RETIRED: dict[str, str] = {
    "TRADER_EXECUTION__CANCEL_RESTING_ON_DRAIN": "TRADER_RUN__CANCEL_RESTING_ON_EXIT",
    "TRADER_ESPN__BASE_URL": "TRADER_ENDPOINTS__ESPN_URL",
}


def load_settings(environ: Mapping[str, str], *, dotenv: Path | None = Path(".env")) -> Settings:
    """All settings from `environ` and `.env`; `ConfigError` names any unknown or bad variable."""
    env = merged_environment(environ, dotenv)
    for name, replacement in RETIRED.items():
        if name in env:
            raise ConfigError(
                f"{name} was removed (it never had an effect: {replacement} decides); set {replacement} instead"
            )
    for alias, name in ALIASES.items():
        if alias in env:
            if name in env and env[name] != env[alias]:
                raise ConfigError(f"{alias} and {name} are both set, to different values")
            env[name] = env.pop(alias)
    used = {name for name in env if name in COMMAND_VARIABLES}
    settings = build_section(Settings, env, None, used)
    reject_unknown(env, used)
    return settings
