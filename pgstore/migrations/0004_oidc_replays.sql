-- The ID tokens trusted publishing exchanged, by a hash of issuer and
-- token id, until they expire (with the clock skew allowed): a token is
-- exchanged once across every replica. Rows past their expiry are
-- deleted by the replicas as they go.
CREATE TABLE oidc_replays (
	key     text PRIMARY KEY,
	expires timestamptz NOT NULL
);
