-- Home servers and kiosks (DESIGN.md "001" steps 5-7), and the
-- double-entry ledger.
--
-- Homes and kiosks share one id space: the mark's home field names the
-- near-user server a copy passed through, whichever kind it is (ids below
-- 65536, checked by the store).
CREATE TABLE sites (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    operator TEXT NOT NULL,
    -- home: usage fee per delivery or rental; kiosk: agency fee per order
    fee_cents INTEGER NOT NULL,
    -- home: who pays the usage fee ("user" or a ledger account such as
    -- "manager:maple-court")
    payer TEXT NOT NULL,
    -- kiosk: JSON object of medium -> price in cents
    media TEXT NOT NULL,
    shipping_cents INTEGER NOT NULL,
    box_id INTEGER NOT NULL UNIQUE REFERENCES boxes (id),
    created_at INTEGER NOT NULL
);

-- How a delivery reaches its user: download, home (download from a home
-- server), rental (viewed from a home server) or kiosk (a disc).
ALTER TABLE deliveries ADD COLUMN mode TEXT NOT NULL DEFAULT 'download';
ALTER TABLE deliveries ADD COLUMN site_id INTEGER REFERENCES sites (id);
ALTER TABLE deliveries ADD COLUMN site_fee_cents INTEGER NOT NULL DEFAULT 0;
-- JSON: kiosk medium and fulfilment, rental tariff and period.
ALTER TABLE deliveries ADD COLUMN order_info TEXT NOT NULL DEFAULT '{}';
ALTER TABLE contents ADD COLUMN rental_tariff TEXT;

-- Double-entry: a transaction is the postings of one event, written once
-- (the event id is unique), and its postings sum to zero.
CREATE TABLE ledger_transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL UNIQUE,
    delivery_id INTEGER REFERENCES deliveries (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX ledger_transactions_by_delivery ON ledger_transactions (delivery_id);

-- amount_cents > 0 debits the account (it owes), < 0 credits it.
CREATE TABLE ledger_postings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL REFERENCES ledger_transactions (id),
    account TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    memo TEXT NOT NULL
);
CREATE INDEX ledger_postings_by_account ON ledger_postings (account);
CREATE INDEX ledger_postings_by_transaction ON ledger_postings (transaction_id);

-- The postings of 0002's ledger, one transaction per delivery.
INSERT INTO ledger_transactions (event, delivery_id, created_at)
    SELECT 'delivery-' || delivery_id || '/marked', delivery_id, MIN(created_at)
    FROM ledger GROUP BY delivery_id;
INSERT INTO ledger_postings (transaction_id, account, amount_cents, memo)
    SELECT t.id, l.debit, l.amount_cents, l.memo
    FROM ledger l JOIN ledger_transactions t ON t.delivery_id = l.delivery_id ORDER BY l.id;
INSERT INTO ledger_postings (transaction_id, account, amount_cents, memo)
    SELECT t.id, l.credit, -l.amount_cents, l.memo
    FROM ledger l JOIN ledger_transactions t ON t.delivery_id = l.delivery_id ORDER BY l.id;
DROP TABLE ledger;

-- A home server's copies: kept until delivered (download) or until the
-- rental ends, then deleted and reported.
CREATE TABLE home_copies (
    home_id INTEGER NOT NULL,
    delivery_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    content_id INTEGER NOT NULL,
    mode TEXT NOT NULL,
    file TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    filename TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    -- rentals: when the rental period ends (Unix ms)
    until_ms INTEGER NOT NULL,
    -- rentals: JSON list of [start, end] viewing sessions
    sessions TEXT NOT NULL DEFAULT '[]',
    -- set when the copy is deleted; the report is then due
    ended_at INTEGER,
    end_reason TEXT,
    reported_at INTEGER,
    PRIMARY KEY (home_id, delivery_id)
);

-- A kiosk's orders: the disc image written for each.
CREATE TABLE kiosk_orders (
    kiosk_id INTEGER NOT NULL,
    delivery_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    content_id INTEGER NOT NULL,
    medium TEXT NOT NULL,
    fulfilment TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    image TEXT,
    image_bytes INTEGER,
    image_sha256 TEXT,
    created_at INTEGER NOT NULL,
    reported_at INTEGER,
    PRIMARY KEY (kiosk_id, delivery_id)
);
