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

// TokensFile is where tokens and API keys are stored (hashed).
func (c *Config) TokensFile() string { return filepath.Join(c.Data, "auth", "tokens.json") }

func (a *Auth) validate(at atFunc) error {
	for g := range a.Groups {
		if strings.HasPrefix(g, "$") || g == "" {
			return at(fmt.Sprintf("auth.groups: %q is not a group name", g), "auth", "groups", g)
		}
	}
	return nil
}
