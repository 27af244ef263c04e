"""The live `Capital` against the simulated venue over real loopback sockets: an EOA's own Polygon transactions
(the sim's JSON-RPC node) and Safe, proxy and deposit wallets through the sim's relayer; merges, redemptions,
refusals, reverts, stuck transactions, a restart, balances before and after, resolutions (won, lost, 50/50).
Time is trio's autojump MockClock: the sim mines blocks on the Trio clock."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from trader.config import Secret
from trader.domain.enums import OrderType
from trader.domain.numbers import Side
from trader.errors import ConfigError
from trader.venues.base import (
    Capital,
    CapitalOp,
    CapitalOpKind,
    CapitalOpState,
    CapitalOpStatus,
    Collateral,
    Resolution,
)
from trader.venues.polymarket.capital import ChainSettings, PolymarketCapital, UnknownCapitalOp, open_polymarket_capital
from trader.venues.polymarket.chain import (
    COLLATERAL_ADAPTER,
    NEG_RISK_COLLATERAL_ADAPTER,
    deposit_wallet_address,
    proxy_wallet_address,
    safe_wallet_address,
)
from trader.venues.polymarket.rest import AssetType, OrderPlaced, PolymarketRestClient, open_rest_client
from trader.venues.polymarket.signing import (
    POLY_1271,
    POLY_GNOSIS_SAFE,
    POLY_PROXY,
    SIGNATURE_TYPE_EOA,
    OrderSigner,
)
from trader.venues.sim.chain import ChainConfig
from trader.venues.sim.exchange import Accepted, ExchangeConfig, OrderRequest
from trader.venues.sim.markets import SimMarket, make_market, make_neg_risk_event
from trader.venues.sim.scenarios import StaticScenario
from trader.venues.sim.venue import SimConfig, SimVenue, open_sim_venue

D = Decimal
U = 1_000_000
KEY = "0x" + "5e" * 32
API_KEY = "relayer-key-do-not-log"
EOA = OrderSigner(KEY).address
MARKET = make_market("capital", question="Will the merge free the collateral?")
EVENT, NEG = make_neg_risk_event("capital:nr", title="Who merges", outcomes=("A", "B"))
_ids = itertools.count(1)


def funder_of(signature_type: int) -> str | None:
    derive: dict[int, Callable[[str], str]] = {
        POLY_PROXY: proxy_wallet_address,
        POLY_GNOSIS_SAFE: safe_wallet_address,
        POLY_1271: deposit_wallet_address,
    }
    return derive[signature_type](EOA) if signature_type in derive else None


@dataclass
class Harness:
    sim: SimVenue
    capital: PolymarketCapital
    signer: OrderSigner
    rest: PolymarketRestClient

    @property
    def wallet(self) -> str:
        return self.signer.funder

    def hold(self, market: SimMarket, yes: str, no: str, cash: str = "0") -> None:
        shares = {market.token_ids[0]: int(D(yes) * U), market.token_ids[1]: int(D(no) * U)}
        self.sim.exchange.fund(self.wallet, collateral=int(D(cash) * U), shares=shares)

    async def resolve(self, market: SimMarket, winner: str) -> None:
        """Through the sim's admin endpoint, as an operator would."""
        async with httpx.AsyncClient() as http:
            reply = await http.post(
                self.sim.urls.rest + "/_sim/resolve", json={"condition_id": market.condition_id, "winner": winner}
            )
        assert reply.status_code == 200, reply.text

    async def shares(self, market: SimMarket) -> tuple[Decimal, Decimal]:
        yes = await self.rest.balance_allowance(AssetType.CONDITIONAL, market.token_ids[0])
        no = await self.rest.balance_allowance(AssetType.CONDITIONAL, market.token_ids[1])
        return yes.balance, no.balance

    async def wait(self, op_id: str, *, until: CapitalOpState = CapitalOpState.CONFIRMED) -> CapitalOpStatus:
        with trio.fail_after(120):
            while True:
                status = await self.capital.op_status(op_id)
                if status.state is until or status.state is CapitalOpState.FAILED:
                    return status
                await trio.sleep(0.5)


def merge(market: SimMarket, amount: str) -> CapitalOp:
    return CapitalOp(
        kind=CapitalOpKind.MERGE,
        condition_id=market.condition_id,
        neg_risk=market.neg_risk,
        token_ids=market.token_ids,
        amounts=(D(amount), D(amount)),
    )


def redeem(market: SimMarket, yes: str, no: str) -> CapitalOp:
    return CapitalOp(
        kind=CapitalOpKind.REDEEM,
        condition_id=market.condition_id,
        neg_risk=market.neg_risk,
        token_ids=market.token_ids,
        amounts=(D(yes), D(no)),
    )


def sim_config() -> SimConfig:
    return SimConfig(
        scenario=StaticScenario([MARKET, *NEG], [EVENT]),
        exchange=ExchangeConfig(mined_after_secs=0.05, confirmed_after_secs=0.1),
        chain=ChainConfig(mining_delay_secs=2.0, block_time_secs=2.0),
        timer_period_secs=0.05,
    )


@asynccontextmanager
async def harness(
    signature_type: int = SIGNATURE_TYPE_EOA, *, settings: Mapping[str, object] | None = None
) -> AsyncIterator[Harness]:
    async with open_sim_venue(sim_config()) as sim, opened(sim, signature_type, settings) as h:
        yield h


@asynccontextmanager
async def opened(
    sim: SimVenue, signature_type: int, settings: Mapping[str, object] | None = None
) -> AsyncIterator[Harness]:
    signer = OrderSigner(KEY, signature_type=signature_type, funder=funder_of(signature_type))
    values: dict[str, object] = {
        "rpc_url": sim.urls.rpc,
        "relayer_url": sim.urls.relayer,
        "relayer_api_key": Secret(API_KEY),
        "relayer_api_key_address": EOA,
        "confirmations": 2,
    }
    values.update(settings or {})
    async with (
        open_rest_client(sim.urls.rest, signer, sim.api_keys.derive(signer.address, 0)) as rest,
        open_polymarket_capital(
            ChainSettings(**values),  # type: ignore[arg-type]
            signer,
            rest,
            gamma_url=sim.urls.gamma,
            wall_secs=sim.now,
        ) as capital,
    ):
        yield Harness(sim, capital, signer, rest)


def as_capital(capital: PolymarketCapital) -> Capital:
    """mypy checks here that the live adapter implements the port."""
    return capital


# ---------------------------------------------------------------------------------------------------------------
# EOA: its own transactions


async def test_eoa_merge_frees_collateral_once_confirmed(autojump_clock: trio.testing.MockClock) -> None:
    async with harness() as h:
        capital = as_capital(h.capital)
        h.hold(MARKET, "10", "7", cash="100")
        before = await capital.collateral()
        assert before == Collateral(balance=D(100), missing_allowances=())

        prepared = await h.capital.prepare_op(merge(MARKET, "6.5"))
        tx = h.sim.chain.transaction(prepared.op_id)
        assert tx is None  # prepared, not sent
        assert await h.capital.op_status(prepared.op_id) == CapitalOpStatus(
            op_id=prepared.op_id, state=CapitalOpState.NOT_FOUND
        )

        sent = await h.capital.send_op(prepared)
        assert (sent.state, sent.tx_hash) == (CapitalOpState.PENDING, prepared.op_id)
        tx = h.sim.chain.transaction(prepared.op_id)
        assert tx is not None
        assert (tx.sender, tx.to) == (EOA, COLLATERAL_ADAPTER)
        assert tx.gas == 234_000  # the sim's 180000 estimate x 1.3
        assert (tx.max_priority_fee_per_gas, tx.max_fee_per_gas) == (30 * 10**9, 90 * 10**9)  # 2 x base + tip

        pending = await h.capital.op_status(prepared.op_id)
        assert (pending.state, pending.message) == (CapitalOpState.PENDING, "pending")
        assert await h.shares(MARKET) == (D(10), D(7))  # nothing moves before it is mined

        status = await h.capital.op_status(prepared.op_id)
        with trio.fail_after(30):
            while status.message == "pending":
                await trio.sleep(0.5)
                status = await h.capital.op_status(prepared.op_id)
        assert status.state is CapitalOpState.PENDING
        assert "1 of 2 confirmations" in status.message
        assert await h.shares(MARKET) == (D("3.5"), D("0.5"))

        done = await h.wait(prepared.op_id)
        assert (done.state, done.tx_hash) == (CapitalOpState.CONFIRMED, prepared.op_id)
        assert await h.capital.collateral() == Collateral(balance=D("106.5"))

        again = await h.capital.send_op(prepared)  # the node already has it: its status, not a second merge
        assert again.state is CapitalOpState.CONFIRMED
        assert await h.shares(MARKET) == (D("3.5"), D("0.5"))


async def test_eoa_neg_risk_merge_goes_to_the_neg_risk_collateral_adapter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        h.hold(NEG[0], "4", "4")
        prepared = await h.capital.prepare_op(merge(NEG[0], "4"))
        await h.capital.send_op(prepared)
        tx = h.sim.chain.transaction(prepared.op_id)
        assert tx is not None
        assert tx.to == NEG_RISK_COLLATERAL_ADAPTER
        assert (await h.wait(prepared.op_id)).state is CapitalOpState.CONFIRMED
        assert await h.shares(NEG[0]) == (D(0), D(0))


@pytest.mark.parametrize(
    ("winner", "payouts", "paid"),
    [("yes", (D(1), D(0)), D(10)), ("no", (D(0), D(1)), D(4)), ("50-50", (D("0.5"), D("0.5")), D(7))],
    ids=["won", "lost", "fifty-fifty"],
)
async def test_eoa_redeems_a_resolved_market_at_its_payout(
    autojump_clock: trio.testing.MockClock, winner: str, payouts: tuple[Decimal, Decimal], paid: Decimal
) -> None:
    async with harness() as h:
        h.hold(MARKET, "10", "4")
        assert await h.capital.resolution(MARKET.condition_id) is None
        early = await h.capital.prepare_op(redeem(MARKET, "10", "4"))
        refused = await h.capital.send_op(early)  # the node says it would revert: not sent
        assert refused.state is CapitalOpState.FAILED
        assert "result for condition not received yet" in refused.message
        assert h.sim.chain.transaction(early.op_id) is None
        assert (await h.capital.op_status(early.op_id)).state is CapitalOpState.FAILED

        await h.resolve(MARKET, winner)
        assert await h.capital.resolution(MARKET.condition_id) == Resolution(
            condition_id=MARKET.condition_id, payouts=payouts
        )

        prepared = await h.capital.prepare_op(redeem(MARKET, "10", "4"))
        assert (await h.capital.send_op(prepared)).state is CapitalOpState.PENDING
        assert (await h.wait(prepared.op_id)).state is CapitalOpState.CONFIRMED
        assert await h.shares(MARKET) == (D(0), D(0))
        assert (await h.capital.collateral()).balance == paid


async def test_eoa_refused_reverted_and_never_confirming_transactions(autojump_clock: trio.testing.MockClock) -> None:
    async with harness() as h:
        h.hold(MARKET, "10", "10")

        too_much = await h.capital.prepare_op(merge(MARKET, "11"))
        refused = await h.capital.send_op(too_much)
        assert (refused.state, refused.message) == (
            CapitalOpState.FAILED,
            "would revert: ERC1155: insufficient balance for transfer",
        )

        h.sim.faults.arm_chain("refuse", source="rpc")
        prepared = await h.capital.prepare_op(merge(MARKET, "1"))
        status = await h.capital.send_op(prepared)
        assert (status.state, status.message) == (
            CapitalOpState.FAILED,
            "node: insufficient funds for gas * price + value",
        )
        assert (await h.capital.op_status(prepared.op_id)).state is CapitalOpState.FAILED
        assert h.sim.chain.transaction(prepared.op_id) is None

        h.sim.faults.arm_chain("revert", source="rpc", text="execution reverted: paused")
        reverted = await h.capital.prepare_op(merge(MARKET, "2"))
        assert (await h.capital.send_op(reverted)).state is CapitalOpState.PENDING
        failed = await h.wait(reverted.op_id)
        assert (failed.state, failed.message, failed.tx_hash) == (
            CapitalOpState.FAILED,
            "execution reverted: paused",
            reverted.op_id,
        )
        assert await h.shares(MARKET) == (D(10), D(10))  # balances unchanged

        h.sim.faults.arm_chain("stuck", source="rpc")
        stuck = await h.capital.prepare_op(merge(MARKET, "3"))  # the reverted one used its nonce: a new one
        assert (await h.capital.send_op(stuck)).state is CapitalOpState.PENDING
        await trio.sleep(600)
        still = await h.capital.op_status(stuck.op_id)
        assert (still.state, still.message) == (CapitalOpState.PENDING, "pending")
        assert await h.shares(MARKET) == (D(10), D(10))
        assert h.capital.statistics().refused == 2


async def test_a_fee_cap_below_the_base_fee_is_reported_stuck(autojump_clock: trio.testing.MockClock) -> None:
    caps: dict[str, object] = {
        "max_fee_per_gas_gwei": D(26),
        "max_priority_fee_per_gas_gwei": D(25),
        "min_priority_fee_per_gas_gwei": D(25),
    }
    async with harness(settings=caps) as h:  # the sim's base fee is 30 gwei
        h.hold(MARKET, "1", "1")
        prepared = await h.capital.prepare_op(merge(MARKET, "1"))
        assert (await h.capital.send_op(prepared)).state is CapitalOpState.PENDING
        await trio.sleep(60)
        status = await h.capital.op_status(prepared.op_id)
        assert status.state is CapitalOpState.PENDING
        assert status.message == "stuck: its fee cap 26 gwei is below the base fee 30 gwei"
        assert h.capital.statistics().fee_capped == 1


async def test_a_tip_under_the_chain_minimum_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    caps: dict[str, object] = {"max_priority_fee_per_gas_gwei": D(10), "min_priority_fee_per_gas_gwei": D(1)}
    async with harness(settings=caps) as h:
        h.hold(MARKET, "1", "1")
        prepared = await h.capital.prepare_op(merge(MARKET, "1"))
        status = await h.capital.send_op(prepared)
        assert status.state is CapitalOpState.FAILED
        assert status.message.startswith("node: transaction underpriced")


async def test_after_a_restart_an_operation_is_found_by_its_id(autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim_venue(sim_config()) as sim:
        async with opened(sim, SIGNATURE_TYPE_EOA) as first:
            first.hold(MARKET, "5", "5")
            prepared = await first.capital.prepare_op(merge(MARKET, "5"))
            await first.capital.send_op(prepared)
            never_sent = await first.capital.prepare_op(merge(MARKET, "1"))
        async with opened(sim, SIGNATURE_TYPE_EOA) as second:  # a new process: nothing in memory
            assert (await second.wait(prepared.op_id)).state is CapitalOpState.CONFIRMED
            assert (await second.capital.op_status(never_sent.op_id)).state is CapitalOpState.NOT_FOUND
            with pytest.raises(UnknownCapitalOp, match="not prepared by this process"):
                await second.capital.send_op(never_sent)
            assert await second.shares(MARKET) == (D(0), D(0))


# ---------------------------------------------------------------------------------------------------------------
# Proxy, Safe and deposit wallets: through the relayer


@pytest.mark.parametrize("signature_type", [POLY_GNOSIS_SAFE, POLY_PROXY, POLY_1271], ids=["safe", "proxy", "deposit"])
async def test_relayer_merge_and_redeem(autojump_clock: trio.testing.MockClock, signature_type: int) -> None:
    async with harness(signature_type) as h:
        assert h.wallet == funder_of(signature_type)
        h.hold(MARKET, "8", "5", cash="1")
        assert (await h.capital.collateral()).balance == D(1)  # the wallet's pUSD, not the EOA's

        prepared = await h.capital.prepare_op(merge(MARKET, "5"))
        sent = await h.capital.send_op(prepared)
        assert sent.state is CapitalOpState.PENDING
        assert sent.message.startswith("relayer transaction ")
        done = await h.wait(prepared.op_id)
        assert done.state is CapitalOpState.CONFIRMED
        assert done.message.startswith("relayer STATE_CONFIRMED")
        assert done.tx_hash is not None
        mined = h.sim.chain.transaction(done.tx_hash)
        assert mined is not None
        assert mined.to == h.wallet  # the relayer's transaction acts for the wallet
        assert await h.shares(MARKET) == (D(3), D(0))
        assert (await h.capital.collateral()).balance == D(6)

        await h.resolve(MARKET, "yes")
        redeemed = await h.capital.prepare_op(redeem(MARKET, "3", "0"))
        await h.capital.send_op(redeemed)
        assert (await h.wait(redeemed.op_id)).state is CapitalOpState.CONFIRMED
        assert await h.shares(MARKET) == (D(0), D(0))
        assert (await h.capital.collateral()).balance == D(9)


async def test_relayer_refusal_failure_and_restart(autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim_venue(sim_config()) as sim:
        async with opened(sim, POLY_GNOSIS_SAFE) as h:
            h.hold(MARKET, "4", "4")

            h.sim.faults.arm_chain("refuse", source="relayer", text="wallet busy: active action")
            refused = await h.capital.prepare_op(merge(MARKET, "1"))
            status = await h.capital.send_op(refused)
            assert (status.state, status.message) == (CapitalOpState.FAILED, "relayer: wallet busy: active action")

            too_much = await h.capital.prepare_op(merge(MARKET, "9"))  # the relayer's estimate fails it
            assert (await h.capital.send_op(too_much)).state is CapitalOpState.PENDING
            failed = await h.wait(too_much.op_id)
            assert failed.state is CapitalOpState.FAILED
            assert failed.message.endswith("execution reverted: ERC1155: insufficient balance for transfer")
            retry = await h.capital.prepare_op(merge(MARKET, "1"))  # the refused one again, same nonce: same id
            assert retry.op_id == refused.op_id

            h.sim.faults.arm_chain("revert", source="relayer", text="GS013")
            reverts = await h.capital.prepare_op(merge(MARKET, "1.5"))
            await h.capital.send_op(reverts)
            assert (await h.wait(reverts.op_id)).message.endswith("GS013")

            h.sim.faults.arm_chain("stuck", source="relayer")
            stuck = await h.capital.prepare_op(merge(MARKET, "2"))
            await h.capital.send_op(stuck)
            await trio.sleep(300)
            hanging = await h.capital.op_status(stuck.op_id)
            assert (hanging.state, hanging.message.split(" (")[0]) == (CapitalOpState.PENDING, "relayer STATE_EXECUTED")
            never_sent = await h.capital.prepare_op(merge(MARKET, "1"))
        async with opened(sim, POLY_GNOSIS_SAFE) as later:  # found again through its metadata
            assert (await later.capital.op_status(stuck.op_id)).state is CapitalOpState.PENDING
            assert (await later.capital.op_status(failed.op_id)).state is CapitalOpState.FAILED
            assert (await later.capital.op_status(never_sent.op_id)).state is CapitalOpState.NOT_FOUND
            assert (await later.capital.op_status(refused.op_id)).state is CapitalOpState.NOT_FOUND  # never reached it
            assert await later.shares(MARKET) == (D(4), D(4))


async def test_a_proxy_merge_the_node_says_would_revert_is_not_submitted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness(POLY_PROXY) as h:
        h.hold(MARKET, "1", "1")
        prepared = await h.capital.prepare_op(merge(MARKET, "2"))
        status = await h.capital.send_op(prepared)
        assert (status.state, status.message) == (
            CapitalOpState.FAILED,
            "would revert: ERC1155: insufficient balance for transfer",
        )
        assert h.capital.relayer.requests == 1  # the relay payload only: nothing submitted


async def test_relayer_wallets_need_the_relayer_key() -> None:
    async with open_sim_venue(sim_config()) as sim:
        signer = OrderSigner(KEY, signature_type=POLY_GNOSIS_SAFE, funder=funder_of(POLY_GNOSIS_SAFE))
        async with open_rest_client(sim.urls.rest, signer) as rest:
            with pytest.raises(ConfigError, match="TRADER_CHAIN__RELAYER_API_KEY"):
                async with open_polymarket_capital(ChainSettings(rpc_url=sim.urls.rpc), signer, rest):
                    pass


async def test_no_secret_reaches_the_logs_or_the_statuses(autojump_clock: trio.testing.MockClock) -> None:
    async with harness(POLY_GNOSIS_SAFE) as h:
        h.hold(MARKET, "2", "2")
        with capture_logs() as logs:
            prepared = await h.capital.prepare_op(merge(MARKET, "2"))
            statuses = [await h.capital.send_op(prepared), await h.wait(prepared.op_id)]
        text = repr(logs) + repr(statuses) + repr(h.capital.settings) + repr(prepared)
        assert logs
        for secret in (KEY[2:], API_KEY):
            assert secret not in text


def test_settings_are_checked() -> None:
    for bad in (
        {"gas_limit_multiplier": D("0.9")},
        {"min_priority_fee_per_gas_gwei": D(50), "max_priority_fee_per_gas_gwei": D(40)},
        {"max_fee_per_gas_gwei": D(10)},
        {"confirmations": 0},
        {"proxy_gas_limit": 100},
        {"deposit_deadline_secs": 5},
        {"relayer_api_key_address": "not an address"},
    ):
        with pytest.raises(ValueError, match=r"must be|expected|address"):
            ChainSettings(**bad)
    assert ChainSettings().wei(D("30.5")) == 30_500_000_000
    shown = repr(ChainSettings(rpc_url="https://polygon.example:8545/v2/node-key?token=t", relayer_api_key=Secret("r")))
    assert "node-key" not in shown
    assert "token" not in shown
    assert "'https://polygon.example:8545/...'" in shown
    assert "relayer_api_key=Secret('***')" in shown
    assert str(ChainSettings()) == repr(ChainSettings())


@pytest.mark.parametrize("signature_type", [SIGNATURE_TYPE_EOA, POLY_GNOSIS_SAFE], ids=["eoa", "safe"])
async def test_complete_sets_bought_on_the_book_merge_back_into_collateral(
    autojump_clock: trio.testing.MockClock, signature_type: int
) -> None:
    """What the arbitrage does and then must do: buy YES and NO on the CLOB, then merge the sets to free the cash."""
    async with harness(signature_type) as h:
        h.sim.exchange.fund(h.wallet, collateral=100 * U)
        maker = "0x" + "6d" * 20
        yes, no = MARKET.token_ids
        h.sim.exchange.fund(maker, collateral=0, shares={yes: 10 * U, no: 10 * U})
        for token, price in ((yes, "0.48"), (no, "0.53")):  # asks summing over 1: they cannot cross each other
            resting = h.sim.exchange.submit(
                OrderRequest(
                    order_id=f"0x{next(_ids):064x}",
                    owner="sim-maker",
                    maker_address=maker,
                    token_id=token,
                    side=Side.SELL,
                    maker_amount=10 * U,
                    taker_amount=int(D(price) * 10 * U),
                ),
                h.sim.now(),
            )
            assert isinstance(resting, Accepted)
        for token, price in ((yes, "0.48"), (no, "0.53")):
            signed, _ = h.signer.limit_order_with_id(
                token_id=token, side=Side.BUY, price=D(price), size=D(10), tick_size=MARKET.tick_size, neg_risk=False
            )
            placed = await h.rest.post_order(signed, order_type=OrderType.FOK)
            assert isinstance(placed, OrderPlaced), placed
        await trio.sleep(1)  # the trades settle
        assert await h.shares(MARKET) == (D(10), D(10))
        assert (await h.capital.collateral()).balance == D("89.9")  # 1.01 per set is locked in the sets

        prepared = await h.capital.prepare_op(merge(MARKET, "10"))
        await h.capital.send_op(prepared)
        assert (await h.wait(prepared.op_id)).state is CapitalOpState.CONFIRMED
        assert await h.shares(MARKET) == (D(0), D(0))
        assert (await h.capital.collateral()).balance == D("99.9")
