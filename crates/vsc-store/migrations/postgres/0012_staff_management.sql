-- Staff management in the vRA Manager (PostgreSQL): a disabled staff account cannot sign in, its
-- sessions and pending sign-ins are ended and its API tokens stop working until it is enabled.
ALTER TABLE staff ADD COLUMN disabled_at BIGINT;
-- Who may see whom: staff sharing an organisation.
CREATE INDEX staff_organisations_org ON staff_organisations (org_id, staff_id);
