"""Funds: the wallet's collateral as the venue last reported it, kept current between reads by our own fills.

The risk gate's buying power (`trader.engine.risk`, `RISK_BUYING_POWER`) is

    available = balance - reserved by open buys - reserved by approved intents whose orders are not open yet

and this service gives it the `balance` and the allowances the venue says are missing:

- `refresh()` reads `collateral()` (`trader.venues.base.Capital`: live `GET /balance-allowance`, paper the paper
  venue's wallet) and notes the portfolio's cash at that moment;
- `balance` is that reading moved by the portfolio's cash since then: a fill changes it at once, exactly as it
  changed the wallet, without waiting for the next read;
- `run()` reads again `fill_refresh_delay_secs` after a fill (a burst of fills is one read), at once after a merge or
  a redemption (`on_event` hears the capital service's `SetsMerged`, `PositionsRedeemed`) or when asked through
  `request_refresh()`, and every `refresh_secs` (collateral that moved on its own: a deposit, a withdrawal).

Live, the venue's wallet is the truth about cash (`follow_venue`): each reading also sets the portfolio's cash to it,
so the engine's cash is the venue's however the two got apart (a restart, a fill or a merge the venue applied while
the engine was down and the engine applies again when it learns of it, a deposit). A difference found is logged
(`cash_corrected`) and counted (`cash_corrections`); between readings, our own fills move it as they move the wallet.

Until the first reading succeeds, `balance` is None and the gate refuses buys (nothing is known to spend). A failed
read keeps the last one (logged, counted, retried on the next timer or fill).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import NoReturn, Protocol

import structlog
import trio

from trader.domain.capital import PositionsRedeemed, SetsMerged
from trader.domain.events import OrderFilled, OrderFillReversed
from trader.domain.positions import Portfolio
from trader.errors import ConfigError
from trader.venues.base import Collateral
from trader.venues.errors import VenueError

__all__ = ["CollateralSource", "Funds", "FundsSettings", "FundsStatistics"]

log = structlog.get_logger(__name__)


class CollateralSource(Protocol):
    """What funds read: `Capital.collateral` (the live adapter, the paper venue)."""

    async def collateral(self) -> Collateral: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FundsSettings:
    """`TRADER_FUNDS__*`: how the wallet's collateral is read.

    - `refresh_secs` (30.0): read it this often even without fills (deposits, merges, redemptions).
    - `fill_refresh_delay_secs` (0.25): read it this long after a fill (the fills of a burst share one read).
    - `timeout_secs` (5.0): one read.
    """

    refresh_secs: float = 30.0
    fill_refresh_delay_secs: float = 0.25
    timeout_secs: float = 5.0

    def __post_init__(self) -> None:
        for name in ("refresh_secs", "timeout_secs"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise ConfigError(f"funds.{name} must be a positive number of seconds, got {value!r}")
        delay = self.fill_refresh_delay_secs
        if not (isinstance(delay, int | float) and 0 <= delay < math.inf):
            raise ConfigError(f"funds.fill_refresh_delay_secs must be a number of seconds >= 0, got {delay!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FundsStatistics:
    balance: Decimal | None  # the estimate now (None: never read)
    last_read: Decimal | None  # the venue's last answer
    missing_allowances: tuple[str, ...]
    reads: int
    read_failures: int
    cash_corrections: int = 0
    last_correction: Decimal | None = None  # the venue's minus the engine's cash, when it was last corrected


class Funds:
    """See the module docstring. One per engine; `portfolio` is the order manager's (its cash moves with fills)."""

    def __init__(
        self,
        source: CollateralSource,
        portfolio: Portfolio,
        settings: FundsSettings | None = None,
        *,
        follow_venue: bool = False,
    ) -> None:
        self.settings = settings or FundsSettings()
        self._follow_venue = follow_venue
        self._corrections = 0
        self._last_correction: Decimal | None = None
        self._source = source
        self._portfolio = portfolio
        self._read: Collateral | None = None
        self._cash_at_read = portfolio.cash
        self._reads = 0
        self._failures = 0
        self._wanted = trio.Event()
        self._after_fill = False

    @property
    def balance(self) -> Decimal | None:
        """The wallet's pUSD now: the last reading plus what our fills moved since (None before the first)."""
        if self._read is None:
            return None
        return self._read.balance + (self._portfolio.cash - self._cash_at_read)

    @property
    def missing_allowances(self) -> tuple[str, ...]:
        return () if self._read is None else self._read.missing_allowances

    async def refresh(self) -> Collateral:
        """Read the collateral now (within `timeout_secs`). Raises `VenueError` or `trio.TooSlowError`; the last
        reading stays in force then."""
        try:
            with trio.fail_after(self.settings.timeout_secs):
                read = await self._source.collateral()
        except (VenueError, trio.TooSlowError):
            self._failures += 1
            raise
        # No checkpoint between the answer and noting the cash: a fill applied meanwhile is not counted twice.
        if self._follow_venue and read.balance != self._portfolio.cash:
            difference = read.balance - self._portfolio.cash
            self._corrections += 1
            self._last_correction = difference
            log.info("cash_corrected", venue=str(read.balance), engine=str(self._portfolio.cash), diff=str(difference))
            self._portfolio.cash = read.balance
        self._read, self._cash_at_read = read, self._portfolio.cash
        self._reads += 1
        if read.missing_allowances:
            log.error("allowance_missing", missing=list(read.missing_allowances))
        return read

    def request_refresh(self) -> None:
        """Read the collateral again soon (non-blocking): after a merge or a redemption, or anything else that moved
        it without a fill of ours."""
        self._wanted.set()

    def on_event(self, event: object) -> None:
        """A listener (order manager, capital service): a fill or its reversal is followed by a read
        `fill_refresh_delay_secs` on; a merge or a redemption by one at once."""
        if isinstance(event, OrderFilled | OrderFillReversed):
            self._after_fill = True
            self._wanted.set()
        elif isinstance(event, SetsMerged | PositionsRedeemed):
            self._wanted.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        """Read once (started after it, successful or not), then on fills, on `request_refresh()` and every
        `refresh_secs`, until cancelled."""
        started = False
        failed_in_row = 0
        while True:
            try:
                await self.refresh()
                failed_in_row = 0
            except (VenueError, trio.TooSlowError) as exc:
                failed_in_row += 1
                log.error("collateral_read_failed", error=repr(exc), failures=self._failures)
            if not started:
                started = True
                task_status.started()
            # After a failed read, sooner: 1 s, doubling up to refresh_secs (without a reading nothing can be bought).
            wait = (
                self.settings.refresh_secs
                if not failed_in_row
                else min(self.settings.refresh_secs, 2.0 ** (failed_in_row - 1))
            )
            with trio.move_on_after(wait):
                await self._wanted.wait()
            self._wanted = trio.Event()
            if self._after_fill:
                self._after_fill = False
                await trio.sleep(self.settings.fill_refresh_delay_secs)

    def statistics(self) -> FundsStatistics:
        return FundsStatistics(
            balance=self.balance,
            last_read=None if self._read is None else self._read.balance,
            missing_allowances=self.missing_allowances,
            reads=self._reads,
            read_failures=self._failures,
            cash_corrections=self._corrections,
            last_correction=self._last_correction,
        )
