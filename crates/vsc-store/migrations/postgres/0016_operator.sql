-- The trust model (PostgreSQL): operators above the organisations; an email domain belongs to one
-- organisation; organisation names are unique whatever their case.

-- A staff account may be an operator: organisations, their email domains and names, and the role
-- and security-question catalogues are theirs to change (and any staff account to administer).
ALTER TABLE staff ADD COLUMN operator BIGINT NOT NULL DEFAULT 0;

-- Where several organisations held the same email domain, the organisation created first keeps it.
DELETE FROM organisation_email_domains
WHERE EXISTS (
    SELECT 1 FROM organisation_email_domains d
    JOIN organisations o ON o.id = d.org_id
    JOIN organisations mine ON mine.id = organisation_email_domains.org_id
    WHERE d.domain = organisation_email_domains.domain
      AND d.org_id <> organisation_email_domains.org_id
      AND (o.created_at < mine.created_at OR (o.created_at = mine.created_at AND o.id < mine.id))
);
CREATE UNIQUE INDEX organisation_email_domains_domain ON organisation_email_domains (domain);

-- The case-folded name (written by the application); a later organisation whose name only
-- differed by case from an earlier one's is renamed "<name> (<code>)".
ALTER TABLE organisations ADD COLUMN name_key TEXT;
UPDATE organisations SET name_key = lower(name);
UPDATE organisations SET name = name || ' (' || code || ')', name_key = lower(name || ' (' || code || ')')
WHERE EXISTS (
    SELECT 1 FROM organisations o
    WHERE o.name_key = organisations.name_key AND o.id <> organisations.id
      AND (o.created_at < organisations.created_at
           OR (o.created_at = organisations.created_at AND o.id < organisations.id))
);
ALTER TABLE organisations ALTER COLUMN name_key SET NOT NULL;
CREATE UNIQUE INDEX organisations_name_key ON organisations (name_key);
