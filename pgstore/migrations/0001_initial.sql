-- Users: the bcrypt hash as an htpasswd line holds it ($2a$/$2y$...).
CREATE TABLE users (
	name    text COLLATE "C" PRIMARY KEY,
	hash    text NOT NULL,
	created timestamptz NOT NULL DEFAULT now(),
	updated timestamptz NOT NULL DEFAULT now()
);

-- Tokens and API keys: key is the hex sha512 of the secret, which is
-- never stored.
CREATE TABLE tokens (
	key       text COLLATE "C" PRIMARY KEY,
	prefix    text NOT NULL,
	user_name text NOT NULL,
	kind      text NOT NULL CHECK (kind IN ('token', 'api-key')),
	name      text NOT NULL DEFAULT '',
	readonly  boolean NOT NULL,
	feeds     text[] NOT NULL DEFAULT '{}',
	created   timestamptz NOT NULL,
	expires   timestamptz
);
CREATE INDEX tokens_user ON tokens (user_name, created);

-- Documents of packages published to feeds, bytes as the proxy wrote
-- them. doc is NULL only inside the transaction that creates the row.
CREATE TABLE packages (
	feed    text COLLATE "C" NOT NULL,
	name    text COLLATE "C" NOT NULL,
	doc     bytea,
	updated timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (feed, name)
);
