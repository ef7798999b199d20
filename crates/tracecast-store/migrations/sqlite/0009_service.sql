-- The service server of DESIGN.md "000": gateways (phones) as accounts
-- with a mailbox box and token, the device accounts it issues, the
-- devices registered through each gateway, numbers that name mailboxes,
-- and tus uploads of large attachments.
CREATE TABLE gateways (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    box_id INTEGER NOT NULL UNIQUE REFERENCES boxes (id),
    created_at INTEGER NOT NULL
);

-- Device accounts: the serial; the id with its check digit is derived
-- from it and kept for lookups.
CREATE TABLE service_accounts (
    serial INTEGER PRIMARY KEY,
    account TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL
);

CREATE TABLE service_devices (
    account TEXT NOT NULL REFERENCES service_accounts (account),
    gateway_id INTEGER NOT NULL REFERENCES gateways (id),
    model TEXT NOT NULL,
    hardware TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (account, gateway_id)
);

CREATE TABLE service_numbers (
    number TEXT PRIMARY KEY,
    box_name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- received: bytes durable in the spool file; blob_key is set when the
-- upload completed and its bytes moved to the blob store.
CREATE TABLE service_uploads (
    id TEXT PRIMARY KEY,
    gateway_id INTEGER NOT NULL REFERENCES gateways (id),
    length INTEGER NOT NULL,
    received INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL,
    filename TEXT NOT NULL,
    media_type TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    completed_at INTEGER,
    blob_key TEXT
);
CREATE INDEX service_uploads_expiry ON service_uploads (expires_at);
