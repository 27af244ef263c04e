"""What must never happen to money reaches Slack: a venue refusal for lack of balance, exposure left unhedged."""

from __future__ import annotations

from decimal import Decimal

from trader.app.alerts import money_alert, money_alerts
from trader.domain.events import OrderRejected
from trader.engine.arbitrage import ArbResidual
from trader.integrations.slack import Alert, AlertKind
from trader.venues.errors import VenueRejectCode


def test_a_balance_refusal_and_a_residual_are_alerts_and_other_refusals_are_not() -> None:
    refusal = OrderRejected(
        client_order_id="c1", reason=VenueRejectCode.NOT_ENOUGH_BALANCE, ts=1.0, message="not enough balance"
    )
    alert = money_alert(refusal)
    assert alert is not None
    assert (alert.kind, alert.key) == (AlertKind.RISK, "venue_balance_rejection")
    assert "c1" in alert.text
    assert money_alert(OrderRejected(client_order_id="c2", reason=VenueRejectCode.FOK_NOT_FILLED, ts=1.0)) is None

    residual = ArbResidual(
        arb_id="a7", strategy="sum_to_100", residual={"1001": Decimal("2.5")}, reasons=("ARB_LEG_SHORT:x",), ts=2.0
    )
    alert = money_alert(residual)
    assert alert is not None
    assert alert.key == "arb_residual:a7"
    assert "2.5 of 1001" in alert.text

    sent: list[object] = []
    listener = money_alerts(sent.append)
    listener(refusal)
    listener(OrderRejected(client_order_id="c3", reason="RISK_MAX_NOTIONAL", ts=1.0))
    assert len(sent) == 1
    assert isinstance(sent[0], Alert)
