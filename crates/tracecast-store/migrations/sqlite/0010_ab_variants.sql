-- A/B variants of a rendition (issue 10): the same audio marked twice at
-- ingest, stored as WAV files of equal length whose headers agree, and
-- where in them the data starts; an edge assembles a buyer's copy from
-- the two by unit.
CREATE TABLE ab_variants (
    content_id INTEGER NOT NULL REFERENCES contents (id) ON DELETE CASCADE,
    tier TEXT NOT NULL,
    units INTEGER NOT NULL,
    data_offset INTEGER NOT NULL,
    frame_bytes INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    a_blob_key TEXT NOT NULL,
    a_sha256 TEXT NOT NULL,
    b_blob_key TEXT NOT NULL,
    b_sha256 TEXT NOT NULL,
    PRIMARY KEY (content_id, tier)
);
