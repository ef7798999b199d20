-- Production (issue 12). A purchase may carry the buyer's idempotency key:
-- a purchase retried after a lost answer gets the same delivery, never a
-- second one. A delivery replaced by another (its edge failed the buyer,
-- who was sent to another) names its replacement; its status becomes
-- superseded (nothing was billed) or refunded (the bill was reversed).
ALTER TABLE deliveries ADD COLUMN purchase_key TEXT;
ALTER TABLE deliveries ADD COLUMN replaced_by BIGINT;
CREATE UNIQUE INDEX deliveries_by_purchase_key ON deliveries (user_id, purchase_key);
