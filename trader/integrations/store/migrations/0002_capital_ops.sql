-- 0002: merges and redemptions (chain operations), written ahead like order intents.
--
-- A row is written when the operation is prepared (its id known: the transaction hash, the relayer's hash, a paper
-- id), BEFORE it is sent, and updated as it moves: PREPARED (written, maybe not sent), PENDING (the chain or relayer
-- took it), CONFIRMED (balances changed), FAILED (refused, reverted, or never seen). At restart the engine asks the
-- venue about every PREPARED and PENDING one by its id instead of sending it again.

CREATE TABLE capital_ops (
    op_id          TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('MERGE', 'REDEEM')),
    condition_id   TEXT NOT NULL,
    neg_risk       BOOLEAN NOT NULL,
    yes_token_id   TEXT NOT NULL,
    no_token_id    TEXT NOT NULL,
    yes_amount     TEXT NOT NULL,          -- shares of each outcome the operation takes
    no_amount      TEXT NOT NULL,
    payout         TEXT NOT NULL,          -- pUSD it pays when confirmed (merge: the sets; redeem: what is owed)
    state          TEXT NOT NULL CHECK (state IN ('PREPARED', 'PENDING', 'CONFIRMED', 'FAILED')),
    tx_hash        TEXT,
    message        TEXT,
    created_at_ns  BIGINT NOT NULL,
    updated_at_ns  BIGINT NOT NULL
);
CREATE INDEX capital_ops_open ON capital_ops (state);
