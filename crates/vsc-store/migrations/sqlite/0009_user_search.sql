-- Users search for the RA (SQLite): last activity, the earliest expiry of a user's live cards (for
-- sorting), an FTS5 trigram index over one text per user, and an index per sortable column led by
-- the organisation (staff always search within their organisations).
ALTER TABLE users ADD COLUMN last_active_at INTEGER;
-- Earliest expiry among the user's cards that are not revoked; kept by the card triggers below
-- (`MIN(expires_at + 0)`: look the user's cards up by holder, never walk the expiry index).
ALTER TABLE users ADD COLUMN next_card_expiry INTEGER;

-- What the search box matches: `<FORENAME> <SURNAME> (<SUBJECTCN>)`, email, UUID and card serials.
CREATE VIEW user_search_source AS
SELECT u.id AS user_id,
       u.forename || ' ' || u.surname || ' (' || u.subject_cn || ') ' || u.email || ' ' || u.id
           || COALESCE((SELECT ' ' || group_concat(c.serial, ' ') FROM cards c WHERE c.user_id = u.id), '') AS body
FROM users u;

-- `users` has no INTEGER PRIMARY KEY, so its rowid may change on VACUUM: the FTS rows are keyed by
-- a stable document number of their own. The organisation is copied here so that matches outside
-- the caller's organisations are dropped before any `users` row is read.
CREATE TABLE user_search_docs (
    docid   INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE,
    org_id  TEXT NOT NULL
);
CREATE VIRTUAL TABLE user_search USING fts5 (body, tokenize = 'trigram');

INSERT INTO user_search_docs (user_id, org_id) SELECT id, org_id FROM users;
INSERT INTO user_search (rowid, body)
SELECT d.docid, s.body FROM user_search_docs d JOIN user_search_source s ON s.user_id = d.user_id;
UPDATE users SET next_card_expiry =
    (SELECT MIN(c.expires_at + 0) FROM cards c WHERE c.user_id = users.id AND c.state <> 'revoked');

CREATE TRIGGER users_search_insert AFTER INSERT ON users
BEGIN
    INSERT INTO user_search_docs (user_id, org_id) VALUES (NEW.id, NEW.org_id);
    INSERT INTO user_search (rowid, body)
    SELECT d.docid, s.body FROM user_search_docs d JOIN user_search_source s ON s.user_id = d.user_id
    WHERE d.user_id = NEW.id;
END;
CREATE TRIGGER users_search_update AFTER UPDATE OF forename, surname, subject_cn, email, org_id ON users
BEGIN
    UPDATE user_search_docs SET org_id = NEW.org_id WHERE user_id = NEW.id;
    UPDATE user_search SET body = (SELECT body FROM user_search_source WHERE user_id = NEW.id)
    WHERE rowid = (SELECT docid FROM user_search_docs WHERE user_id = NEW.id);
END;
CREATE TRIGGER users_search_delete AFTER DELETE ON users
BEGIN
    DELETE FROM user_search WHERE rowid = (SELECT docid FROM user_search_docs WHERE user_id = OLD.id);
    DELETE FROM user_search_docs WHERE user_id = OLD.id;
END;

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

-- One index per sortable column, led by the organisation and ended by the id (the tie-break).
CREATE INDEX users_org_name ON users (org_id, surname, forename, id);
CREATE INDEX users_org_email ON users (org_id, email_key, id);
CREATE INDEX users_org_created ON users (org_id, created_at, id);
CREATE INDEX users_org_last_active ON users (org_id, last_active_at, id);
CREATE INDEX users_org_card_expiry ON users (org_id, next_card_expiry, id);
CREATE INDEX cards_user_state ON cards (user_id, state, card_type);
