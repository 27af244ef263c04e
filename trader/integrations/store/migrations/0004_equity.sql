-- 0004: the account's equity over time, for the dashboard's history and `trader report`'s equity curve.
--
-- One row per sample (the running engine writes one a minute): what the account was worth at its marks, and how.
-- Amounts are exact decimal strings (pUSD); positions without a mark count at their cost, as in `/status` `money`.

CREATE TABLE equity_samples (
    ts_ns            BIGINT PRIMARY KEY,      -- when (UTC wall clock, ns)
    equity           TEXT NOT NULL,           -- cash + receivable + positions_value
    cash             TEXT NOT NULL,
    positions_value  TEXT NOT NULL,
    realized_pnl     TEXT NOT NULL,           -- since inception
    unrealized_pnl   TEXT NOT NULL            -- at the marks then
);
