"""The `synthetic` scenario: seeded, reproducible markets moved by simulated makers.

Listing (`--markets N` standalone binary markets, plus two neg-risk events):
- N binary markets; every fourth one (at least one) is *unlinked* (independent YES and NO books), the only place a
  YES ask + NO ask < 1 gap can rest (complementary matching would cross it at once, on the real venue too);
- a complete neg-risk event with 3 outcomes (fair values sum to 1);
- an incomplete neg-risk event with 3 listed outcomes (Gamma `negRiskAugmented`; fair values sum to 0.85).

Motion, every `step_secs` (all randomness from `random.Random(seed)`):
- a maker per market quotes `levels` levels a side around a fair value that random-walks by one tick (in a
  neg-risk event one outcome's gain is another's loss, so the sum holds); changed levels are cancelled and
  re-posted, one level is sometimes resized -> steady `price_change` traffic;
- noise takers send small FAK orders (trades, `last_trade_price`, book re-sends);
- arbitrage gaps (`gap_rate_per_min`): on an unlinked market a YES ask and a NO ask summing to 1 − 2 ticks; on
  the complete neg-risk event YES asks one tick under each fair (sum 1 − 3 ticks); removed after `gap_ttl_secs`
  unless taken;
- dislocations (`dislocation_rate_per_min`): one market's fair jumps 3-8 ticks and reverts after
  `dislocation_ttl_secs` (in a neg-risk event this breaks the sum-to-1 for that time).

Lifecycle (seeded, from a random stream of its own: the motion's draws stay the same until a market ends or
appears):
- each standalone market lives `market_lifetime_secs` x a factor in [0.5, 1.5) (so resolutions are spread out; 8
  markets and the default 300 s resolve one about every 40 s at first), then resolves: YES wins with the
  probability of its fair value, and a `split_rate` share of resolutions are 50/50. Its maker stops quoting, the
  exchange cancels what rests, `market_resolved` goes out, Gamma and the CLOB show the outcome;
- a neg-risk event lives `event_lifetime_secs` (900 x [0.5, 1.5); 0: for ever), then resolves as one: one outcome's
  YES wins, chosen by the fair values (in the incomplete event the unlisted "other" may win: every listed NO wins),
  and a new event of the same kind is listed in its place, so baskets keep coming;
- new standalone markets are listed at `new_market_rate_per_min` (announced with `new_market`, in Gamma and the
  CLOB at once), each quoted by a maker of its own and living its own lifetime; an unlinked market that resolves
  is replaced at once by a new unlinked one, so binary gaps go on after the first markets resolve;
- `market_lifetime_secs=0` and `new_market_rate_per_min=0` turn it off.

`static` is the same listing and initial books with no motion (`moving=False`) and no lifecycle.

Exchange V3 markets (protocol-v2 position ids as token ids, orders signed for Exchange V3; protocol.md §11 item 9) are
listed on request, so that the default listing, its ids and the runs measured on it stay as they were:
`v3_markets=K` puts the last K standalone binary markets in the protocol-v2 namespace (module 1; with `--markets 4`,
K=1 is the unlinked market, where gaps rest), and `v3_neg_risk=true` the complete neg-risk event (module 2: still neg
risk, but its orders go to Exchange V3, where the neg-risk flag does not count).

Parameters (`--scenario-param key=value`): step_secs, levels, gap_rate_per_min, dislocation_rate_per_min,
taker_rate_per_min, gap_ttl_secs, dislocation_ttl_secs, moving, market_lifetime_secs, event_lifetime_secs,
new_market_rate_per_min, split_rate, v3_markets, v3_neg_risk.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal

import trio

from trader.domain.numbers import Side
from trader.errors import ConfigError
from trader.venues.sim.exchange import LIVE, Accepted, Exchange, OrderRequest, Rejected
from trader.venues.sim.markets import (
    PIPS_PER_ONE,
    UNITS_PER_ONE,
    FeeSchedule,
    SimEvent,
    SimMarket,
    hex_id,
    make_market,
    make_neg_risk_event,
    pips_of,
)
from trader.venues.sim.scenarios import ScenarioContext, ScenarioOptions

_MAKER_COLLATERAL = 10**9 * UNITS_PER_ONE
_MAKER_SHARES = 10**7 * UNITS_PER_ONE

_TOPICS = (
    "Will BTC close above its 30-day average this week",
    "Will it rain in Lisbon on Saturday",
    "Will the home team win tonight",
    "Will the central bank cut rates this month",
    "Will the new phone ship before the holidays",
    "Will the bill pass the senate vote",
    "Will the film top the weekend box office",
    "Will ETH trade above 5000 by Friday",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticParams:
    step_secs: float = 0.2
    levels: int = 5
    gap_rate_per_min: float = 12.0
    dislocation_rate_per_min: float = 2.0
    taker_rate_per_min: float = 12.0
    gap_ttl_secs: float = 5.0
    dislocation_ttl_secs: float = 5.0
    moving: bool = True
    market_lifetime_secs: float = 300.0
    event_lifetime_secs: float = 900.0
    new_market_rate_per_min: float = 1.0
    split_rate: float = 0.05
    v3_markets: int = 0
    v3_neg_risk: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, str], **overrides: object) -> SyntheticParams:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, object] = dict(overrides)
        for key, text in params.items():
            spec = known.get(key)
            if spec is None:
                raise ConfigError(f"unknown synthetic scenario parameter {key!r}; known: {', '.join(known)}")
            try:
                if spec.type == "bool":
                    values[key] = text.lower() in ("1", "true", "yes")
                elif spec.type == "int":
                    values[key] = int(text)
                else:
                    values[key] = float(text)
            except ValueError:
                raise ConfigError(f"scenario parameter {key}: not a number: {text!r}") from None
        result = cls(**values)  # type: ignore[arg-type]
        if result.step_secs <= 0 or not 1 <= result.levels <= 50:
            raise ConfigError("scenario parameters: step_secs must be > 0 and levels in 1..50")
        if min(result.market_lifetime_secs, result.event_lifetime_secs, result.new_market_rate_per_min) < 0:
            raise ConfigError(
                "scenario parameters: market_lifetime_secs, event_lifetime_secs, new_market_rate_per_min: >= 0"
            )
        if not 0 <= result.split_rate <= 1:
            raise ConfigError(f"scenario parameter split_rate must be in [0, 1], got {result.split_rate}")
        if result.v3_markets < 0:
            raise ConfigError("scenario parameter v3_markets must not be negative")
        return result


@dataclass(slots=True, eq=False)
class _Quoter:
    market: SimMarket
    fair: int  # YES pips
    owner: str
    address: str
    half_spread_ticks: int
    group: list[_Quoter] | None = None  # the other outcomes of a neg-risk event
    resting: dict[tuple[str, int], str] = field(default_factory=dict)
    sizes: dict[tuple[str, int], int] = field(default_factory=dict)
    jump: int = 0
    jump_until: float = 0.0


@dataclass(slots=True)
class _Gap:
    order_ids: list[tuple[str, str]]  # (owner, order id)
    until: float


class SyntheticScenario:
    def __init__(self, options: ScenarioOptions, params: SyntheticParams) -> None:
        self.options = options
        self.params = params
        self.rng = random.Random(options.seed)
        self._seq = 0
        self._markets: list[SimMarket] = []
        self._events: list[SimEvent] = []
        self._quoters: list[_Quoter] = []
        self._unlinked: list[_Quoter] = []
        self._complete_event: list[_Quoter] = []
        self._unlinked_at_start = 0  # new markets replace resolved unlinked ones, so binary gaps keep coming
        self._gaps: list[_Gap] = []
        self.stats = {"requotes": 0, "taker_orders": 0, "gaps": 0, "dislocations": 0, "resolved": 0, "listed": 0}
        # The lifecycle draws from a stream of its own: markets ending or appearing never change the motion's.
        self.life_rng = random.Random(f"synthetic-lifecycle:{options.seed}")
        self._lives: list[tuple[float, list[_Quoter]]] = []  # (lifetime factor x lifetime, the quoters that end)
        self._deadlines: list[tuple[float, list[_Quoter]]] = []  # (when, quoters) once set up
        self._listed = 0
        self._event_groups: list[tuple[bool, list[_Quoter], SimEvent]] = []  # (complete, quoters, event) listed
        self._build()

    @classmethod
    def from_options(cls, options: ScenarioOptions) -> SyntheticScenario:
        return cls(options, SyntheticParams.from_params(options.params))

    @classmethod
    def static_from_options(cls, options: ScenarioOptions) -> SyntheticScenario:
        return cls(options, SyntheticParams.from_params(options.params, moving=False))

    # -- listing ----------------------------------------------------------------------------------------------

    def _build(self) -> None:
        seed, rng = self.options.seed, self.rng
        count = max(1, self.options.markets)
        for i in range(count):
            unlinked = i % 4 == 3 or (count < 4 and i == count - 1 and count > 1)
            topic = _TOPICS[i % len(_TOPICS)] + ("" if i < len(_TOPICS) else f" (#{i + 1})")
            fees = FeeSchedule(rate=Decimal("0.02"), exponent=2) if i % 3 == 1 else FeeSchedule()
            key = f"synthetic:{seed}:{i}"
            v3 = i >= count - self.params.v3_markets
            market = make_market(key, question=topic + "?", fees=fees, complementary=not unlinked, protocol_v2=v3)
            event = SimEvent(
                event_id=market.gamma_id + "1",
                slug=market.slug,
                title=market.question,
                market_ids=(market.condition_id,),
            )
            market = _with_event(market, event.event_id)
            self._markets.append(market)
            self._events.append(event)
            quoter = self._quoter(market, rng.randrange(20, 81) * 100, 2 if unlinked else 1)
            (self._unlinked if unlinked else self._quoters).append(quoter)
            self._unlinked_at_start += unlinked
            self._lives.append((self._lifetime(self.params.market_lifetime_secs), [quoter]))
        for complete in (True, False):
            group = self._new_event(complete, f"{seed}")
            self._lives.append((self._lifetime(self.params.event_lifetime_secs), group))

    def _new_event(self, complete: bool, tag: str) -> list[_Quoter]:
        """A neg-risk event of three outcomes, complete (its fair values sum to 1: a basket arbitrage) or not (an
        unlisted "other" holds 15%), with a maker quoting each; added to the listing. Returns its quoters."""
        rng = self.rng
        title = f"Synthetic election {tag}: who wins" if complete else f"Synthetic award {tag}: who takes it"
        total = PIPS_PER_ONE if complete else PIPS_PER_ONE * 85 // 100
        names = ("Alpha", "Bravo", "Charlie")
        event, markets = make_neg_risk_event(
            f"synthetic:{self.options.seed}:{title}",
            title=title,
            outcomes=names,
            complete=complete,
            protocol_v2=complete and self.params.v3_neg_risk,
        )
        weights = [rng.randrange(20, 50) for _ in names]
        fairs = [total * w // sum(weights) // 100 * 100 for w in weights]
        fairs[0] += total - sum(fairs)
        group: list[_Quoter] = []
        for market, fair in zip(markets, fairs, strict=True):
            quoter = self._quoter(market, fair, 2)
            quoter.group = group
            group.append(quoter)
        self._markets.extend(markets)
        self._events.append(event)
        self._quoters.extend(group)
        if complete:
            self._complete_event = group
        self._event_groups.append((complete, group, event))
        return group

    def _lifetime(self, secs: float) -> float:
        """A lifetime of `secs` x [0.5, 1.5) (0: for ever)."""
        factor = 0.5 + self.life_rng.random()
        return secs * factor if secs > 0 else 0.0

    def _quoter(self, market: SimMarket, fair: int, half_spread: int) -> _Quoter:
        owner = f"sim-maker-{market.condition_id[2:10]}"
        return _Quoter(market, fair, owner, "0x" + hex_id(owner)[-40:], half_spread)

    def listing(self) -> tuple[Sequence[SimMarket], Sequence[SimEvent]]:
        return self._markets, self._events

    @property
    def all_quoters(self) -> list[_Quoter]:
        return self._quoters + self._unlinked

    # -- books ------------------------------------------------------------------------------------------------

    def setup(self, exchange: Exchange, now: float) -> None:
        if self.params.moving:
            self._deadlines = [(now + life, group) for life, group in self._lives if life > 0]
        for quoter in self.all_quoters:
            shares = dict.fromkeys(quoter.market.token_ids, _MAKER_SHARES) if not quoter.market.complementary else None
            exchange.fund(quoter.address, collateral=_MAKER_COLLATERAL, shares=shares)
            self._requote(exchange, quoter, now)
        for owner in ("sim-taker", "sim-arb-gap"):
            exchange.fund(_address(owner), collateral=_MAKER_COLLATERAL)

    def _new_order_id(self) -> str:
        self._seq += 1
        return hex_id(f"synthetic:{self.options.seed}:order:{self._seq}")

    def _desired(self, quoter: _Quoter) -> dict[tuple[str, int], tuple[int, Side, int]]:
        """level key -> (outcome index, side, price in that outcome's pips)."""
        tick = pips_of(quoter.market.tick_size)
        fair = min(max(quoter.fair + quoter.jump, 5 * tick), PIPS_PER_ONE - 5 * tick)
        fair -= fair % tick
        wanted: dict[tuple[str, int], tuple[int, Side, int]] = {}
        for i in range(self.params.levels):
            offset = (quoter.half_spread_ticks + i) * tick
            bid, ask = fair - offset, fair + offset
            if bid >= tick:
                wanted["b", i] = (0, Side.BUY, bid)
            if ask <= PIPS_PER_ONE - tick:
                if quoter.market.complementary:
                    wanted["a", i] = (1, Side.BUY, PIPS_PER_ONE - ask)  # a NO bid is the YES ask
                else:
                    wanted["a", i] = (0, Side.SELL, ask)
            if not quoter.market.complementary:
                no_fair = PIPS_PER_ONE - fair
                if no_fair - offset >= tick:
                    wanted["nb", i] = (1, Side.BUY, no_fair - offset)
                if no_fair + offset <= PIPS_PER_ONE - tick:
                    wanted["na", i] = (1, Side.SELL, no_fair + offset)
        return wanted

    def _requote(self, exchange: Exchange, quoter: _Quoter, now: float, *, resize: bool = False) -> None:
        wanted = self._desired(quoter)
        if resize and wanted:
            key = self.rng.choice(sorted(wanted))
            quoter.sizes[key] = self.rng.randrange(20, 500) * UNITS_PER_ONE
        stale = []
        for key, order_id in list(quoter.resting.items()):
            order = exchange.order(order_id)
            target = wanted.get(key)
            live = order is not None and order.status == LIVE
            same = (
                live
                and order is not None
                and target is not None
                and (order.outcome_index, order.side, order.limit_pips) == target
                and order.original == quoter.sizes.get(key)
                and order.matched == 0
            )
            if not same:
                if live:
                    stale.append(order_id)
                del quoter.resting[key]
        if stale:
            exchange.cancel(quoter.owner, stale, now)
        if not quoter.market.complementary:
            exchange.fund(quoter.address, shares=dict.fromkeys(quoter.market.token_ids, _MAKER_SHARES))
        for key, (outcome, side, price) in sorted(wanted.items()):
            if key in quoter.resting:
                continue
            size = quoter.sizes.setdefault(key, self.rng.randrange(50, 500) * UNITS_PER_ONE)
            result = exchange.submit(
                _limit(
                    self._new_order_id(),
                    quoter.owner,
                    quoter.address,
                    quoter.market,
                    outcome=outcome,
                    side=side,
                    price=price,
                    size=size,
                ),
                now,
            )
            if isinstance(result, Accepted) and result.status == "live":
                quoter.resting[key] = result.order_id
        self.stats["requotes"] += 1

    # -- motion -----------------------------------------------------------------------------------------------

    def step(self, exchange: Exchange, now: float) -> None:
        """One tick of the scenario (public so tests and benchmarks can drive it without a clock)."""
        rng, params = self.rng, self.params
        self._lifecycle(exchange, now)
        for gap in [g for g in self._gaps if g.until <= now]:
            self._gaps.remove(gap)
            for owner, order_id in gap.order_ids:
                exchange.cancel(owner, [order_id], now)
        for quoter in self.all_quoters:
            if quoter.jump and quoter.jump_until <= now:
                quoter.jump = 0
                self._requote(exchange, quoter, now)
        quoters = self.all_quoters
        if not quoters:  # every market resolved and none listed yet
            return
        quoter = rng.choice(quoters)
        self._walk(quoter)
        self._requote(exchange, quoter, now, resize=rng.random() < 0.3)
        per_step = params.step_secs / 60
        if rng.random() < params.taker_rate_per_min * per_step:
            self._noise_trade(exchange, now)
        if rng.random() < params.gap_rate_per_min * per_step:
            self._inject_gap(exchange, now)
        if rng.random() < params.dislocation_rate_per_min * per_step:
            self._dislocate(exchange, now)

    # -- lifecycle --------------------------------------------------------------------------------------------

    def _lifecycle(self, exchange: Exchange, now: float) -> None:
        due = [entry for entry in self._deadlines if entry[0] <= now]
        for entry in due:
            self._deadlines.remove(entry)
            self._resolve(exchange, entry[1], now)
        rate = self.params.new_market_rate_per_min
        if rate > 0 and self.life_rng.random() < rate * self.params.step_secs / 60:
            self._list_market(exchange, now)

    def _resolve(self, exchange: Exchange, group: Sequence[_Quoter], now: float) -> None:
        """Resolve a standalone market (`group` of one) or a neg-risk event (its markets, one winner at most)."""
        rng = self.life_rng
        if len(group) == 1 and group[0].group is None:
            (quoter,) = group
            split = rng.random() < self.params.split_rate
            winners: list[int | None] = [None if split else (0 if rng.random() * PIPS_PER_ONE < quoter.fair else 1)]
        else:
            total = sum(q.fair for q in group)
            pick = rng.random() * PIPS_PER_ONE  # past the listed outcomes' total: "other" won (incomplete events)
            winner = next((i for i, q in enumerate(group) if (pick := pick - q.fair) < 0), None) if total else None
            winners = [0 if i == winner else 1 for i in range(len(group))]
        members = list(group)  # `group` may be the event's own list, shared with its quoters: never mutated
        self._quoters = [q for q in self._quoters if q not in members]
        self._unlinked = [q for q in self._unlinked if q not in members]
        self._complete_event = [q for q in self._complete_event if q not in members]
        for quoter, winner in zip(members, winners, strict=True):
            quoter.resting.clear()
            if exchange.resolution(quoter.market.condition_id) is None:
                exchange.resolve(quoter.market.condition_id, winner, now)
                self.stats["resolved"] += 1
        if len(self._unlinked) < self._unlinked_at_start and any(not q.market.complementary for q in members):
            self._list_market(exchange, now)  # an unlinked market ended: another takes its place at once
        for complete, event_group, _event in list(self._event_groups):
            if event_group is group:  # a neg-risk event ended: another of its kind is listed, so the baskets go on
                self._event_groups.remove((complete, event_group, _event))
                self._list_event(exchange, now, complete)

    def _list_event(self, exchange: Exchange, now: float, complete: bool) -> None:
        """A new neg-risk event while the sim runs, in Gamma and the CLOB at once, quoted and living its own life."""
        self._listed += 1
        group = self._new_event(complete, f"{self.options.seed} (new #{self._listed})")
        event = self._event_groups[-1][2]
        for quoter in group:
            exchange.list_market(quoter.market, now, event=event)
            exchange.fund(quoter.address, collateral=_MAKER_COLLATERAL)
            self._requote(exchange, quoter, now)
        life = self._lifetime(self.params.event_lifetime_secs)
        if life > 0:
            self._deadlines.append((now + life, group))
        self.stats["listed"] += 1

    def _list_market(self, exchange: Exchange, now: float) -> None:
        """A new standalone market with a maker of its own, living its own lifetime."""
        self._listed += 1
        n, seed = self._listed, self.options.seed
        topic = f"{_TOPICS[n % len(_TOPICS)]} (new #{n})"
        fees = FeeSchedule(rate=Decimal("0.02"), exponent=2) if n % 3 == 1 else FeeSchedule()
        unlinked = len(self._unlinked) < self._unlinked_at_start
        market = make_market(f"synthetic:{seed}:new:{n}", question=topic + "?", fees=fees, complementary=not unlinked)
        event = SimEvent(
            event_id=market.gamma_id + "1", slug=market.slug, title=market.question, market_ids=(market.condition_id,)
        )
        market = _with_event(market, event.event_id)
        exchange.list_market(market, now, event=event)
        quoter = self._quoter(market, self.life_rng.randrange(20, 81) * 100, 2 if unlinked else 1)
        self._markets.append(market)
        self._events.append(event)
        (self._unlinked if unlinked else self._quoters).append(quoter)
        exchange.fund(quoter.address, collateral=_MAKER_COLLATERAL)
        self._requote(exchange, quoter, now)
        life = self._lifetime(self.params.market_lifetime_secs)
        if life > 0:
            self._deadlines.append((now + life, [quoter]))
        self.stats["listed"] += 1

    def _walk(self, quoter: _Quoter) -> None:
        tick = pips_of(quoter.market.tick_size)
        low, high = 8 * tick, PIPS_PER_ONE - 8 * tick
        direction = self.rng.choice((-1, 1))
        if quoter.group:
            others = [q for q in quoter.group if q is not quoter]
            other = self.rng.choice(others)
            if low <= quoter.fair + direction * tick <= high and low <= other.fair - direction * tick <= high:
                quoter.fair += direction * tick
                other.fair -= direction * tick
        elif low <= quoter.fair + direction * tick <= high:
            quoter.fair += direction * tick

    def _noise_trade(self, exchange: Exchange, now: float) -> None:
        quoter = self.rng.choice(self.all_quoters)
        outcome = self.rng.choice((0, 1))
        token = quoter.market.token_ids[outcome]
        _bid, ask = exchange.best_prices(token)
        if ask is None:
            return
        size = self.rng.randrange(5, 60) * UNITS_PER_ONE
        request = _limit(
            self._new_order_id(),
            "sim-taker",
            _address("sim-taker"),
            quoter.market,
            outcome=outcome,
            side=Side.BUY,
            price=ask,
            size=size,
        )
        exchange.submit(replace(request, order_type="FAK"), now)
        self.stats["taker_orders"] += 1

    def _inject_gap(self, exchange: Exchange, now: float) -> None:
        owner, address = "sim-arb-gap", _address("sim-arb-gap")
        placed: list[tuple[str, str]] = []
        size = self.rng.randrange(20, 80) * UNITS_PER_ONE
        if self._unlinked and (not self._complete_event or self.rng.random() < 0.5):
            quoter = self.rng.choice(self._unlinked)
            tick = pips_of(quoter.market.tick_size)
            fair = quoter.fair + quoter.jump
            wallet = exchange.wallet(address)
            for token in quoter.market.token_ids:
                wallet.shares[token] = wallet.shares.get(token, 0) + size
            legs = ((0, fair - tick), (1, PIPS_PER_ONE - fair - tick))
            for outcome, price in legs:
                request = _limit(
                    self._new_order_id(),
                    owner,
                    address,
                    quoter.market,
                    outcome=outcome,
                    side=Side.SELL,
                    price=price,
                    size=size,
                )
                if _rests(exchange.submit(request, now)):
                    placed.append((owner, request.order_id))
        elif self._complete_event:
            for quoter in self._complete_event:
                tick = pips_of(quoter.market.tick_size)
                yes_ask = quoter.fair + quoter.jump - tick
                request = _limit(
                    self._new_order_id(),
                    owner,
                    address,
                    quoter.market,
                    outcome=1,
                    side=Side.BUY,
                    price=PIPS_PER_ONE - yes_ask,
                    size=size,
                )
                if _rests(exchange.submit(request, now)):
                    placed.append((owner, request.order_id))
        if placed:
            self._gaps.append(_Gap(placed, now + self.params.gap_ttl_secs))
            self.stats["gaps"] += 1

    def _dislocate(self, exchange: Exchange, now: float) -> None:
        quoter = self.rng.choice(self.all_quoters)
        tick = pips_of(quoter.market.tick_size)
        quoter.jump = self.rng.choice((-1, 1)) * self.rng.randrange(3, 9) * tick
        quoter.jump_until = now + self.params.dislocation_ttl_secs
        self._requote(exchange, quoter, now)
        self.stats["dislocations"] += 1

    async def run(
        self, context: ScenarioContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        if not self.params.moving:
            return
        start = trio.current_time()
        n = 0
        while True:
            n += 1
            await trio.sleep_until(start + n * self.params.step_secs)
            self.step(context.exchange, context.now())


def _address(owner: str) -> str:
    return "0x" + hex_id(owner)[-40:]


def _rests(result: Accepted | Rejected) -> bool:
    return isinstance(result, Accepted) and result.status == "live"


def _with_event(market: SimMarket, event_id: str) -> SimMarket:
    return replace(market, event_id=event_id)


def _limit(
    order_id: str, owner: str, address: str, market: SimMarket, *, outcome: int, side: Side, price: int, size: int
) -> OrderRequest:
    """A limit order in the signed-amount form (price in pips, size in base units)."""
    cash = size * price // PIPS_PER_ONE
    maker, taker = (cash, size) if side is Side.BUY else (size, cash)
    return OrderRequest(
        order_id=order_id,
        owner=owner,
        maker_address=address,
        token_id=market.token_ids[outcome],
        side=side,
        maker_amount=maker,
        taker_amount=taker,
    )
