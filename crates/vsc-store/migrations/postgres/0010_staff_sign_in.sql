-- RA staff sign-in to the vRA Manager (PostgreSQL): a password (Argon2id) set from a one-time link, a
-- TOTP second factor (sealed under the key-encryption key) set up at first sign-in, a throttle on
-- failed sign-ins, the sign-ins awaiting their TOTP step, and sessions.
ALTER TABLE staff ADD COLUMN password_hash TEXT;
ALTER TABLE staff ADD COLUMN sealed_totp BYTEA;
-- The last TOTP step accepted: each code works once.
ALTER TABLE staff ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
-- Failed sign-ins (reserved before each check, cleared by a success); at the limit sign-in locks.
ALTER TABLE staff ADD COLUMN sign_in_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE staff ADD COLUMN sign_in_locked_until BIGINT;

-- One-time links to set a staff member's password (SHA-256 of the token); a new link deletes the
-- older ones of the same account.
CREATE TABLE staff_password_links (
    token_hash BYTEA PRIMARY KEY,
    staff_id   TEXT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX staff_password_links_staff ON staff_password_links (staff_id);

-- A sign-in whose password was right, awaiting its TOTP code (or TOTP set-up, with the offered
-- secret sealed in `sealed_totp`).
CREATE TABLE staff_sign_ins (
    token_hash   BYTEA PRIMARY KEY,
    staff_id     TEXT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    sealed_totp  BYTEA,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX staff_sign_ins_staff ON staff_sign_ins (staff_id);

-- Portal sessions: ended by sign-out, or by idleness or age (checked against the clock).
CREATE TABLE staff_sessions (
    token_hash   BYTEA PRIMARY KEY,
    staff_id     TEXT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);
