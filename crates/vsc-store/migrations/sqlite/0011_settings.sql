-- Settings of the vRA Manager (SQLite): per-organisation login and reminder policy. NULL means
-- "use the service default from the configuration".
ALTER TABLE organisations ADD COLUMN number_matching INTEGER;
ALTER TABLE organisations ADD COLUMN session_minutes INTEGER;
ALTER TABLE organisations ADD COLUMN idle_minutes INTEGER;
ALTER TABLE organisations ADD COLUMN reminder_days INTEGER;

-- A card session keeps the idle limit it was opened with (its organisation's policy then);
-- sessions opened before this migration keep the default two hours.
ALTER TABLE card_sessions ADD COLUMN idle_seconds INTEGER NOT NULL DEFAULT 7200;
