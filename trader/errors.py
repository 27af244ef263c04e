"""The exception tree of `trader`.

```
TraderError
├── ConfigError               bad settings, CLI arguments or files: a clear message, exit 2
├── RuntimeFailure            a command could not do its work (a server down): a clear message, exit 1
├── InputError                a value from outside (CLI JSON, REST, a frame) that cannot be used; names the field
├── VenueError                (trader.venues.errors) adapters raise only these
└── CircuitOpenError          (trader.engine) the breaker refused the call
```

Expected business outcomes (a risk denial, a venue rejection) are values, never exceptions. Programmer errors
(`trader.domain.errors.InvalidTransition`) are not in this tree: they crash the process on purpose.
"""

from __future__ import annotations


class TraderError(Exception):
    """Base class of every error `trader` raises on purpose."""


class ConfigError(TraderError):
    """A setting, CLI argument or configuration file is invalid."""


class RuntimeFailure(TraderError):
    """A command could not do its work for a reason outside it (a server down or refusing, a file unwritable); the
    message names the cause and the fix. The CLI prints it as one line and exits 1."""


class InputError(TraderError, ValueError):
    """A value from outside cannot be used. `field` names what was wrong, for a clear message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
