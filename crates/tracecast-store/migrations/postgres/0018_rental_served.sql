-- Rentals stream (issue 25): a home counts the playback time it has
-- handed out of each rental (ranges of the file, HLS segments), paces it
-- by the viewing, and reports it with the viewing: the fee never covers
-- less than what the renter holds.
ALTER TABLE home_copies ADD COLUMN served_ms BIGINT NOT NULL DEFAULT 0;
