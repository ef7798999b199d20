-- The roaming server's audit log (DESIGN.md "002"): one row per source
-- licence converted (so a licence converts once), never a key.
CREATE TABLE roaming_conversions (
    source_id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    user_name TEXT NOT NULL,
    content_id BIGINT NOT NULL,
    from_system TEXT NOT NULL,
    to_system TEXT NOT NULL,
    licence_id TEXT NOT NULL,
    fee_cents BIGINT NOT NULL,
    -- how it came: user (brought by the user), issuer (asked by the issuer
    -- before delivering)
    way TEXT NOT NULL,
    converted_at BIGINT NOT NULL
);
CREATE INDEX roaming_conversions_by_user ON roaming_conversions (user_name);
