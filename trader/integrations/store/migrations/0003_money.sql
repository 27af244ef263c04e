-- 0003: whose money these records are, the paper wallet, and where the risk day's PnL started.
--
-- A database keeps the records of ONE account scope: paper or live trading, on one venue, and live, one wallet
-- (`account_scope`, a single row written by the first run and checked by every later one: a run of another scope
-- is refused, so paper and live records never mix and `trader reconcile` compares live records only).

CREATE TABLE account_scope (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    mode             TEXT NOT NULL CHECK (mode IN ('paper', 'live')),
    venue            TEXT NOT NULL,           -- sim, polymarket
    wallet           TEXT NOT NULL,           -- live: the wallet's address, lower-case; paper: ''
    claimed_at_ns    BIGINT NOT NULL
);

-- The paper venue's wallet as of its last change: a restart continues from it, not from the starting cash.
CREATE TABLE paper_wallet (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    cash             TEXT NOT NULL,           -- pUSD, all of it
    reserved         TEXT NOT NULL,           -- pUSD held back by resting buys then
    updated_at_ns    BIGINT NOT NULL
);

-- The risk day's baseline: realized + unrealized PnL (since inception) when the day began. The day's PnL is
-- realized + unrealized - baseline, so a restart keeps counting the day's loss against the limit.
ALTER TABLE daily_pnl ADD COLUMN baseline TEXT NOT NULL DEFAULT '0';
