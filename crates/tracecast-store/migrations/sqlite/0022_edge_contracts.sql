-- Providers' contracts with edge operators (issue 30, DESIGN.md "001" step
-- 1). An edge publishes its terms: the usage fee per delivery (fee_cents,
-- already there), a fee per period (period_fee_cents every period_days;
-- 0: none) and whether it is open to every provider without a contract.
-- Edges registered before contracts existed stay open (open_to_all = 1),
-- so an upgrade changes no designation; new edges are by contract unless
-- the administrator opens them.
ALTER TABLE edges ADD COLUMN open_to_all INTEGER NOT NULL DEFAULT 1;
ALTER TABLE edges ADD COLUMN period_fee_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE edges ADD COLUMN period_days INTEGER NOT NULL DEFAULT 0;

-- One row per contract ever signed; the terms are copied from the edge's
-- at signing. ended_at: when the provider ended it (NULL: in force).
-- periods_charged: periodic fees posted so far (the ledger's event ids
-- make each posting happen once whatever this says).
CREATE TABLE edge_contracts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id INTEGER NOT NULL REFERENCES providers (id),
    edge_id INTEGER NOT NULL REFERENCES edges (id),
    fee_cents INTEGER NOT NULL,
    period_fee_cents INTEGER NOT NULL,
    period_days INTEGER NOT NULL,
    signed_at INTEGER NOT NULL,
    ended_at INTEGER,
    periods_charged INTEGER NOT NULL DEFAULT 0
);
-- At most one contract in force per provider and edge.
CREATE UNIQUE INDEX edge_contracts_in_force ON edge_contracts (provider_id, edge_id)
    WHERE ended_at IS NULL;
