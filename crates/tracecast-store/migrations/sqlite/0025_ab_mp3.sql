-- MP3 A/B variants beside the FLAC ones (issue 29): MPEG-1 Layer III at a
-- constant bit rate without the bit reservoir, frames of the same sizes at
-- the same offsets in both, so a copy is a splice of frames. NULL: the
-- content has none (made before, or ffmpeg was missing at ingest).
ALTER TABLE ab_variants ADD COLUMN mp3_a_blob_key TEXT;
ALTER TABLE ab_variants ADD COLUMN mp3_a_sha256 TEXT;
ALTER TABLE ab_variants ADD COLUMN mp3_b_blob_key TEXT;
ALTER TABLE ab_variants ADD COLUMN mp3_b_sha256 TEXT;
ALTER TABLE ab_variants ADD COLUMN mp3_bytes BIGINT;
ALTER TABLE ab_variants ADD COLUMN mp3_frames BIGINT;
ALTER TABLE ab_variants ADD COLUMN mp3_kbps BIGINT;
ALTER TABLE ab_variants ADD COLUMN mp3_index_blob_key TEXT;
ALTER TABLE ab_variants ADD COLUMN mp3_index_sha256 TEXT;
