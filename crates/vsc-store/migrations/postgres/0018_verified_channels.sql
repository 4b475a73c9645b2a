-- Verified channels (PostgreSQL): a mobile number counts as a second factor only once the holder has
-- confirmed it with an SMS code (enrolment, or the Self-Service Portal after an RA change).
ALTER TABLE users ADD COLUMN mobile_verified_at BIGINT;

-- Holders who completed enrolment confirmed their mobile with the enrolment SMS code.
UPDATE users SET mobile_verified_at = (SELECT c.updated_at FROM holder_credentials c WHERE c.user_id = users.id)
WHERE mobile IS NOT NULL AND EXISTS (SELECT 1 FROM holder_credentials c WHERE c.user_id = users.id);

-- The pending code confirming a holder's mobile number (one per holder; single-use).
CREATE TABLE mobile_verifications (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    mobile     TEXT NOT NULL,
    code_hash  BYTEA NOT NULL,
    sent_at    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0
);
