-- Enrolment, holder credentials and sessions, and the transactional outbox (SQLite).
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT,
    body_text       TEXT NOT NULL,
    body_html       TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'local', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, seq);

CREATE TABLE security_questions (
    id     INTEGER PRIMARY KEY,
    text   TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL DEFAULT 1
);
INSERT INTO security_questions (id, text) VALUES
    (1, 'What was the name of your first pet?'),
    (2, 'In which town or city were you born?'),
    (3, 'What was the name of your first school?'),
    (4, 'What is your mother''s maiden name?'),
    (5, 'What was the make of your first car?'),
    (6, 'What is the name of the street you grew up on?'),
    (7, 'What was your childhood nickname?'),
    (8, 'What is the middle name of your oldest sibling?');

CREATE TABLE enrolments (
    card_id         TEXT PRIMARY KEY REFERENCES cards(id) ON DELETE CASCADE,
    token_hash      BLOB NOT NULL UNIQUE,
    invited_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    reminded_at     INTEGER,
    completed_at    INTEGER,
    passcode_hash   TEXT,
    answers         TEXT,
    mobile          TEXT,
    code_hash       BLOB,
    code_expires_at INTEGER,
    code_attempts   INTEGER NOT NULL DEFAULT 0,
    code_sent_at    INTEGER
);

CREATE TABLE holder_credentials (
    user_id             TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    passcode_hash       TEXT NOT NULL,
    sign_in_failures    INTEGER NOT NULL DEFAULT 0,
    sign_in_locked_until INTEGER,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE security_answers (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES security_questions(id),
    answer_hash TEXT NOT NULL,
    PRIMARY KEY (user_id, question_id)
);

CREATE TABLE holder_sessions (
    id          TEXT PRIMARY KEY,
    token_hash  BLOB NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    INTEGER
);
CREATE INDEX holder_sessions_user ON holder_sessions (user_id);

CREATE TABLE sign_ins (
    token_hash   BLOB PRIMARY KEY,
    user_id      TEXT REFERENCES users(id) ON DELETE CASCADE,
    code_hash    BLOB,
    expires_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    completed_at INTEGER,
    created_at   INTEGER NOT NULL
);

CREATE TABLE directory_accounts (
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'active')),
    created_at   INTEGER NOT NULL,
    activated_at INTEGER,
    PRIMARY KEY (user_id, name)
);
