"""Secrets never reach logs, metrics, events, errors or the store: the safety net behind that rule.

The rule itself is that no secret (private key, API secret, passphrase, admin token) is ever handed to a logger, an
event or a record. These helpers catch what slips through anyway:

- `scrub_secrets(value)`: a JSON-ready copy of a mapping/list tree with the values of secret-looking keys replaced
  by `REDACTED` (the store's `detail` columns and the event bus use it);
- `is_secret_log_field(key, value)`: whether one key/value of a log line must be redacted (the logging processor).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

__all__ = ["REDACTED", "is_secret_key", "is_secret_log_field", "scrub_secrets"]

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"(secret|passphrase|password|private[_-]?key|privkey|mnemonic|seed[_-]?phrase|api[_-]?key|authorization|"
    r"poly[_-]?(signature|passphrase|api[_-]?key))",
    re.IGNORECASE,
)
#: Log fields are named by us, so the rule there is the name's ending (`api_key`, `l2_secret`, ...).
_SECRET_LOG_FIELD = re.compile(r"(secret|passphrase|private_key|password|admin_token|authorization|api_key)$", re.I)
_HEX_KEY = re.compile(r"0x[0-9a-fA-F]{64}\b")


def is_secret_key(key: str) -> bool:
    """A mapping key whose value is never stored or published."""
    return _SECRET_KEY.search(key) is not None


def scrub_secrets(value: object) -> object:
    """A JSON-ready copy of `value` with the values of secret-looking keys replaced by `REDACTED`.

    Decimals become strings (exact), tuples become lists; mappings and lists are walked recursively.
    """
    if isinstance(value, Mapping):
        return {str(key): REDACTED if is_secret_key(str(key)) else scrub_secrets(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_secrets(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def is_secret_log_field(key: str, value: object) -> bool:
    """One field of a log line that must be redacted: a secret's name, or a 32-byte hex value under a `*key*` name."""
    if key == "event":
        return False
    if _SECRET_LOG_FIELD.search(key):
        return True
    return isinstance(value, str) and "key" in key.lower() and _HEX_KEY.search(value) is not None
