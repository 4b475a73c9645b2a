-- Authenticator PIN: an Argon2id hash per device, verified by the server; wrong PINs are counted
-- (5 lock the PIN until an RA PIN reset). PIN-reset tokens: issued by an RA, stored only as
-- SHA-256, single-use, for one device; a newer token voids older ones (SQLite).
ALTER TABLE devices ADD COLUMN pin_hash TEXT;
ALTER TABLE devices ADD COLUMN pin_failures INTEGER NOT NULL DEFAULT 0;

CREATE TABLE device_pin_resets (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL UNIQUE,
    issued_by   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    voided_at   INTEGER
);
CREATE INDEX device_pin_resets_device ON device_pin_resets (device_id, created_at);
