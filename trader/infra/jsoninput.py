"""What msgspec's JSON decoder raises for input that is not valid JSON, in one place for every parser of outside input.

`msgspec.json.decode` (and a `Decoder`) raises, for bad input:

* `msgspec.DecodeError` for malformed JSON, and its subclass `msgspec.ValidationError` for JSON of the wrong shape;
* `UnicodeDecodeError` for bytes that are not UTF-8 inside a JSON string (a `ValueError`, *not* a `DecodeError`);
* `UnicodeEncodeError` for a `str` argument holding a lone surrogate (msgspec encodes a str to UTF-8 first);
* `RecursionError` for arrays or objects nested deeper than the interpreter's recursion limit allows.

The last one holds only while that limit is sane (1000 by default): eth-account's py_ecc raises it to 100,000 on
import, and then a deeply nested document overflows the C stack and kills the process instead. The engine never
imports it (tests/test_architecture.py); the test suite and `python -m bench fuzz` run their parser fuzzing under
a sane limit.

    try:
        value = decoder.decode(data)
    except JSON_INPUT_ERRORS as exc:
        ...count or raise the parser's documented error, with describe_json_error(exc)...
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["JSON_INPUT_ERRORS", "describe_json_error"]

#: Every exception msgspec's JSON decoder raises for bad input (ValidationError is a DecodeError).
JSON_INPUT_ERRORS: Final[tuple[type[Exception], ...]] = (msgspec.DecodeError, UnicodeError, RecursionError)


def describe_json_error(exc: Exception) -> str:
    """A short, stable description of a decode failure for a drop or an error message."""
    if isinstance(exc, RecursionError):
        return "JSON is nested too deeply"
    if isinstance(exc, UnicodeError):
        return f"not UTF-8 text: {exc}"
    return str(exc)
