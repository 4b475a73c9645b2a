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
