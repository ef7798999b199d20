-- A/B variants of a rendition (issue 10): the same audio marked twice at
-- ingest, stored as WAV files of equal length whose headers agree, and
-- where in them the data starts; an edge assembles a buyer's copy from
-- the two by unit.
CREATE TABLE ab_variants (
    content_id BIGINT NOT NULL REFERENCES contents (id) ON DELETE CASCADE,
    tier TEXT NOT NULL,
    units BIGINT NOT NULL,
    data_offset BIGINT NOT NULL,
    frame_bytes BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    a_blob_key TEXT NOT NULL,
    a_sha256 TEXT NOT NULL,
    b_blob_key TEXT NOT NULL,
    b_sha256 TEXT NOT NULL,
    PRIMARY KEY (content_id, tier)
);
