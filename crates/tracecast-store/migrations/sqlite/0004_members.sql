-- Members admitted by referral with trust (DESIGN.md "004"). A member is a
-- user; first-order members were checked face to face (identity_checks);
-- others were referred by a member of the order above, approved up the
-- chain (member_approvals).
CREATE TABLE members (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    member_order INTEGER NOT NULL,
    referrer_id INTEGER REFERENCES members (user_id),
    attribute_trust DOUBLE PRECISION NOT NULL,
    -- product of the approving levels' ratings (1 for first order)
    rating DOUBLE PRECISION NOT NULL,
    trust DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    -- JSON: occupation, place, history
    attributes TEXT NOT NULL,
    admitted_at INTEGER NOT NULL
);
CREATE INDEX members_by_referrer ON members (referrer_id);
CREATE INDEX members_by_order ON members (member_order, user_id);

CREATE TABLE identity_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id),
    operator TEXT NOT NULL,
    document TEXT NOT NULL,
    checked_at INTEGER NOT NULL
);

CREATE TABLE member_applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id),
    referrer_id INTEGER NOT NULL REFERENCES members (user_id),
    attributes TEXT NOT NULL,
    attribute_trust DOUBLE PRECISION NOT NULL,
    levels INTEGER NOT NULL,
    -- pending, admitted, refused
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE member_approvals (
    application_id INTEGER NOT NULL REFERENCES member_applications (id),
    level INTEGER NOT NULL,
    approver_id INTEGER NOT NULL REFERENCES members (user_id),
    rating DOUBLE PRECISION NOT NULL,
    approved_at INTEGER NOT NULL,
    PRIMARY KEY (application_id, level)
);
