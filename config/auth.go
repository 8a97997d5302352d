package config

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Auth configures users and credentials.
type Auth struct {
	// Users is the htpasswd file (bcrypt). A relative path is under the
	// data directory. Default: users.htpasswd there.
	Users string `yaml:"users"`
	// AllowSignup lets npm adduser create users.
	AllowSignup bool `yaml:"allow_signup"`
	// Groups name sets of users for access lists. (The members' names are
	// checked by the policy package, with auth's rule for user names.)
	Groups map[string][]string `yaml:"groups"`
	// Tokens sets the expiry of new tokens.
	Tokens AuthTokens `yaml:"tokens"`
	// Admins are the users and groups who manage users in the web UI
	// (list, disable, enable). Default: none (the CLI, on the server's
	// machine, always can). Never $all, $anonymous or $authenticated.
	Admins []string `yaml:"admins"`
}

// AuthTokens sets the expiry of new tokens (npm token create, npmgate
// token create): a write token asking for none expires after DefaultTTL
// (0: 30 days), and none may ask for more than MaxTTL (0: 90 days).
// Read-only tokens may keep no expiry. Tokens that exist keep theirs.
type AuthTokens struct {
	DefaultTTL Duration `yaml:"default_ttl"`
	MaxTTL     Duration `yaml:"max_ttl"`
}

// UsersFile is the htpasswd file's path.
func (c *Config) UsersFile() string {
	if filepath.IsAbs(c.Auth.Users) {
		return c.Auth.Users
	}
	name := c.Auth.Users
	if name == "" {
		name = "users.htpasswd"
	}
	return filepath.Join(c.Data, name)
}

// TwoFactorFile keeps the users' TOTP secrets and recovery codes (the
// htpasswd file has no room for them).
//
// With a database there is none: the database keeps them, since an
// enrolment one replica knew and another did not would let a write
// through the other without a code.
func (c *Config) TwoFactorFile() string {
	if c.Database.Enabled() {
		return ""
	}
	return filepath.Join(c.Data, "users-2fa.json")
}

// TokensFile is where tokens and API keys are stored (hashed).
func (c *Config) TokensFile() string { return filepath.Join(c.Data, "auth", "tokens.json") }

func (a *Auth) validate(at atFunc) error {
	if err := a.Tokens.validate(at); err != nil {
		return err
	}
	for g := range a.Groups {
		if strings.HasPrefix(g, "$") || g == "" {
			return at(fmt.Sprintf("auth.groups: %q is not a group name", g), "auth", "groups", g)
		}
	}
	for _, e := range a.Admins {
		if strings.HasPrefix(e, "$") {
			return at(fmt.Sprintf("auth.admins: %q: name users or groups; a subject such as $authenticated would let anyone who signs in disable everyone else", e), "auth", "admins")
		}
	}
	return nil
}

func (t *AuthTokens) validate(at atFunc) error {
	switch {
	case t.DefaultTTL < 0 || t.MaxTTL < 0:
		return at("auth.tokens: default_ttl and max_ttl are positive durations (720h)", "auth", "tokens")
	case t.MaxTTL > 0 && t.DefaultTTL > t.MaxTTL:
		return at("auth.tokens.default_ttl is longer than max_ttl", "auth", "tokens", "default_ttl")
	}
	return nil
}
