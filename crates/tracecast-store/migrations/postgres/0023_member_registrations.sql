-- A first-order applicant starts their registration themselves (issue 30,
-- DESIGN.md "004" claims 5 and 10): the attributes they declare and the
-- identity document they will show, kept as SHA-256 (no document number
-- is stored until an operator has checked it face to face). The
-- operator's admission at the desk completes it and removes the row.
CREATE TABLE member_registrations (
    user_id BIGINT PRIMARY KEY REFERENCES users (id),
    attributes TEXT NOT NULL,
    document_sha256 TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);
