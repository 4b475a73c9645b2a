-- One second-factor ledger per holder (SQLite): wrong second-factor codes (app/TOTP codes, SMS
-- codes of sign-in, enrolment, reset and mobile verification, emailed device codes) count here
-- across challenges. A window opens at the first counted failure and lasts 24 h; 10 failures in
-- one window lock the holder's cards, and no further code is checked until the window ends or an
-- RA unlock or passcode reset clears the row.
CREATE TABLE second_factor_ledger (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL
);

-- Portal sessions end after `portal.idle_minutes` without use.
ALTER TABLE holder_sessions ADD COLUMN last_used_at INTEGER;
UPDATE holder_sessions SET last_used_at = created_at;

-- A passwordless (push-only) login for an email that cannot log in (unknown, or no active card
-- with an authenticator) gets a login id all the same, which simply stays pending and expires: the
-- answer must not tell which emails have cards. Rows are deleted a day after they expire.
CREATE TABLE decoy_logins (
    token_hash    BLOB PRIMARY KEY,
    email_hash    BLOB NOT NULL,
    code_attempts INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX decoy_logins_email ON decoy_logins (email_hash, created_at);
CREATE INDEX decoy_logins_expiry ON decoy_logins (expires_at);
