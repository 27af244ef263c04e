"""The console a person reads on a terminal: market names next to ids, the status line, hints; JSON off a terminal."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from trader.infra.logging import configure_logging
from trader.infra.names import NAMES

CONDITION = "0x" + "9e43a4f2" * 8
YES = "55502945439962839050665317487053920114001746763127495026803737401498070466782"
NO = "87545451108892911148656436686110176496169678367036369306805795822429979991298"
QUESTION = "Will it rain in Lisbon on Saturday?"


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does when a person runs `trader run`."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _named_market(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NO_COLOR", "1")  # the text, not the escape codes
    NAMES.add_market(CONDITION, QUESTION, {YES: "Yes", NO: "No"})
    yield
    structlog.reset_defaults()


def _console(emit: Any, *, stream: io.StringIO | None = None, fmt: Any = "auto") -> str:
    out = stream if stream is not None else Terminal()
    configure_logging(fmt=fmt, stream=out)
    emit(structlog.get_logger())
    structlog.reset_defaults()
    return out.getvalue()


def test_a_fill_names_its_market_and_outcome_next_to_a_short_token_id() -> None:
    text = _console(
        lambda log: log.info(
            "order_filled", client_order_id="1a250cd174b2850-sum_to_100-1-0", token_id=YES, price="0.3", size="47"
        )
    )
    assert f'5550…6782 "{QUESTION} · Yes"' in text
    assert YES not in text  # the 77 digits are gone
    assert "client_order_id=sum_to_100-1-0" in text  # the session prefix is noise on a console
    assert text.split()[1:3] == ["info", "order_filled"]


def test_ids_inside_mappings_and_lists_are_named_too() -> None:
    text = _console(
        lambda log: log.error(
            "arb_residual_exposure",
            residual={NO: "51.26"},
            reasons=["ARB_LEG_SHORT:1a250cd174b2850-sum_to_100-11-1"],
            condition_id=CONDITION,
        )
    )
    assert f'8754…1298 "{QUESTION} · No": 51.26' in text
    assert "ARB_LEG_SHORT:sum_to_100-11-1" in text
    assert f'0x9e43…a4f2 "{QUESTION}"' in text
    assert " ERR! " in text


def test_a_hint_says_what_to_do_on_its_own_line() -> None:
    text = _console(
        lambda log: log.warning("gamma_listing_incomplete", path="/markets", hint="raise markets.max_pages")
    )
    first, second = text.rstrip("\n").split("\n")
    assert "WARN" in first
    assert "gamma_listing_incomplete" in first
    assert "hint" not in first
    assert second.strip() == "→ raise markets.max_pages"


def test_the_status_event_is_one_line_with_state_money_fills_refusals_and_books() -> None:
    text = _console(
        lambda log: log.info(
            "status",
            state="HALTED",
            halt="drill, by the operator (HTTP /emergency-stop)",
            equity="1002.3123",
            cash="756.926061",
            locked="12",
            realized_pnl="3.269080096877",
            unrealized_pnl="-8.95",
            fills=39,
            refusals={"VENUE_FOK_NOT_FILLED": 7, "RISK_DUPLICATE_INTENT": 3},
            books="28/28 fresh",
        )
    )
    assert text.count("\n") == 1
    assert (
        "HALTED (drill, by the operator (HTTP /emergency-stop)) · equity 1,002.31 · cash 756.93 · locked 12.00 · "
        "PnL +3.27 realized, -8.95 unrealized · fills 39 · "
        "refused 10 (VENUE_FOK_NOT_FILLED 7, RISK_DUPLICATE_INTENT 3) · books 28/28 fresh"
    ) in text


def test_json_lines_off_a_terminal_and_either_can_be_forced() -> None:
    def emit(log: Any) -> None:
        log.info("order_filled", token_id=YES)

    piped = _console(emit, stream=io.StringIO())
    assert json.loads(piped)["token_id"] == YES  # machines get the whole id, and no names
    forced_json = _console(emit, fmt="json")
    assert json.loads(forced_json)["event"] == "order_filled"
    forced_console = _console(emit, stream=io.StringIO(), fmt="console")
    assert QUESTION in forced_console


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR")
    coloured = _console(lambda log: log.warning("something_odd"))
    assert "\x1b[" in coloured
    plain = _console(lambda log: log.warning("something_odd"), stream=io.StringIO(), fmt="console")
    assert "\x1b[" not in plain


def test_warnings_without_a_hint_of_their_own_still_say_what_to_do() -> None:
    text = _console(lambda log: log.error("trading_halted", reason="VENUE_AUTH_FAILED", auth_refusals=2))
    assert text.rstrip("\n").split("\n")[1].strip().startswith("→ check TRADER_API_KEY")
    store = _console(lambda log: log.error("trading_halted", reason="STORE_UNAVAILABLE"))
    assert "→ bring the database back: trading resumes by itself" in store
    assert "\n" not in _console(lambda log: log.info("order_filled")).rstrip("\n")  # nothing to do: no second line
