-- Card suspension (PostgreSQL): a card may be `suspended` (reversible: certificateHold on the CRL
-- and in OCSP) and remembers what resuming restores (`suspended_from`: active or locked), when and
-- why. A released certificate (taken off hold) is listed once more as removeFromCRL for one CRL
-- lifetime.
ALTER TABLE cards DROP CONSTRAINT cards_state_check;
ALTER TABLE cards ADD CONSTRAINT cards_state_check
    CHECK (state IN ('issued', 'active', 'locked', 'suspended', 'revoked'));
ALTER TABLE cards ADD COLUMN suspended_at BIGINT;
ALTER TABLE cards ADD COLUMN suspended_reason TEXT;
ALTER TABLE cards ADD COLUMN suspended_from TEXT CHECK (suspended_from IN ('active', 'locked'));
ALTER TABLE cards ADD CONSTRAINT cards_suspension_check CHECK ((state = 'suspended') = (suspended_from IS NOT NULL));

-- When a certificate on hold was released (its card resumed).
ALTER TABLE certificates ADD COLUMN released_at BIGINT;
CREATE INDEX certificates_released ON certificates (released_at) WHERE released_at IS NOT NULL;
