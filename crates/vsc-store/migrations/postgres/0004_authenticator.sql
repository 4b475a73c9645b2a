-- Authenticator devices, card logins (push / code / QR challenges), card sessions, relying apps
-- and their tickets (PostgreSQL).
ALTER TABLE organisations ADD COLUMN push_only BIGINT NOT NULL DEFAULT 0;
ALTER TABLE holder_credentials ADD COLUMN passcode_failures BIGINT NOT NULL DEFAULT 0;

CREATE TABLE devices (
    id                      TEXT PRIMARY KEY,
    user_id                 TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    device_type             TEXT NOT NULL,
    authenticator_type      TEXT NOT NULL,
    state                   TEXT NOT NULL CHECK (state IN ('pending_code', 'pending_registration', 'active')),
    code_hash               BYTEA,
    code_expires_at         BIGINT,
    code_attempts           BIGINT NOT NULL DEFAULT 0,
    registration_hash       BYTEA UNIQUE,
    registration_expires_at BIGINT,
    public_key              BYTEA,
    sealed_totp             BYTEA,
    totp_last_step          BIGINT NOT NULL DEFAULT 0,
    client_version          TEXT,
    platform                TEXT,
    platform_version        TEXT,
    created_at              BIGINT NOT NULL,
    registered_at           BIGINT,
    last_used_at            BIGINT
);
CREATE INDEX devices_user ON devices (user_id, state);

-- One-time ids of device-signed request tokens, kept until the token expires.
CREATE TABLE device_token_jtis (
    jti        TEXT PRIMARY KEY,
    device_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX device_token_jtis_expiry ON device_token_jtis (expires_at);

-- A login attempt that passed the first factor, with its challenge to the holder's devices.
CREATE TABLE card_logins (
    id                TEXT PRIMARY KEY,
    token_hash        BYTEA NOT NULL UNIQUE,
    purpose           TEXT NOT NULL CHECK (purpose IN ('card', 'portal')),
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    card_id           TEXT REFERENCES cards(id) ON DELETE CASCADE,
    method            TEXT NOT NULL CHECK (method IN ('push', 'code', 'qr')),
    state             TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
    nonce             TEXT NOT NULL,
    number            BIGINT,
    choices           TEXT,
    client            TEXT NOT NULL,
    ip                TEXT NOT NULL,
    code_attempts     BIGINT NOT NULL DEFAULT 0,
    decided_by        TEXT,
    decided_method    TEXT,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    decided_at        BIGINT,
    session_opened_at BIGINT
);
CREATE INDEX card_logins_user ON card_logins (user_id, state, created_at);

CREATE TABLE card_sessions (
    id           TEXT PRIMARY KEY,
    token_hash   BYTEA NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    card_id      TEXT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
    login_id     TEXT NOT NULL,
    role         TEXT NOT NULL,
    method       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX card_sessions_user ON card_sessions (user_id);

CREATE TABLE relying_apps (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    key_hash   BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE tickets (
    token_hash BYTEA PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES card_sessions(id) ON DELETE CASCADE,
    app_id     TEXT NOT NULL REFERENCES relying_apps(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
