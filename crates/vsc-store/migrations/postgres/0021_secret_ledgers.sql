-- One second-factor ledger per holder (PostgreSQL): wrong second-factor codes (app/TOTP codes, SMS
-- codes of sign-in, enrolment, reset and mobile verification, emailed device codes) count here
-- across challenges. A window opens at the first counted failure and lasts 24 h; 10 failures in
-- one window lock the holder's cards, and no further code is checked until the window ends or an
-- RA unlock or passcode reset clears the row.
CREATE TABLE second_factor_ledger (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);

-- Portal sessions end after `portal.idle_minutes` without use.
ALTER TABLE holder_sessions ADD COLUMN last_used_at BIGINT;
UPDATE holder_sessions SET last_used_at = created_at;

-- A passwordless (push-only) login for an email that cannot log in (unknown, or no active card
-- with an authenticator) gets a login id all the same, which simply stays pending and expires: the
-- answer must not tell which emails have cards. Rows are deleted a day after they expire.
CREATE TABLE decoy_logins (
    token_hash    BYTEA PRIMARY KEY,
    email_hash    BYTEA NOT NULL,
    code_attempts BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX decoy_logins_email ON decoy_logins (email_hash, created_at);
CREATE INDEX decoy_logins_expiry ON decoy_logins (expires_at);
