"""Typed settings from the environment (`TRADER_*`) and an optional `.env` file.

Each component owns a frozen dataclass of its settings (unit-suffixed names, documented defaults) and receives only
that. `Settings` nests them by section; a variable `TRADER_<SECTION>__<FIELD>` sets one field, e.g.
`TRADER_RISK__MAX_NOTIONAL_PER_ORDER=50` or `TRADER_HTTP__PORT=9000`. A few well-known names are shortcuts (see
`ALIASES`, e.g. `TRADER_ADMIN_TOKEN`, `TRADER_PRIVATE_KEY`, `TRADER_DATABASE_URL`).

Values are converted by the field's type (Decimal from its text, never through float; bool from
true/false/1/0/yes/no). An unknown `TRADER_*` variable, a value of the wrong type, or a bad `.env` line is a
`ConfigError` naming the variable: a typo must never silently leave a risk limit at its default. So is a name in the
wrong case (`trader_risk__...`, `TRADER_risk__...`): the error gives the right spelling. `TRADER_TEST_*` names belong
to the test suite (`TRADER_TEST_PG_DSN`, `TRADER_TEST_REDIS_URL`): they are never read as settings, nor refused.
The process environment wins over `.env`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import types
import typing
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin
from urllib.parse import urlsplit

from trader.errors import ConfigError, InputError

PREFIX = "TRADER_"
#: Reserved for the test suite's own variables: never settings, never unknown.
TEST_PREFIX = "TRADER_TEST_"
T = TypeVar("T")


class Secret:
    """A string that never shows itself in repr/str (keys, API secrets, tokens)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(raw: str, annotation: Any, name: str) -> Any:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if raw.strip() == "" and type(None) in get_args(annotation):
            return None
        errors = []
        for option in options:
            try:
                return _convert(raw, option, name)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors))
    if origin is typing.Literal:
        if raw in get_args(annotation):
            return raw
        raise ConfigError(f"{name}: expected one of {', '.join(map(str, get_args(annotation)))}, got {raw!r}")
    if origin in (tuple, list, frozenset):
        (item,) = get_args(annotation)[:1]
        items = tuple(_convert(part.strip(), item, name) for part in raw.split(",") if part.strip())
        return origin(items) if origin is not tuple else items
    if annotation is Secret:
        return Secret(raw)
    if annotation is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{name}: expected true or false, got {raw!r}")
    if annotation is int:
        try:
            return int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if annotation is float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{name}: expected a finite number, got {raw!r}")
        return value
    if annotation is Decimal:
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            raise ConfigError(f"{name}: expected a decimal number, got {raw!r}") from None
        if not number.is_finite():
            raise ConfigError(f"{name}: expected a finite decimal, got {raw!r}")
        return number
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(raw.strip())
        except ValueError:
            allowed = ", ".join(str(m.value) for m in annotation)
            raise ConfigError(f"{name}: expected one of {allowed}, got {raw!r}") from None
    if annotation is str:
        return raw
    if annotation is dt.time:
        try:
            return dt.time.fromisoformat(raw.strip())
        except ValueError:
            raise ConfigError(f"{name}: expected a time of day HH:MM, got {raw!r}") from None
    raise ConfigError(f"{name}: cannot read a setting of type {annotation!r} from the environment")


def check_positive_secs(settings: object, *names: str) -> None:
    """For a settings class's `__post_init__`: each named field is a finite number of seconds > 0 (an optional
    field left None is not checked); `InputError` (a `ValueError`, so `build_section` names the section) otherwise."""
    for name in names:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise InputError(name, f"must be a positive number of seconds, got {value!r}")


def check_url(name: str, value: str, schemes: tuple[str, ...] = (), *, secret: bool = False) -> None:
    """For a settings class's `__post_init__`: `value` parses as a URL with a scheme (one of `schemes`, when given)
    and a host, and a port in 0..65535 if it names one; `InputError` otherwise, showing the value unless it is a
    `secret`. (Which scheme a connection needs is for its own check, e.g. `trader doctor`'s, to say.)"""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - read for its check: a port that is not a number in 0..65535 raises
        usable = bool(parts.hostname) and (parts.scheme in schemes if schemes else bool(parts.scheme))
    except ValueError:  # an unclosed IPv6 bracket, a bad port
        usable = False
    if not usable:
        shown = "(not shown: a secret)" if secret else repr(value)
        form = " or ".join(f"{s}://HOST[:PORT]..." for s in schemes) if schemes else "SCHEME://HOST[:PORT]..."
        raise InputError(name, f"must be a URL {form} (a port in 0..65535), got {shown}")


def _env_name(section: str | None, field: str) -> str:
    return f"{PREFIX}{section.upper()}__{field.upper()}" if section else f"{PREFIX}{field.upper()}"


def build_section(
    cls: type[T], env: Mapping[str, str], section: str | None, used: set[str], *, base: T | None = None
) -> T:
    """An instance of dataclass `cls` with fields overridden from `env` (names `TRADER_<SECTION>__<FIELD>`).

    A field that is itself a dataclass is a nested section: `TRADER_<SECTION>__<FIELD>__<SUBFIELD>`; its unset fields
    keep the values of the parent's default for it (e.g. a component's own backoff), not the nested class's defaults.
    `base`, when given, is the instance whose values are overridden.
    """
    hints = typing.get_type_hints(cls)
    overrides: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = _env_name(section, field.name)
        annotation = hints[field.name]
        if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
            nested = f"{section}__{field.name}" if section else field.name
            if any(key.startswith(_env_name(nested, "")) for key in env):
                default = getattr(base, field.name) if base is not None else _default_of(field)
                overrides[field.name] = build_section(annotation, env, nested, used, base=default)
        elif name in env:
            used.add(name)
            overrides[field.name] = _convert(env[name], annotation, name)
    try:
        if base is not None:
            return dataclasses.replace(base, **overrides)  # type: ignore[type-var]
        return cls(**overrides)
    except (TypeError, ValueError, ConfigError) as exc:  # the class's own checks name the field, this its section
        raise ConfigError(f"{PREFIX}{section.upper()}: {exc}" if section else str(exc)) from None


def _default_of(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def read_dotenv(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines; `#` comments, blank lines, optional `export ` and matching quotes are allowed."""
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return values
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = stripped.removeprefix("export ").strip()
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def merged_environment(environ: Mapping[str, str], dotenv: Path | None) -> dict[str, str]:
    """`.env` values under the process environment, `TRADER_*` only (not `TRADER_TEST_*`); `ConfigError` for a
    `TRADER_*` name in the wrong case."""
    from_file = read_dotenv(dotenv) if dotenv else {}
    _check_case(from_file, f" (in {dotenv})")
    _check_case(environ, "")
    merged = {k: v for k, v in from_file.items() if _is_setting(k)}
    merged.update({k: v for k, v in environ.items() if _is_setting(k)})
    return merged


def _is_setting(name: str) -> bool:
    return name.startswith(PREFIX) and not name.startswith(TEST_PREFIX)


def _check_case(values: Mapping[str, str], where: str) -> None:
    wrong = sorted(k for k in values if k.upper().startswith(PREFIX) and k != k.upper())
    if wrong:
        spelt = ", ".join(f"{k} -> {k.upper()}" for k in wrong)
        raise ConfigError(f"setting names are upper case{where}: rename {spelt}")


def reject_unknown(env: Mapping[str, str], used: set[str]) -> None:
    unknown = sorted(k for k in env if k not in used)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)} (see the README's settings table)")
