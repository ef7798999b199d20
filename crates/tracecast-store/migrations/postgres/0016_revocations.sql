-- Trust boundary (issue 25): a refund never leaves a usable copy. A
-- replaced delivery is revoked at its edge before any money moves: the
-- edge records when bytes of a copy first left it (served_at), keeps a
-- revocation row for every delivery the origin revoked (its tickets and
-- links are refused from then on; the row is the outbox of its report),
-- and the origin refunds only a copy that never left. When the replaced
-- copy had left, it keeps the sale and the deliveries that replaced it
-- are free (waived_by names the one that kept the sale).
ALTER TABLE edge_copies ADD COLUMN served_at BIGINT;
CREATE TABLE edge_revocations (
    edge_id BIGINT NOT NULL,
    delivery_id BIGINT NOT NULL,
    served BIGINT NOT NULL,
    copy_bytes BIGINT,
    copy_sha256 TEXT,
    copy_marked_at BIGINT,
    revoked_at BIGINT NOT NULL,
    reported_at BIGINT,
    PRIMARY KEY (edge_id, delivery_id)
);
ALTER TABLE deliveries ADD COLUMN waived_by BIGINT;
