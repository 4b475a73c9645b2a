-- RA staff sign-in to the vRA Manager (SQLite): a password (Argon2id) set from a one-time link, a
-- TOTP second factor (sealed under the key-encryption key) set up at first sign-in, a throttle on
-- failed sign-ins, the sign-ins awaiting their TOTP step, and sessions.
ALTER TABLE staff ADD COLUMN password_hash TEXT;
ALTER TABLE staff ADD COLUMN sealed_totp BLOB;
-- The last TOTP step accepted: each code works once.
ALTER TABLE staff ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
-- Failed sign-ins (reserved before each check, cleared by a success); at the limit sign-in locks.
ALTER TABLE staff ADD COLUMN sign_in_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE staff ADD COLUMN sign_in_locked_until INTEGER;

-- One-time links to set a staff member's password (SHA-256 of the token); a new link deletes the
-- older ones of the same account.
CREATE TABLE staff_password_links (
    token_hash BLOB PRIMARY KEY,
    staff_id   TEXT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX staff_password_links_staff ON staff_password_links (staff_id);

-- A sign-in whose password was right, awaiting its TOTP code (or TOTP set-up, with the offered
-- secret sealed in `sealed_totp`).
CREATE TABLE staff_sign_ins (
    token_hash   BLOB PRIMARY KEY,
    staff_id     TEXT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    sealed_totp  BLOB,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    completed_at INTEGER
);
CREATE INDEX staff_sign_ins_staff ON staff_sign_ins (staff_id);

-- Portal sessions: ended by sign-out, or by idleness or age (checked against the clock).
CREATE TABLE staff_sessions (
    token_hash   BLOB PRIMARY KEY,
    staff_id     TEXT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ended_at     INTEGER
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);
