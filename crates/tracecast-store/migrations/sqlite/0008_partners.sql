-- Roaming servers that buy at this origin on a user's behalf (DESIGN.md
-- "002" way 2, the package order). A partner owns a mailbox box like every
-- account; its token is that box's token.
CREATE TABLE partners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    box_id INTEGER NOT NULL UNIQUE REFERENCES boxes (id),
    created_at INTEGER NOT NULL
);

-- A user's consent that a partner buys for them, up to a total it may
-- spend; spent_cents grows with each order, in the same statement that
-- checks the limit.
CREATE TABLE partner_consents (
    user_id INTEGER NOT NULL REFERENCES users (id),
    partner_id INTEGER NOT NULL REFERENCES partners (id),
    limit_cents INTEGER NOT NULL,
    spent_cents INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, partner_id)
);
