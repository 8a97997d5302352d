-- Web UI sessions are tokens of their own kind (auth.SessionKind): good
-- in the UI's cookie only, revoked at sign-out on every replica.
ALTER TABLE tokens DROP CONSTRAINT tokens_kind_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_kind_check CHECK (kind IN ('token', 'api-key', 'session'));
