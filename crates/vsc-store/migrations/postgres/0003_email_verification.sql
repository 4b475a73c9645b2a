-- Holders confirm their email address (PostgreSQL).
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;

CREATE TABLE email_verifications (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX email_verifications_user ON email_verifications (user_id, created_at);
