-- The users' second factors, as the server keeps them in users-2fa.json
-- on one machine: the TOTP secret, the hashes of the unused recovery
-- codes and the last step a code was accepted for, as JSON the server
-- alone reads. In the database, an enrolment made through one replica is
-- asked for by every other.
CREATE TABLE two_factor (
	user_name text PRIMARY KEY,
	record    text NOT NULL,
	updated   timestamptz NOT NULL DEFAULT now()
);
