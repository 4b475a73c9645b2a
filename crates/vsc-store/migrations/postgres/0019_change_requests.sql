-- Dual control over an enrolled holder's identity (PostgreSQL): sensitive RA actions (email, mobile,
-- deleting the last active authenticator, unlock, restart, resume) are change requests that take
-- effect when a second staff member approves. `payload` holds what the action needs (JSON), so the
-- approval applies exactly what was asked; `detail` holds the old → new values shown to approvers.
CREATE TABLE change_requests (
    id                 TEXT PRIMARY KEY,
    org_id             TEXT NOT NULL REFERENCES organisations(id),
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    action             TEXT NOT NULL,
    target             TEXT NOT NULL,
    payload            TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    requested_by       TEXT NOT NULL,
    requested_by_email TEXT NOT NULL,
    requested_at       BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    decided_by_email   TEXT,
    decided_at         BIGINT,
    reason             TEXT
);
CREATE INDEX change_requests_org ON change_requests (org_id, state, requested_at);
CREATE INDEX change_requests_user ON change_requests (user_id, state);
-- One pending request per holder, action and target: a second one is refused, not queued.
CREATE UNIQUE INDEX change_requests_one_pending ON change_requests (user_id, action, target) WHERE state = 'pending';

-- "This was not me" links in the notices of approved requests: single-use, 7 days, stored as SHA-256.
CREATE TABLE not_me_links (
    token_hash        BYTEA PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    change_request_id TEXT NOT NULL REFERENCES change_requests(id) ON DELETE CASCADE,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    used_at           BIGINT
);
CREATE INDEX not_me_links_user ON not_me_links (user_id);

-- Per organisation: dual control on (the default) or off (an operator's decision, audited).
ALTER TABLE organisations ADD COLUMN dual_control BIGINT NOT NULL DEFAULT 1;
