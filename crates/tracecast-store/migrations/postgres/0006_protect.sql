-- Protected content (DESIGN.md "002"): a content may be protected; each of
-- its renditions then has one content key, kept sealed under the origin's
-- key-wrapping key (never in the clear); every licence issued is recorded
-- without any key.
ALTER TABLE contents ADD COLUMN protected BIGINT NOT NULL DEFAULT 0;

CREATE TABLE content_keys (
    content_id BIGINT NOT NULL REFERENCES contents (id),
    tier TEXT NOT NULL,
    key_id TEXT NOT NULL UNIQUE,
    sealed_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (content_id, tier)
);

CREATE TABLE licences (
    id TEXT PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    content_id BIGINT NOT NULL REFERENCES contents (id),
    key_id TEXT NOT NULL,
    system TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    not_after BIGINT NOT NULL
);
CREATE INDEX licences_by_user ON licences (user_id);
