-- Holders confirm their email address (SQLite).
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;

CREATE TABLE email_verifications (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX email_verifications_user ON email_verifications (user_id, created_at);
