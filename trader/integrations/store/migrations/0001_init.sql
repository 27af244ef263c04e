-- 0001: the engine's durable state.
--
-- Portable SQL (SQLite >= 3.24 and PostgreSQL): only TEXT, BIGINT, INTEGER and BOOLEAN columns, no
-- AUTOINCREMENT/SERIAL (keys come from the engine: ids, or (parent, seq)), upserts via ON CONFLICT.
-- Prices, sizes and amounts are exact decimal strings (TEXT), never floats. Times are BIGINT nanoseconds since
-- the Unix epoch (UTC wall clock, `ts_recv` style). No column ever holds a secret.

CREATE TABLE markets (
    condition_id        TEXT PRIMARY KEY,
    question            TEXT NOT NULL,
    slug                TEXT NOT NULL,
    yes_token_id        TEXT NOT NULL,
    no_token_id         TEXT NOT NULL,
    outcomes            TEXT NOT NULL,       -- JSON array of the two outcome names, token order
    tick_size           TEXT NOT NULL,
    min_order_size      TEXT NOT NULL,
    neg_risk            BOOLEAN NOT NULL,
    neg_risk_market_id  TEXT,
    fee_rate            TEXT NOT NULL,
    fee_exponent        TEXT NOT NULL,
    fee_taker_only      BOOLEAN NOT NULL,
    active              BOOLEAN NOT NULL,
    accepting_orders    BOOLEAN NOT NULL,
    closed              BOOLEAN NOT NULL,
    end_date_ns         BIGINT,
    updated_at_ns       BIGINT NOT NULL
);

-- Write-ahead log of orders: written BEFORE the order is sent. state: PENDING (written, outcome unknown),
-- ACKED (the venue answered: accepted, possibly filled), REJECTED (the venue refused it), NOT_SENT (it never left).
CREATE TABLE order_intents (
    client_order_id  TEXT PRIMARY KEY,
    order_id         TEXT UNIQUE,            -- locally computed EIP-712 digest (NULL in paper mode before sim ack)
    strategy         TEXT NOT NULL,
    condition_id     TEXT NOT NULL,
    token_id         TEXT NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price            TEXT NOT NULL,
    size             TEXT NOT NULL,
    order_type       TEXT NOT NULL,
    post_only        BOOLEAN NOT NULL,
    expiration       BIGINT NOT NULL,        -- unix seconds, GTD only (0 otherwise)
    group_id         TEXT,                   -- links the legs of one arbitrage intent
    created_at_ns    BIGINT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('PENDING', 'ACKED', 'REJECTED', 'NOT_SENT')),
    reason           TEXT,                   -- stable reject code when REJECTED / NOT_SENT
    resolved_at_ns   BIGINT
);
CREATE INDEX order_intents_pending ON order_intents (state);

CREATE TABLE orders (
    order_id         TEXT PRIMARY KEY,
    client_order_id  TEXT,
    strategy         TEXT,
    condition_id     TEXT,
    token_id         TEXT NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price            TEXT NOT NULL,
    original_size    TEXT NOT NULL,
    size_matched     TEXT NOT NULL,
    order_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    reason           TEXT,                   -- reason code of a rejection, cancellation or kill
    is_open          BOOLEAN NOT NULL,
    created_at_ns    BIGINT NOT NULL,
    updated_at_ns    BIGINT NOT NULL
);
CREATE INDEX orders_open ON orders (is_open);

-- Every state change of an order, in order (seq counts from 1 per order).
CREATE TABLE order_events (
    order_id         TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    status           TEXT NOT NULL,
    size_matched     TEXT NOT NULL,
    reason           TEXT,
    ts_ns            BIGINT NOT NULL,
    PRIMARY KEY (order_id, seq)
);

-- One row per (trade, our order). A trade's status changes over its life; FAILED rows are kept, never deleted.
CREATE TABLE trades (
    trade_id         TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    client_order_id  TEXT,
    token_id         TEXT NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price            TEXT NOT NULL,
    size             TEXT NOT NULL,
    fee              TEXT NOT NULL,
    fee_shares       TEXT NOT NULL,
    liquidity        TEXT NOT NULL,
    status           TEXT NOT NULL,
    match_time_ns    BIGINT NOT NULL,
    updated_at_ns    BIGINT NOT NULL,
    PRIMARY KEY (trade_id, order_id)
);

CREATE TABLE positions (
    token_id         TEXT PRIMARY KEY,
    quantity         TEXT NOT NULL,
    cost_basis       TEXT NOT NULL,          -- pUSD paid for the shares held, fees included
    realized_pnl     TEXT NOT NULL,
    fees_paid        TEXT NOT NULL,
    updated_at_ns    BIGINT NOT NULL
);

CREATE TABLE daily_pnl (
    day              TEXT PRIMARY KEY,        -- the risk day's start as YYYY-MM-DD (UTC, after the reset time)
    realized         TEXT NOT NULL,
    unrealized       TEXT NOT NULL,
    fees             TEXT NOT NULL,
    updated_at_ns    BIGINT NOT NULL
);

CREATE TABLE risk_events (
    event_id         TEXT PRIMARY KEY,
    ts_ns            BIGINT NOT NULL,
    kind             TEXT NOT NULL,           -- e.g. STATE_CHANGE, DAILY_LOSS_BREACH, EMERGENCY_STOP
    reason_code      TEXT NOT NULL,
    trading_state    TEXT,
    detail           TEXT NOT NULL            -- JSON object, secrets scrubbed
);

-- A market the sniper has traded: a restart must never snipe it twice.
CREATE TABLE sniped_markets (
    condition_id     TEXT PRIMARY KEY,
    token_id         TEXT NOT NULL,
    sniped_at_ns     BIGINT NOT NULL,
    detail           TEXT NOT NULL
);

-- Every opportunity a strategy or the analyzer saw, traded or not.
CREATE TABLE opportunities (
    opportunity_id   TEXT PRIMARY KEY,
    ts_ns            BIGINT NOT NULL,
    strategy         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    market           TEXT NOT NULL,           -- condition id, or neg-risk event id
    edge             TEXT NOT NULL,           -- expected profit per unit, after fees
    size             TEXT NOT NULL,
    traded           BOOLEAN NOT NULL,
    detail           TEXT NOT NULL            -- JSON object: legs, prices, reason not traded
);
CREATE INDEX opportunities_ts ON opportunities (ts_ns);
