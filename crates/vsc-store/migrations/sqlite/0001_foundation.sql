-- Foundation schema (SQLite). Times are Unix seconds; ids are UUID text.
CREATE TABLE system_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE ca_certificates (
    role       TEXT PRIMARY KEY CHECK (role IN ('root', 'issuing')),
    cert_der   BLOB NOT NULL,
    sealed_key BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE organisations (
    id         TEXT PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE organisation_email_domains (
    org_id TEXT NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    PRIMARY KEY (org_id, domain)
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organisations(id),
    forename   TEXT NOT NULL,
    surname    TEXT NOT NULL,
    email      TEXT NOT NULL,
    email_key  TEXT NOT NULL UNIQUE,
    mobile     TEXT,
    subject_cn TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX users_org ON users (org_id);

CREATE TABLE roles (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
INSERT INTO roles (code, name, is_default, created_at) VALUES
    ('R8000', 'Clinical Practitioner Access Role', 1, 0),
    ('R8003', 'Health Professional Access Role', 1, 0),
    ('R8008', 'Admin/Clinical Support Access Role', 1, 0);
CREATE TRIGGER roles_default_undeletable BEFORE DELETE ON roles WHEN OLD.is_default = 1
BEGIN SELECT RAISE(ABORT, 'default roles cannot be deleted'); END;

CREATE TABLE cards (
    id                TEXT PRIMARY KEY,
    serial            TEXT NOT NULL UNIQUE,
    user_id           TEXT NOT NULL REFERENCES users(id),
    card_type         TEXT NOT NULL CHECK (card_type IN ('v1', 'v2')),
    state             TEXT NOT NULL CHECK (state IN ('issued', 'active', 'locked', 'revoked')),
    key_algorithm     TEXT NOT NULL,
    issued_at         INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    revoked_at        INTEGER,
    revocation_reason TEXT
);
CREATE INDEX cards_user ON cards (user_id);
CREATE INDEX cards_expiry ON cards (expires_at);

CREATE TABLE card_roles (
    card_id   TEXT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
    role_code TEXT NOT NULL REFERENCES roles(code),
    PRIMARY KEY (card_id, role_code)
);

CREATE TABLE card_keys (
    card_id            TEXT NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
    purpose            TEXT NOT NULL CHECK (purpose IN ('authentication', 'signing')),
    algorithm          TEXT NOT NULL,
    public_key_der     BLOB NOT NULL,
    sealed_private_key BLOB NOT NULL,
    cert_der           BLOB NOT NULL,
    cert_serial        TEXT NOT NULL UNIQUE,
    not_before         INTEGER NOT NULL,
    not_after          INTEGER NOT NULL,
    PRIMARY KEY (card_id, purpose)
);

CREATE TABLE staff (
    id           TEXT PRIMARY KEY,
    email        TEXT NOT NULL,
    email_key    TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('manager', 'agent')),
    created_at   INTEGER NOT NULL
);

CREATE TABLE staff_organisations (
    staff_id TEXT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    org_id   TEXT NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    PRIMARY KEY (staff_id, org_id)
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    staff_id     TEXT NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    token_hash   BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE audit_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    org_id TEXT,
    target TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_org ON audit_events (org_id, id);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

-- Pre-generated key pairs (sealed like card keys) so slow algorithms (RSA) issue fast.
CREATE TABLE key_pool (
    id                 TEXT PRIMARY KEY,
    algorithm          TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX key_pool_algorithm ON key_pool (algorithm);
