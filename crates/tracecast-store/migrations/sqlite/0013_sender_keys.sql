-- Trust boundary (issue 25). An idempotency key belongs to the sender who
-- chose it: a post answers "already sent" only for that sender's own
-- earlier post with the key, so nobody can occupy another party's key
-- (a user posting "delivery-42" first no longer silences an edge's
-- report of delivery 42).
DROP INDEX messages_idempotency;
CREATE UNIQUE INDEX messages_idempotency ON messages (box_id, sender, idem_key);
