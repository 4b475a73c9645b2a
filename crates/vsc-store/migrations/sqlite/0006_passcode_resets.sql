-- Forgotten-passcode reset links: emailed on request, on a card lock, or by an RA unlock (which
-- skips the security questions). Stored only as SHA-256; single-use; a new link voids the old.
-- The second factor is a push ('card_logins' row of purpose 'portal' named by login_id: SQLite
-- cannot alter the purpose CHECK) or an SMS code (code_hash) (SQLite).
CREATE TABLE passcode_resets (
    id                     TEXT PRIMARY KEY,
    token_hash             BLOB NOT NULL UNIQUE,
    user_id                TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    origin                 TEXT NOT NULL CHECK (origin IN ('request', 'locked', 'ra')),
    created_at             INTEGER NOT NULL,
    expires_at             INTEGER NOT NULL,
    used_at                INTEGER,
    voided_at              INTEGER,
    question_rounds_failed INTEGER NOT NULL DEFAULT 0,
    questions_passed_at    INTEGER,
    skip_questions         INTEGER NOT NULL DEFAULT 0,
    login_id               TEXT,
    code_hash              BLOB,
    code_expires_at        INTEGER,
    code_sent_at           INTEGER,
    code_attempts          INTEGER NOT NULL DEFAULT 0,
    factor_passed_at       INTEGER
);
CREATE INDEX passcode_resets_user ON passcode_resets (user_id, created_at);
