-- Card operations: every certificate a card ever had (current and superseded) with its revocation
-- status, for the CRL and the OCSP responder; the signed CRLs; per-signature approvals pushed to
-- the holder's authenticators (PostgreSQL).
--
-- `certificates` has no foreign key to `cards`: a revoked certificate stays listed on the CRL until
-- it expires, even after its card or holder is deleted.
CREATE TABLE certificates (
    serial_hex        TEXT PRIMARY KEY,
    card_id           TEXT NOT NULL,
    purpose           TEXT NOT NULL CHECK (purpose IN ('authentication', 'signing')),
    cert_der          BYTEA NOT NULL,
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    issued_at         BIGINT NOT NULL,
    revoked_at        BIGINT,
    revocation_reason TEXT
);
CREATE INDEX certificates_card ON certificates (card_id);
CREATE INDEX certificates_revoked ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;
INSERT INTO certificates (serial_hex, card_id, purpose, cert_der, not_before, not_after, issued_at, revoked_at,
                          revocation_reason)
SELECT k.cert_serial, k.card_id, k.purpose, k.cert_der, k.not_before, k.not_after, c.issued_at, c.revoked_at,
       CASE WHEN c.revoked_at IS NULL THEN NULL ELSE 'unspecified' END
FROM card_keys k JOIN cards c ON c.id = k.card_id;

-- Signed CRLs, newest number last; GET /api/v1/pki/crl.der serves the newest.
CREATE TABLE crls (
    number      BIGINT PRIMARY KEY,
    der         BYTEA NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL
);

-- A signature waiting for the holder's Yes on an authenticator ("Sign document X?"). Approved
-- once, used once, for exactly this session, key and digest.
CREATE TABLE signature_approvals (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES card_sessions(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    card_id     TEXT NOT NULL,
    key_purpose TEXT NOT NULL CHECK (key_purpose IN ('authentication', 'signing')),
    operation   TEXT NOT NULL CHECK (operation IN ('raw', 'cades')),
    digest_hex  TEXT NOT NULL,
    document    TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    number      BIGINT,
    choices     TEXT,
    client      TEXT NOT NULL,
    ip          TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
    decided_by  TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    decided_at  BIGINT,
    used_at     BIGINT
);
CREATE INDEX signature_approvals_user ON signature_approvals (user_id, state, expires_at);
