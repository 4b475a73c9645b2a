-- Faster users search for text that matches thousands of users (SQLite).
--
-- 1. Each organisation gets a small stable number, and a user's search document number is
--    `(organisation number << 32) + n`: the documents of one organisation form one range of FTS5
--    rowids, so the trigram index itself drops matches outside the caller's organisations (FTS5
--    seeks within its posting lists for a rowid range) instead of each match being looked up.
-- 2. The search documents carry the sortable columns, so a page is sorted from this narrow table
--    and only the page's users are read from `users`.
ALTER TABLE organisations ADD COLUMN search_no INTEGER;
UPDATE organisations SET search_no = (SELECT COUNT(*) FROM organisations o WHERE o.rowid <= organisations.rowid);
CREATE UNIQUE INDEX organisations_search_no ON organisations (search_no);
CREATE TRIGGER organisations_search_no AFTER INSERT ON organisations WHEN NEW.search_no IS NULL
BEGIN
    UPDATE organisations SET search_no = (SELECT COALESCE(MAX(search_no), 0) + 1 FROM organisations)
    WHERE id = NEW.id;
END;

DROP TRIGGER users_search_insert;
DROP TRIGGER users_search_update;
DROP TRIGGER users_search_delete;
DROP TRIGGER cards_search_insert;
DROP TRIGGER cards_search_update;
DROP TRIGGER cards_search_delete;
DROP TABLE user_search;
DROP TABLE user_search_docs;

CREATE TABLE user_search_docs (
    -- (organisation search_no << 32) + n
    docid            INTEGER PRIMARY KEY,
    user_id          TEXT NOT NULL UNIQUE,
    org_id           TEXT NOT NULL,
    surname          TEXT NOT NULL,
    forename         TEXT NOT NULL,
    email_key        TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_active_at   INTEGER,
    next_card_expiry INTEGER
);
CREATE VIRTUAL TABLE user_search USING fts5 (body, tokenize = 'trigram');

INSERT INTO user_search_docs
    (docid, user_id, org_id, surname, forename, email_key, created_at, last_active_at, next_card_expiry)
SELECT (o.search_no << 32) + ROW_NUMBER() OVER (PARTITION BY u.org_id ORDER BY u.created_at, u.id),
       u.id, u.org_id, u.surname, u.forename, u.email_key, u.created_at, u.last_active_at, u.next_card_expiry
FROM users u JOIN organisations o ON o.id = u.org_id;
INSERT INTO user_search (rowid, body)
SELECT d.docid, s.body FROM user_search_docs d JOIN user_search_source s ON s.user_id = d.user_id;

-- A new user: the next number in the organisation's range (a rowid seek).
CREATE TRIGGER users_search_insert AFTER INSERT ON users
BEGIN
    INSERT INTO user_search_docs
        (docid, user_id, org_id, surname, forename, email_key, created_at, last_active_at, next_card_expiry)
    SELECT COALESCE((SELECT MAX(docid) FROM user_search_docs
                     WHERE docid >= (o.search_no << 32) AND docid < ((o.search_no + 1) << 32)),
                    o.search_no << 32) + 1,
           NEW.id, NEW.org_id, NEW.surname, NEW.forename, NEW.email_key, NEW.created_at, NEW.last_active_at,
           NEW.next_card_expiry
    FROM organisations o WHERE o.id = NEW.org_id;
    INSERT INTO user_search (rowid, body)
    SELECT d.docid, s.body FROM user_search_docs d JOIN user_search_source s ON s.user_id = d.user_id
    WHERE d.user_id = NEW.id;
END;
CREATE TRIGGER users_search_update AFTER UPDATE OF forename, surname, subject_cn, email, email_key ON users
WHEN NEW.org_id = OLD.org_id
BEGIN
    UPDATE user_search_docs SET surname = NEW.surname, forename = NEW.forename, email_key = NEW.email_key
    WHERE user_id = NEW.id;
    UPDATE user_search SET body = (SELECT body FROM user_search_source WHERE user_id = NEW.id)
    WHERE rowid = (SELECT docid FROM user_search_docs WHERE user_id = NEW.id);
END;
-- A user moved to another organisation: a document number in the new organisation's range.
CREATE TRIGGER users_search_move AFTER UPDATE OF org_id ON users WHEN NEW.org_id <> OLD.org_id
BEGIN
    DELETE FROM user_search WHERE rowid = (SELECT docid FROM user_search_docs WHERE user_id = OLD.id);
    DELETE FROM user_search_docs WHERE user_id = OLD.id;
    INSERT INTO user_search_docs
        (docid, user_id, org_id, surname, forename, email_key, created_at, last_active_at, next_card_expiry)
    SELECT COALESCE((SELECT MAX(docid) FROM user_search_docs
                     WHERE docid >= (o.search_no << 32) AND docid < ((o.search_no + 1) << 32)),
                    o.search_no << 32) + 1,
           NEW.id, NEW.org_id, NEW.surname, NEW.forename, NEW.email_key, NEW.created_at, NEW.last_active_at,
           NEW.next_card_expiry
    FROM organisations o WHERE o.id = NEW.org_id;
    INSERT INTO user_search (rowid, body)
    SELECT d.docid, s.body FROM user_search_docs d JOIN user_search_source s ON s.user_id = d.user_id
    WHERE d.user_id = NEW.id;
END;
CREATE TRIGGER users_search_sort_keys AFTER UPDATE OF last_active_at, next_card_expiry ON users
BEGIN
    UPDATE user_search_docs SET last_active_at = NEW.last_active_at, next_card_expiry = NEW.next_card_expiry
    WHERE user_id = NEW.id;
END;
CREATE TRIGGER users_search_delete AFTER DELETE ON users
BEGIN
    DELETE FROM user_search WHERE rowid = (SELECT docid FROM user_search_docs WHERE user_id = OLD.id);
    DELETE FROM user_search_docs WHERE user_id = OLD.id;
END;

-- Card changes: the holder's text (serials) and next expiry, as in migration 0009.
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

-- The audit trail of one user (user page, audit viewer's user filter): their events and their
-- cards' events by target, newest first, without walking the organisation's whole log.
CREATE INDEX audit_target ON audit_events (target, id);
