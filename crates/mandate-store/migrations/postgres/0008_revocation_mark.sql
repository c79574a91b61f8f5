-- The latest revocation is read often (gateways drop cached verifications
-- when it moves): an index makes MAX(revoked_at) one lookup.
CREATE INDEX tokens_revoked_at ON tokens (revoked_at);
