-- Faster users search for text that matches thousands of users (PostgreSQL): one GIN index over
-- the organisation and the search text's trigrams (btree_gin, shipped with PostgreSQL and trusted
-- since version 13), so the index itself drops matches outside the caller's organisations before
-- any row is read. It serves text without an organisation too (a GIN index answers any subset of
-- its columns), so it replaces the trigram-only index.
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX users_org_search_trgm ON users USING gin (org_id, search_text gin_trgm_ops);
DROP INDEX users_search_trgm;

-- The audit trail of one user (user page, audit viewer's user filter): their events and their
-- cards' events by target, newest first, without walking the organisation's whole log.
CREATE INDEX audit_target ON audit_events (target, id);
