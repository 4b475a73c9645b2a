-- Self-Service Portal sign-in with a push to the holder's authenticator: the sign-in names the
-- `card_logins` row (purpose 'portal') whose approval, or an app code, completes it (SQLite).
ALTER TABLE sign_ins ADD COLUMN login_id TEXT;
