-- Reserved content and accountability for leaks (DESIGN.md "004").

-- What is left of a member's standing after leaks below them (1: none).
ALTER TABLE members ADD COLUMN standing DOUBLE PRECISION NOT NULL DEFAULT 1.0;

-- Members of this order or lower receive the content freely; higher orders
-- need their upstream members' approval. NULL: not reserved.
ALTER TABLE contents ADD COLUMN reserved_up_to_order INTEGER;

CREATE TABLE reserved_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES members (user_id),
    content_id INTEGER NOT NULL REFERENCES contents (id),
    -- JSON array of the upstream members asked, referrer first
    asked TEXT NOT NULL,
    -- all or any, as the policy was when asked
    rule TEXT NOT NULL,
    -- pending, granted, refused
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    decided_at INTEGER
);
CREATE INDEX reserved_requests_by_user ON reserved_requests (user_id, content_id);

CREATE TABLE reserved_decisions (
    request_id INTEGER NOT NULL REFERENCES reserved_requests (id),
    approver_id INTEGER NOT NULL REFERENCES members (user_id),
    -- 1: approved, 0: refused
    approve INTEGER NOT NULL,
    decided_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, approver_id)
);

-- One row per leaked delivery a trace attributed: the same leak traced
-- again punishes nobody twice.
CREATE TABLE member_leaks (
    delivery_id INTEGER PRIMARY KEY REFERENCES deliveries (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    traced_by TEXT NOT NULL,
    -- JSON: the standings changed, [[user, factor], …]; [] when the member
    -- was already suspended
    penalties TEXT NOT NULL,
    traced_at INTEGER NOT NULL
);
