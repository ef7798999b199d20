-- The parties that settle with the service besides users and providers
-- (issue 30, DESIGN.md "001"): edge and home operators, stores and
-- building managers get accounts of their own, with a token and a box,
-- so they read their statements and pay what they owe. kind: operator,
-- store or manager; each kind has its own names (a store and an operator
-- may share one). The name is the ledger account's (`operator:NAME`),
-- the one edges, homes and kiosks name as their operator or payer.
CREATE TABLE businesses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    box_id INTEGER NOT NULL UNIQUE REFERENCES boxes (id),
    created_at INTEGER NOT NULL,
    UNIQUE (kind, name)
);

-- Every statement issued to a ledger account: its number, and the last
-- posting it covers (the next statement starts after it). sent_at: when
-- its message reached the account's box (NULL: to be sent; it is built
-- again from the same postings, so a resend is identical).
CREATE TABLE statements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    number INTEGER NOT NULL,
    after_posting INTEGER NOT NULL,
    through_posting INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    sent_at INTEGER,
    UNIQUE (account, number)
);
