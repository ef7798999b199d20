-- An edge remembers which deliveries' copies were served for as long as
-- they may be replaced, apart from the kept copy, which expires (a copy
-- downloaded, then expired, then replaced, was still delivered).
CREATE TABLE edge_served (
    edge_id BIGINT NOT NULL,
    delivery_id BIGINT NOT NULL,
    served_at BIGINT NOT NULL,
    PRIMARY KEY (edge_id, delivery_id)
);
INSERT INTO edge_served (edge_id, delivery_id, served_at)
    SELECT edge_id, delivery_id, served_at FROM edge_copies WHERE served_at IS NOT NULL;
ALTER TABLE edge_copies DROP COLUMN served_at;
