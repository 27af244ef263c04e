"""Names a person can read for the ids the engine logs: a market's question (or slug) for its condition id, and that
plus the outcome for each of its token ids.

The engine logs 77-digit token ids and 66-character condition ids; the console (`trader.infra.console`) and the
operator's views (`/status`, the exit summary) show `short_id(id)` next to `NAMES.name(id)`. The registry is
process-wide, like the logging it serves: the market directory fills it as markets are followed or loaded.
"""

from __future__ import annotations

__all__ = ["NAMES", "MarketNames", "short_id", "shorten"]

#: Ids longer than this are shown as their head and tail (`5550…6782`).
_LONG_ID = 16


def shorten(text: str, width: int = 48) -> str:
    """`text` on one line, at most `width` characters (an ellipsis marks a cut)."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1].rstrip() + "…"


def short_id(value: str) -> str:
    """A long token or condition id as its head and tail; anything short is itself."""
    if len(value) <= _LONG_ID:
        return value
    head = 6 if value.startswith("0x") else 4
    return f"{value[:head]}…{value[-4:]}"


class MarketNames:
    """id -> readable name. `add_market` names a condition and its tokens; `name` looks any of them up."""

    def __init__(self, *, limit: int = 50_000) -> None:
        self._names: dict[str, str] = {}
        self._limit = limit  # a bound: discovery may list many thousands of markets over a long run

    def add_market(self, condition_id: str, title: str, tokens: dict[str, str]) -> None:
        """Name `condition_id` by `title` (a question or slug) and each token by the title and its outcome."""
        if len(self._names) >= self._limit and condition_id not in self._names:
            self._names.clear()  # the followed markets are named again as they are tracked
        name = shorten(title)
        self._names[condition_id] = name
        for token_id, outcome in tokens.items():
            self._names[token_id] = f"{name} · {shorten(outcome, 16)}"

    def name(self, market_or_token_id: str) -> str | None:
        return self._names.get(market_or_token_id)

    def label(self, market_or_token_id: str) -> str:
        """`short id "name"`, or the short id alone when the market is not known."""
        name = self._names.get(market_or_token_id)
        short = short_id(market_or_token_id)
        return short if name is None else f'{short} "{name}"'

    def clear(self) -> None:
        self._names.clear()


#: The process's registry.
NAMES = MarketNames()
