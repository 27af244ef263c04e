-- 0005: active/standby leadership (`TRADER_HA__*`, PostgreSQL only; see docs/ha.md).
--
-- One row: the lease of the engine that may trade. Its holder also holds a PostgreSQL advisory lock on a connection
-- of its own; `epoch` (the fencing token) grows by one at every takeover. Times are the database server's clock
-- (nanoseconds since the Unix epoch), so engines on different hosts never compare their own clocks.
-- `released`: the holder stepped down cleanly (a successor need not wait out its lease);
-- `step_down`: an operator asked the holder to step down (`trader ha step-down`).

CREATE TABLE ha_lease (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    epoch            BIGINT NOT NULL,
    holder           TEXT NOT NULL,           -- the instance name of the holder (`ha.instance`)
    lease_ms         BIGINT NOT NULL,         -- the holder's lease: it stops sending this long after a renewal
    acquired_at_ns   BIGINT NOT NULL,
    renewed_at_ns    BIGINT NOT NULL,
    released         BOOLEAN NOT NULL,
    step_down        BOOLEAN NOT NULL
);

-- The epoch of the leader that wrote each intent (NULL without HA). The store refuses an intent from an older epoch.
ALTER TABLE order_intents ADD COLUMN epoch BIGINT;
