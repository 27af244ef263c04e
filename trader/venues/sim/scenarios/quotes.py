"""The `quotes` scenario: real Polymarket top-of-book paths, replayed in compressed time by simulated makers.

    trader sim --scenario quotes --markets 4 \\
        --scenario-param path=/work/shared/data/polymarket-quotes --scenario-param speed=120

Data: the Polymarket Order Book Dataset (2026), Dinesh Gopalakrishnan, CC BY 4.0 (see NOTICE beside the data).
`path` is a directory holding `quotes-*.csv.gz` (ts, slug, category, bid, ask, mid, spread, volume24hr, segment:
the polled top of book of the market's first, "Yes", outcome, about every 2 minutes), and optionally
`markets.csv.gz` (questions), `labels.csv.gz` (outcomes) and `data_quality.csv` (the known collection artefacts,
logged at start). The default is the small slice shipped in `trader/venues/sim/data/polymarket-quotes/`.

What is replayed, honouring data_quality.csv:
- rows are grouped by `segment`; no move is ever computed across a segment boundary: time jumps over the gap
  (one poll interval instead of days) and the books are rebuilt from scratch at the first row of a segment;
- crossed or locked rows (ask <= bid) and rows without a price are skipped and counted; a one-sided row shows one
  side only;
- `volume24hr` is not used (mostly empty upstream).
Markets: the `--markets` slugs whose two-sided quotes change most often (or `slugs=a,b,c`); one complementary
binary market each, with the question from markets.csv.gz, the coarsest standard tick (0.01, 0.001, 0.0001) that
holds every price of its path, and a maker per market.

Motion: the maker's best bid and best ask are the row's bid and ask, with `levels` levels of depth behind each,
one tick apart (sizes seeded); row times are `(ts - first ts) / speed` seconds after the start. After a market's
last row, a market with an `api` label (labels.csv.gz; `convergence` labels are ignored as biased) converges to its
outcome (the winner's token bid 0.98 / ask 0.99), and one poll interval later resolves on that real outcome
(`market_resolved`, Gamma closed with `outcomePrices`, the CLOB market's `winner`, its shares redeemable); a market
without one keeps its last quotes and never resolves.

Parameters (`--scenario-param key=value`): path, speed (default 60), levels (default 5), slugs (comma-separated),
labels (default true).
"""

from __future__ import annotations

import csv
import functools
import gzip
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import structlog
import trio

from trader.domain.numbers import Side
from trader.errors import ConfigError
from trader.venues.sim.exchange import LIVE, Accepted, Exchange, OrderRequest
from trader.venues.sim.markets import PIPS_PER_ONE, UNITS_PER_ONE, SimEvent, SimMarket, hex_id, make_market, pips_of
from trader.venues.sim.scenarios import ScenarioContext, ScenarioOptions
from trader.venues.sim.scenarios.frames import DATA_DIR, parse_scenario_params

log = structlog.get_logger(__name__)

QUOTES_SLICE = DATA_DIR / "polymarket-quotes"
ATTRIBUTION = "Polymarket Order Book Dataset (2026), Dinesh Gopalakrishnan, CC BY 4.0"

_FUNDS = 10**12 * UNITS_PER_ONE
_TICKS = (Decimal("0.01"), Decimal("0.001"), Decimal("0.0001"))
_TS_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z")


# -- a maker that shows a given top of book ---------------------------------------------------------------------


class LadderMaker:
    """Quotes one complementary market so its YES book's best bid and best ask are the given prices, with
    `levels` levels one tick apart behind each (a YES ask is a NO bid at 1 - p). Only changed levels are
    cancelled and re-posted; sizes per level are fixed (seeded), so a level that stays keeps its queue place."""

    def __init__(self, market: SimMarket, owner: str, rng: random.Random, *, levels: int) -> None:
        self.market = market
        self.owner = owner
        self.address = "0x" + hex_id(owner)[-40:]
        self.levels = levels
        self.sizes = {
            (kind, i): rng.randrange(50, 500) * (1 + i) * UNITS_PER_ONE for kind in "ba" for i in range(levels)
        }
        self.resting: dict[tuple[str, int], str] = {}
        self.quotes = 0
        self.rejected = 0
        self._seq = 0

    def _wanted(self, bid: int | None, ask: int | None) -> dict[tuple[str, int], tuple[int, int]]:
        """level key -> (outcome index, price in that outcome's pips)."""
        tick = self.market.tick_pips
        wanted: dict[tuple[str, int], tuple[int, int]] = {}
        for i in range(self.levels):
            if bid is not None and bid - i * tick >= tick:
                wanted["b", i] = (0, bid - i * tick)
            if ask is not None and ask + i * tick <= PIPS_PER_ONE - tick:
                wanted["a", i] = (1, PIPS_PER_ONE - (ask + i * tick))
        return wanted

    def quote(self, exchange: Exchange, now: float, bid: int | None, ask: int | None, *, fresh: bool = False) -> None:
        """Show `bid` / `ask` (YES pips; None: that side empty). `fresh` re-posts every level."""
        wanted = self._wanted(bid, ask)
        stale = []
        for key, order_id in list(self.resting.items()):
            order = exchange.order(order_id)
            target = wanted.get(key)
            keep = (
                not fresh
                and order is not None
                and order.status == LIVE
                and target is not None
                and (order.outcome_index, order.limit_pips) == target
                and order.matched == 0
            )
            if not keep:
                if order is not None and order.status == LIVE:
                    stale.append(order_id)
                del self.resting[key]
        if stale:
            exchange.cancel(self.owner, stale, now)
        exchange.fund(self.address, collateral=_FUNDS)
        for key, (outcome, price) in sorted(wanted.items()):
            if key in self.resting:
                continue
            self._seq += 1
            order_id = hex_id(f"{self.owner}:order:{self._seq}")
            size = self.sizes[key]
            request = OrderRequest(
                order_id=order_id,
                owner=self.owner,
                maker_address=self.address,
                token_id=self.market.token_ids[outcome],
                side=Side.BUY,
                maker_amount=size * price // PIPS_PER_ONE,
                taker_amount=size,
            )
            result = exchange.submit(request, now)
            if isinstance(result, Accepted):
                if result.status == "live":
                    self.resting[key] = order_id
            else:
                self.rejected += 1
        self.quotes += 1


# -- the data ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuoteRow:
    ts: float  # unix seconds
    segment: str
    bid: int | None  # YES pips
    ask: int | None


@dataclass(slots=True)
class MarketPath:
    slug: str
    category: str
    question: str
    rows: list[QuoteRow] = field(default_factory=list)
    label: int | None = None  # 1: the first outcome won (api labels only)


@dataclass(slots=True)
class QuoteData:
    paths: list[MarketPath]
    skipped: dict[str, int]
    known_issues: list[str]


def _open_csv(path: Path) -> Iterator[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"quotes data {path}: cannot read it ({exc})") from None


def _ts(text: str) -> float:
    for fmt in _TS_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    raise ValueError(text)


def _price(text: str) -> int | None:
    """YES pips, None for an empty side; ValueError for anything that is not a price strictly inside (0, 1)."""
    if not text:
        return None
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if not price.is_finite() or not 0 < price < 1:
        raise ValueError(text)
    return pips_of(price)


def quote_files(path: Path) -> list[Path]:
    files = sorted(path.glob("quotes-*.csv.gz")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ConfigError(f"quotes data {path}: no quotes-*.csv.gz file there (expected the dataset's directory)")
    return files


def load_quotes(path: Path, *, count: int, slugs: Sequence[str] = (), labels: bool = True) -> QuoteData:
    """The paths of `slugs`, or of the `count` slugs whose two-sided quotes change most often (two passes over the
    files; the result is cached per file version, since `trader sim` builds its scenario twice)."""
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in quote_files(path))
    return _load_cached(stamp, path, count, tuple(slugs), labels)


@functools.lru_cache(maxsize=4)
def _load_cached(
    stamp: tuple[tuple[str, int], ...], path: Path, count: int, slugs: tuple[str, ...], labels: bool
) -> QuoteData:
    files = quote_files(path)
    folder = path if path.is_dir() else path.parent
    chosen = list(dict.fromkeys(slugs))
    if not chosen:
        distinct: dict[str, set[tuple[str, str]]] = {}
        for file in files:
            for row in _open_csv(file):
                bid, ask = row.get("bid"), row.get("ask")
                if bid and ask:
                    distinct.setdefault(row.get("slug", ""), set()).add((bid, ask))
        chosen = sorted(distinct, key=lambda s: (-len(distinct[s]), s))[:count]
    paths = {slug: MarketPath(slug, "", slug) for slug in chosen}
    skipped = {"crossed": 0, "empty": 0, "bad": 0}
    for file in files:
        for row in _open_csv(file):
            found = paths.get(row.get("slug", ""))
            if found is None:
                continue
            found.category = found.category or row.get("category", "")
            try:
                quote = QuoteRow(_ts(row["ts"]), row.get("segment") or "0", _price(row["bid"]), _price(row["ask"]))
            except (KeyError, ValueError):
                skipped["bad"] += 1
                continue
            if quote.bid is None and quote.ask is None:
                skipped["empty"] += 1
            elif quote.bid is not None and quote.ask is not None and quote.ask <= quote.bid:
                skipped["crossed"] += 1
            else:
                found.rows.append(quote)
    missing = [slug for slug, p in paths.items() if not p.rows]
    if missing:
        raise ConfigError(f"quotes data {path}: no usable rows for {', '.join(missing)}")
    if (folder / "markets.csv.gz").is_file():
        for row in _open_csv(folder / "markets.csv.gz"):
            found = paths.get(row.get("slug", ""))
            if found is not None and row.get("question"):
                found.question = row["question"]
    if labels and (folder / "labels.csv.gz").is_file():
        for row in _open_csv(folder / "labels.csv.gz"):
            found = paths.get(row.get("slug", ""))
            if found is not None and row.get("source") == "api" and row.get("y") in ("0", "1"):
                found.label = int(row["y"])
    issues = []
    if (folder / "data_quality.csv").is_file():
        issues = [row.get("issue", "") for row in _open_csv(folder / "data_quality.csv")]
    for found in paths.values():
        found.rows.sort(key=lambda r: (segment_key(r.segment), r.ts))
    return QuoteData([paths[s] for s in chosen], skipped, issues)


def segment_key(segment: str) -> tuple[int, str]:
    """Segments in numeric order ("2" before "10"), other labels after, by text."""
    return (int(segment), "") if segment.isdigit() else (1 << 62, segment)


def coarsest_tick(rows: Sequence[QuoteRow]) -> Decimal:
    prices = [p for r in rows for p in (r.bid, r.ask) if p is not None]
    for tick in _TICKS:
        step = pips_of(tick)
        if all(p % step == 0 and step <= p <= PIPS_PER_ONE - step for p in prices):
            return tick
    return _TICKS[-1]


Step = tuple[float, int, QuoteRow | None, bool]


def poll_interval(paths: Sequence[MarketPath]) -> float:
    """The median time between two polls of a market within a segment (120 s when there are none)."""
    gaps = [
        b.ts - a.ts for path in paths for a, b in zip(path.rows, path.rows[1:], strict=False) if a.segment == b.segment
    ]
    return sorted(gaps)[len(gaps) // 2] if gaps else 120.0


def timeline(paths: Sequence[MarketPath], speed: float, *, resolve: bool = False) -> list[Step]:
    """(seconds after the start, market index, row, first row of its segment) in time order. Within a segment
    time is `(ts - segment start) / speed`; segments follow each other one median poll interval apart. With
    `resolve`, a labelled market gets a last step (row None) one interval after its last row."""
    spans: dict[str, tuple[float, float]] = {}
    for path in paths:
        for row in path.rows:
            low, high = spans.get(row.segment, (row.ts, row.ts))
            spans[row.segment] = (min(low, row.ts), max(high, row.ts))
    interval = poll_interval(paths)
    offsets: dict[str, float] = {}
    at = 0.0
    for segment in sorted(spans, key=segment_key):
        offsets[segment] = at
        at += (spans[segment][1] - spans[segment][0] + interval) / speed
    out: list[Step] = []
    for index, path in enumerate(paths):
        previous = None
        when = 0.0
        for row in path.rows:
            when = offsets[row.segment] + (row.ts - spans[row.segment][0]) / speed
            out.append((when, index, row, previous != row.segment))
            previous = row.segment
        if resolve and path.label is not None:
            out.append((when + interval / speed, index, None, False))
    out.sort(key=lambda item: (item[0], item[1]))
    return out


# -- the scenario --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotesParams:
    path: str = str(QUOTES_SLICE)
    speed: float = 60.0
    levels: int = 5
    slugs: str = ""
    labels: bool = True

    def check(self) -> None:
        if not self.speed > 0:
            raise ConfigError(f"quotes scenario parameter speed must be > 0, got {self.speed}")
        if not 1 <= self.levels <= 50:
            raise ConfigError(f"quotes scenario parameter levels must be in 1..50, got {self.levels}")


class QuotesScenario:
    def __init__(self, options: ScenarioOptions, params: QuotesParams) -> None:
        params.check()
        self.options = options
        self.params = params
        self.rng = random.Random(options.seed)
        slugs = [s.strip() for s in params.slugs.split(",") if s.strip()]
        self.data = load_quotes(
            Path(params.path).expanduser(), count=max(1, options.markets), slugs=slugs, labels=params.labels
        )
        self.stats: dict[str, int] = {"rows": 0, "segments": 0, "converged": 0, "resolved": 0, **self.data.skipped}
        self._markets: list[SimMarket] = []
        self._events: list[SimEvent] = []
        self._makers: list[LadderMaker] = []
        for path in self.data.paths:
            market = make_market(f"quotes:{path.slug}", question=path.question, tick_size=coarsest_tick(path.rows))
            event = SimEvent(
                event_id=market.gamma_id + "1", slug=path.slug, title=path.question, market_ids=(market.condition_id,)
            )
            market = _replace_slug(market, path.slug, event.event_id, path.category)
            self._markets.append(market)
            self._events.append(event)
            self._makers.append(
                LadderMaker(market, f"sim-quotes-{market.condition_id[2:14]}", self.rng, levels=params.levels)
            )
        self.schedule = timeline(self.data.paths, params.speed, resolve=params.labels)
        # A labelled market resolves one poll interval after it converged on its outcome.
        settle = poll_interval(self.data.paths) / params.speed
        self.resolutions = [(when + settle, index) for when, index, row, _ in self.schedule if row is None]

    @classmethod
    def from_options(cls, options: ScenarioOptions) -> QuotesScenario:
        return cls(options, parse_scenario_params(QuotesParams, "quotes", options.params))

    def listing(self) -> tuple[Sequence[SimMarket], Sequence[SimEvent]]:
        return self._markets, self._events

    @property
    def makers(self) -> list[LadderMaker]:
        return self._makers

    def setup(self, exchange: Exchange, now: float) -> None:
        for maker, path in zip(self._makers, self.data.paths, strict=True):
            first = path.rows[0]
            maker.quote(exchange, now, first.bid, first.ask, fresh=True)
        log.info(
            "sim_quotes_loaded",
            markets=len(self._markets),
            rows=len(self.schedule),
            skipped=self.data.skipped,
            known_issues=self.data.known_issues,
            attribution=ATTRIBUTION,
        )

    def converge(self, exchange: Exchange, index: int, now: float) -> None:
        """Converge a finished, labelled market on its outcome."""
        label = self.data.paths[index].label
        if label is None:
            return
        maker = self._makers[index]
        bid, ask = (9800, 9900) if label == 1 else (100, 200)
        maker.quote(exchange, now, bid, ask)
        self.stats["converged"] += 1

    def resolve(self, exchange: Exchange, index: int, now: float) -> None:
        """Resolve a labelled market on its real outcome (label 1: the first outcome, YES, won)."""
        label = self.data.paths[index].label
        market = self._markets[index]
        if label is None or exchange.resolution(market.condition_id) is not None:
            return
        exchange.resolve(market.condition_id, 0 if label == 1 else 1, now)
        self.stats["resolved"] += 1

    async def run(
        self, context: ScenarioContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        start = trio.current_time()
        shown = {index for index, _ in enumerate(self._makers)}  # the first rows were shown at setup
        plan = sorted(
            [(when, 0, index, row, fresh) for when, index, row, fresh in self.schedule]
            + [(when, 1, index, None, False) for when, index in self.resolutions],
            key=lambda step: (step[0], step[1], step[2]),
        )
        for when, kind, index, row, fresh in plan:
            if row is not None and index in shown:
                shown.discard(index)
                self.stats["rows"] += 1
                continue
            await trio.sleep_until(start + when)
            if kind == 1:
                self.resolve(context.exchange, index, context.now())
            elif row is None:
                self.converge(context.exchange, index, context.now())
            else:
                self._makers[index].quote(context.exchange, context.now(), row.bid, row.ask, fresh=fresh)
                self.stats["rows"] += 1
                self.stats["segments"] += fresh
        log.info("sim_quotes_replayed", **self.stats)


def _replace_slug(market: SimMarket, slug: str, event_id: str, category: str) -> SimMarket:
    return replace(market, slug=slug, event_id=event_id, description=f"{category or 'market'}: {ATTRIBUTION}")
