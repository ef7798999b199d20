-- A/B variants as FLAC (issue 29): spliced frame by frame, so a copy is
-- FLAC like any high-tier copy. `bytes` is variant A's length, B's is
-- `b_bytes`, `data_offset` the metadata both share, and the index of every
-- frame's size is a blob of its own. Older rows are WAV.
ALTER TABLE ab_variants ADD COLUMN format TEXT NOT NULL DEFAULT 'wav';
ALTER TABLE ab_variants ADD COLUMN b_bytes BIGINT;
ALTER TABLE ab_variants ADD COLUMN frames BIGINT;
ALTER TABLE ab_variants ADD COLUMN index_blob_key TEXT;
ALTER TABLE ab_variants ADD COLUMN index_sha256 TEXT;
