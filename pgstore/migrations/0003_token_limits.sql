-- Limits of granular tokens. The defaults limit nothing, so tokens stored
-- before them keep working, and a replica of the previous release (which
-- does not name these columns) keeps creating unlimited tokens.
ALTER TABLE tokens
	ADD COLUMN packages   text[] NOT NULL DEFAULT '{}',
	ADD COLUMN cidrs      text[] NOT NULL DEFAULT '{}',
	ADD COLUMN max_uses   integer NOT NULL DEFAULT 0,
	ADD COLUMN uses       integer NOT NULL DEFAULT 0,
	ADD COLUMN automation boolean NOT NULL DEFAULT false,
	ADD COLUMN last_used  timestamptz;
