"""Hypothesis strategies for the parsers' property tests: arbitrary bytes, and JSON-ish mutations of real replies.

`inputs(seeds)` draws, with shrinking, from: any bytes; a seed with byte edits (inserted tokens such as invalid UTF-8,
quotes and brackets, deletions, truncation); a seed parsed and edited as JSON (a value replaced by any JSON value or
by a tricky one: a decimal text that is not one, a huge or non-finite number, a lone surrogate; a key removed or
added) and written back, ASCII-escaped or not; and a seed nested very deeply. Use the parsers' tests under the
`engine_recursion_limit` fixture (tests/conftest.py): deep nests need the engine's recursion limit to raise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "polymarket"
CAPTURED = FIXTURE_DIR / "captured"


def captured(*names: str) -> list[bytes]:
    return [(CAPTURED / name).read_bytes() for name in names]


def captured_glob(pattern: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted(CAPTURED.glob(pattern))]


class Raw(str):
    """JSON text written as it is: numbers Python's json would not write (1e999, 5000 digits)."""


TRICKY_TEXTS = (
    "", " ", "0", "0.5", ".5", "0.505", "1.5", "-0.1", "-0", "1e-2", "1E+400", "1e999999999", "NaN", "sNaN",
    "Infinity", "-Infinity", "0x10", "1_000", "²", "١٢", "9" * 5000, "0." + "0" * 200 + "1", "BUY", "SELL", "HOLD",
    "LIVE", "MATCHED", "CANCELED_order couldn't be fully filled. FOK orders are fully filled or killed.", "INVALID",
    "CONFIRMED", "FAILED", "PLACEMENT", "UPDATE", "CANCELLATION", "TRADE", "book", "price_change", "order", "trade",
    "pre", "in", "post", "1767225600", "1767225600000", "2026-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00",
    "9" * 40, "\ud800", "\x00", "[" * 2000, '["Yes", "No"]', "LTE=",
)  # fmt: skip
RAW_NUMBERS = ("1e999", "-1e999", "1e-999", "9" * 5000, "18446744073709551616", "NaN", "Infinity", "-0")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(TRICKY_TEXTS),
    st.sampled_from(RAW_NUMBERS).map(Raw),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)


def dump(value: object, *, ascii_only: bool) -> bytes:
    """JSON bytes of `value`; `Raw` as it is, and lone surrogates kept (as invalid UTF-8 unless ASCII-escaped)."""

    def text(item: object) -> str:
        if isinstance(item, Raw):
            return str(item)
        if isinstance(item, list):
            return "[" + ",".join(text(v) for v in item) + "]"
        if isinstance(item, dict):
            return "{" + ",".join(f"{text(str(k))}:{text(v)}" for k, v in item.items()) + "}"
        return json.dumps(item, ensure_ascii=ascii_only)

    return text(value).encode("utf-8", "surrogatepass")


def _places(value: object, found: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((value, key))
            _places(item, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((value, index))
            _places(item, found)
    return found


@st.composite
def json_edits(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    value: Any = json.loads(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        places = _places(value, [])
        if not places:
            value = draw(json_values)
            continue
        container, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(("replace", "replace", "delete", "add")))
        if action == "replace":
            container[key] = draw(json_values)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=10) | st.sampled_from(sorted(container)))] = draw(json_values)
        else:
            container.insert(draw(st.integers(0, len(container))), draw(json_values))
    return dump(value, ascii_only=draw(st.booleans()))


TOKENS = (b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\x80", b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\\ud800")


@st.composite
def byte_edits(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    data = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(("insert", "delete", "truncate")))
        if kind == "insert":
            data = data[:at] + draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=4)) + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 8)) :]
        else:
            data = data[:at]
    return data


@st.composite
def deep_nests(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    depth = draw(st.sampled_from((900, 2000, 20_000)))
    closed = draw(st.booleans())
    return b"[" * depth + draw(st.sampled_from(seeds)) + (b"]" * depth if closed else b"")


def inputs(seeds: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """Any bytes, and mutations of `seeds` (see the module's docstring)."""
    return st.one_of(st.binary(max_size=300), json_edits(seeds), byte_edits(seeds), deep_nests(seeds))
