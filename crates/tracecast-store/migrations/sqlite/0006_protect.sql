-- Protected content (DESIGN.md "002"): a content may be protected; each of
-- its renditions then has one content key, kept sealed under the origin's
-- key-wrapping key (never in the clear); every licence issued is recorded
-- without any key.
ALTER TABLE contents ADD COLUMN protected INTEGER NOT NULL DEFAULT 0;

CREATE TABLE content_keys (
    content_id INTEGER NOT NULL REFERENCES contents (id),
    tier TEXT NOT NULL,
    key_id TEXT NOT NULL UNIQUE,
    sealed_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (content_id, tier)
);

CREATE TABLE licences (
    id TEXT PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    content_id INTEGER NOT NULL REFERENCES contents (id),
    key_id TEXT NOT NULL,
    system TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    not_after INTEGER NOT NULL
);
CREATE INDEX licences_by_user ON licences (user_id);
