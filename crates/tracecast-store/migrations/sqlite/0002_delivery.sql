-- Marked delivery (DESIGN.md "001"). Accounts (providers, users, edges)
-- each own a mailbox box; their token is that box's token. Ids that are
-- written into marks stay within the mark's field widths (checked by the
-- store): providers and edges below 65536, users below 2^32.
CREATE TABLE providers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    box_id INTEGER NOT NULL UNIQUE REFERENCES boxes (id),
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    box_id INTEGER NOT NULL UNIQUE REFERENCES boxes (id),
    created_at INTEGER NOT NULL
);

-- last_seen: when the edge last reported its state (holdings, copies in
-- flight).
CREATE TABLE edges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    operator TEXT NOT NULL,
    fee_cents INTEGER NOT NULL,
    box_id INTEGER NOT NULL UNIQUE REFERENCES boxes (id),
    last_seen INTEGER,
    in_flight INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE contents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id INTEGER NOT NULL REFERENCES providers (id),
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    terms TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    source_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX contents_by_source ON contents (provider_id, source_sha256);

CREATE TABLE renditions (
    content_id INTEGER NOT NULL REFERENCES contents (id) ON DELETE CASCADE,
    tier TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (content_id, tier)
);

CREATE TABLE edge_holdings (
    edge_id INTEGER NOT NULL REFERENCES edges (id) ON DELETE CASCADE,
    content_id INTEGER NOT NULL,
    tier TEXT NOT NULL,
    PRIMARY KEY (edge_id, content_id, tier)
);

-- status: designated (ticket issued), marked (the edge reported the copy).
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    content_id INTEGER NOT NULL REFERENCES contents (id),
    tier TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id),
    provider_id INTEGER NOT NULL REFERENCES providers (id),
    edge_id INTEGER NOT NULL REFERENCES edges (id),
    price_cents INTEGER NOT NULL,
    edge_fee_cents INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    marked_at INTEGER,
    bytes INTEGER,
    sha256 TEXT
);
CREATE INDEX deliveries_by_mark ON deliveries (user_id, edge_id, provider_id);
CREATE INDEX deliveries_by_edge ON deliveries (edge_id, created_at);

-- Double-entry postings: every amount is debited from one account and
-- credited to another (accounts are "user:NAME", "provider:NAME",
-- "operator:NAME").
CREATE TABLE ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    debit TEXT NOT NULL,
    credit TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    memo TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX ledger_by_delivery ON ledger (delivery_id);

-- The edge's side: marked copies kept so a resumed download is served
-- the same bytes without marking again.
CREATE TABLE edge_copies (
    edge_id INTEGER NOT NULL,
    delivery_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    content_id INTEGER NOT NULL,
    tier TEXT NOT NULL,
    file TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    filename TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- when the origin accepted the delivery report (NULL: still to send)
    reported_at INTEGER,
    PRIMARY KEY (edge_id, delivery_id)
);
