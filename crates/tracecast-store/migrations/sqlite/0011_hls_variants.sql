-- A video's A/B variants as HLS (issue 10): the segment count and length,
-- variant A's playlist (durations; B's are the same), and every file's
-- length and SHA-256 (JSON, by path: a/init.mp4, a/seg_00000.m4s, ...).
-- The files are blobs under hls/{content}/.
CREATE TABLE hls_variants (
    content_id INTEGER PRIMARY KEY REFERENCES contents (id) ON DELETE CASCADE,
    tier TEXT NOT NULL,
    segments INTEGER NOT NULL,
    segment_secs INTEGER NOT NULL,
    playlist TEXT NOT NULL,
    manifest TEXT NOT NULL
);
