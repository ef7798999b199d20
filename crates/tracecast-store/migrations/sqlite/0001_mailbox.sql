-- Mailbox (DESIGN.md "003"): boxes, their tokens, messages, and the keys
-- idempotent consumers have applied. Times are Unix milliseconds.
CREATE TABLE boxes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    webhook TEXT,
    webhook_secret TEXT,
    created_at INTEGER NOT NULL
);

-- Only SHA-256 hashes of tokens are kept. box_id NULL is an administrator.
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    box_id INTEGER REFERENCES boxes (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- state: 0 pending, 1 processed, 2 deleted (a tombstone: body gone, row
-- kept so a repeated instruction or a retried post is recognised).
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    box_id INTEGER NOT NULL REFERENCES boxes (id) ON DELETE CASCADE,
    state INTEGER NOT NULL DEFAULT 0,
    media_type TEXT NOT NULL,
    body BLOB,
    length INTEGER NOT NULL,
    protected INTEGER NOT NULL DEFAULT 0,
    sender TEXT NOT NULL,
    idem_key TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    done_at INTEGER
);
CREATE INDEX messages_by_box ON messages (box_id, state, id);
CREATE INDEX messages_by_expiry ON messages (state, expires_at);
CREATE INDEX messages_by_done ON messages (state, done_at);
CREATE UNIQUE INDEX messages_idempotency ON messages (box_id, idem_key);

CREATE TABLE consumer_applied (
    consumer TEXT NOT NULL,
    key TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, key)
);
