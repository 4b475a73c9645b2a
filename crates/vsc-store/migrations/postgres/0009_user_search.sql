-- Users search for the RA (PostgreSQL): last activity, the earliest expiry of a user's live cards
-- (for sorting), a trigram-indexed search text per user so `ILIKE '%x%'` uses an index, and an
-- index per sortable column led by the organisation (staff always search within their
-- organisations). pg_trgm ships with PostgreSQL; creating it needs a role allowed to (superuser or
-- database owner on PostgreSQL 13+, where pg_trgm is a trusted extension).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE users ADD COLUMN last_active_at BIGINT;
-- Earliest expiry among the user's cards that are not revoked; kept by the triggers below.
ALTER TABLE users ADD COLUMN next_card_expiry BIGINT;
-- What the search box matches: `<FORENAME> <SURNAME> (<SUBJECTCN>)`, email, UUID and card serials.
ALTER TABLE users ADD COLUMN search_text TEXT NOT NULL DEFAULT '';

CREATE FUNCTION users_search_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_text := NEW.forename || ' ' || NEW.surname || ' (' || NEW.subject_cn || ') ' || NEW.email || ' '
        || NEW.id
        || COALESCE((SELECT ' ' || string_agg(c.serial, ' ' ORDER BY c.serial) FROM cards c WHERE c.user_id = NEW.id), '');
    -- `+ 0` keeps the planner from answering MIN by walking the whole `cards_expiry` index.
    NEW.next_card_expiry := (SELECT MIN(c.expires_at + 0) FROM cards c WHERE c.user_id = NEW.id AND c.state <> 'revoked');
    RETURN NEW;
END $$;
CREATE TRIGGER users_search_fill BEFORE INSERT OR UPDATE OF forename, surname, subject_cn, email, search_text
ON users FOR EACH ROW EXECUTE FUNCTION users_search_fill();

-- A card change recomputes its holder's search text and next expiry (the users trigger does the
-- work when `search_text` is written).
CREATE FUNCTION cards_search_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE users SET search_text = '' WHERE id = OLD.user_id;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.user_id <> OLD.user_id) THEN
        UPDATE users SET search_text = '' WHERE id = NEW.user_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER cards_search_touch AFTER INSERT OR DELETE OR UPDATE OF serial, user_id, state, expires_at
ON cards FOR EACH ROW EXECUTE FUNCTION cards_search_touch();

UPDATE users SET search_text = '';

CREATE INDEX users_search_trgm ON users USING gin (search_text gin_trgm_ops);
-- One index per sortable column, led by the organisation and ended by the id (the tie-break).
-- Missing values sort first ascending (as in SQLite).
CREATE INDEX users_org_name ON users (org_id, surname, forename, id);
CREATE INDEX users_org_email ON users (org_id, email_key, id);
CREATE INDEX users_org_created ON users (org_id, created_at, id);
CREATE INDEX users_org_last_active ON users (org_id, last_active_at NULLS FIRST, id);
CREATE INDEX users_org_card_expiry ON users (org_id, next_card_expiry NULLS FIRST, id);
CREATE INDEX cards_user_state ON cards (user_id, state, card_type);
