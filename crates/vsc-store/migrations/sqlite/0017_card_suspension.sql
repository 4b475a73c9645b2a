-- no-transaction
-- Card suspension (SQLite): a card may be `suspended` (reversible: certificateHold on the CRL and in
-- OCSP) and remembers what resuming restores (`suspended_from`: active or locked), when and why.
-- A released certificate (taken off hold) is listed once more as removeFromCRL for one CRL lifetime.
--
-- SQLite cannot change a CHECK constraint, so `cards` is rebuilt by SQLite's 12-step procedure
-- (https://www.sqlite.org/lang_altertable.html#otheralter). Other tables reference cards(id) ON
-- DELETE CASCADE: with foreign keys on, dropping the old table would delete their rows. Foreign
-- keys can only be switched off outside a transaction, hence `no-transaction` above and the
-- explicit BEGIN/COMMIT here (run on one connection by the migrator).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

-- The view and the triggers that name `cards` go first (the triggers would go with the table;
-- the view is recreated so that the rename below checks nothing that points at a missing table).
DROP VIEW user_search_source;
DROP TRIGGER cards_search_insert;
DROP TRIGGER cards_search_update;
DROP TRIGGER cards_search_delete;

CREATE TABLE cards_new (
    id                TEXT PRIMARY KEY,
    serial            TEXT NOT NULL UNIQUE,
    user_id           TEXT NOT NULL REFERENCES users(id),
    card_type         TEXT NOT NULL CHECK (card_type IN ('v1', 'v2')),
    state             TEXT NOT NULL CHECK (state IN ('issued', 'active', 'locked', 'suspended', 'revoked')),
    key_algorithm     TEXT NOT NULL,
    issued_at         INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    revoked_at        INTEGER,
    revocation_reason TEXT,
    suspended_at      INTEGER,
    suspended_reason  TEXT,
    suspended_from    TEXT CHECK (suspended_from IN ('active', 'locked')),
    CHECK ((state = 'suspended') = (suspended_from IS NOT NULL))
);
INSERT INTO cards_new (id, serial, user_id, card_type, state, key_algorithm, issued_at, expires_at, revoked_at,
                       revocation_reason)
SELECT id, serial, user_id, card_type, state, key_algorithm, issued_at, expires_at, revoked_at, revocation_reason
FROM cards;
DROP TABLE cards;
-- The legacy rename only renames: nothing refers to `cards_new`, and the modern rename would
-- re-check every trigger and view of the schema while `cards` and the search view are missing.
PRAGMA legacy_alter_table = ON;
ALTER TABLE cards_new RENAME TO cards;
PRAGMA legacy_alter_table = OFF;

CREATE INDEX cards_user ON cards (user_id);
CREATE INDEX cards_expiry ON cards (expires_at);
CREATE INDEX cards_user_state ON cards (user_id, state, card_type);

-- As migration 0009 defined it.
CREATE VIEW user_search_source AS
SELECT u.id AS user_id,
       u.forename || ' ' || u.surname || ' (' || u.subject_cn || ') ' || u.email || ' ' || u.id
           || COALESCE((SELECT ' ' || group_concat(c.serial, ' ') FROM cards c WHERE c.user_id = u.id), '') AS body
FROM users u;

-- As migration 0014 last defined them.
CREATE TRIGGER cards_search_insert AFTER INSERT ON cards
BEGIN
    UPDATE user_search SET body = (SELECT body FROM user_search_source WHERE user_id = NEW.user_id)
    WHERE rowid = (SELECT docid FROM user_search_docs WHERE user_id = NEW.user_id);
    UPDATE users SET next_card_expiry =
        (SELECT MIN(c.expires_at + 0) FROM cards c WHERE c.user_id = NEW.user_id AND c.state <> 'revoked')
    WHERE id = NEW.user_id;
END;
CREATE TRIGGER cards_search_update AFTER UPDATE OF serial, user_id, state, expires_at ON cards
BEGIN
    UPDATE user_search SET body = (SELECT body FROM user_search_source WHERE user_id = OLD.user_id)
    WHERE rowid = (SELECT docid FROM user_search_docs WHERE user_id = OLD.user_id);
    UPDATE user_search SET body = (SELECT body FROM user_search_source WHERE user_id = NEW.user_id)
    WHERE rowid = (SELECT docid FROM user_search_docs WHERE user_id = NEW.user_id) AND NEW.user_id <> OLD.user_id;
    UPDATE users SET next_card_expiry =
        (SELECT MIN(c.expires_at + 0) FROM cards c WHERE c.user_id = users.id AND c.state <> 'revoked')
    WHERE id IN (OLD.user_id, NEW.user_id);
END;
CREATE TRIGGER cards_search_delete AFTER DELETE ON cards
BEGIN
    UPDATE user_search SET body = (SELECT body FROM user_search_source WHERE user_id = OLD.user_id)
    WHERE rowid = (SELECT docid FROM user_search_docs WHERE user_id = OLD.user_id);
    UPDATE users SET next_card_expiry =
        (SELECT MIN(c.expires_at + 0) FROM cards c WHERE c.user_id = OLD.user_id AND c.state <> 'revoked')
    WHERE id = OLD.user_id;
END;

-- When a certificate on hold was released (its card resumed): the CRLs of one CRL lifetime after
-- that list it as removeFromCRL.
ALTER TABLE certificates ADD COLUMN released_at INTEGER;
CREATE INDEX certificates_released ON certificates (released_at) WHERE released_at IS NOT NULL;

COMMIT;
PRAGMA foreign_keys = ON;
