-- The links of earlier emails (the invitation, earlier reminders) stay valid until the enrolment
-- expires: a reminder adds a link rather than killing the one the holder may still open. A new
-- invitation (an RA resend) removes them all.
CREATE TABLE enrolment_links (
    token_hash BLOB PRIMARY KEY,
    card_id    TEXT NOT NULL REFERENCES enrolments(card_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE INDEX enrolment_links_card ON enrolment_links (card_id);
