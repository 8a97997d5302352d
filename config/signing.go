package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/npmgate/npmgate/sign"
)

// Signing is the key npmgate signs every version published to it with
// (dist.signatures, as the public registry does), so that `npm audit
// signatures` verifies local packages; /-/npm/v1/keys serves its public
// half. On one machine the key is made at the first `serve` start, at
// DATA/signing-key.pem. Replicas (a database configured) never make one,
// as each would sign with its own: they sign only when given key_file or
// key, and say so at start when they are not.
type Signing struct {
	// KeyFile is a PEM file holding a PKCS#8 ("PRIVATE KEY") or SEC 1
	// ("EC PRIVATE KEY") ECDSA P-256 private key. Default
	// DATA/signing-key.pem, made (mode 0600) when missing.
	KeyFile string `yaml:"key_file"`
	// Key is the key itself, PEM or the base64 of its PKCS#8 DER (one
	// line, as `npmgate signing-key generate --base64` prints it), for
	// ${VARIABLE} expansion from the environment. Never logged.
	Key string `yaml:"key"`
	// KeyID replaces the key id "SHA256:<base64 of the SHA-256 of the
	// public key>" in signatures and in /-/npm/v1/keys.
	KeyID string `yaml:"keyid"`
	// Expires (RFC 3339) is shown in /-/npm/v1/keys: npm then refuses
	// signatures of versions published after it. Set it on a key being
	// rotated out.
	Expires string `yaml:"expires"`
}

// SigningConfigured reports whether the key is given rather than the
// data directory's own.
func (c *Config) SigningConfigured() bool { return c.Signing.Key != "" || c.Signing.KeyFile != "" }

// SigningKeyFile is the signing key's file: signing.key_file, or
// signing-key.pem in the data directory.
func (c *Config) SigningKeyFile() string {
	if c.Signing.KeyFile != "" {
		return c.Signing.KeyFile
	}
	return filepath.Join(c.Data, "signing-key.pem")
}

// SigningOptions are the key id and expiry the signer takes.
func (c *Config) SigningOptions() sign.Options {
	return sign.Options{KeyID: c.Signing.KeyID, Expires: c.Signing.Expires}
}

func (c *Config) validateSigning(at atFunc) error {
	s := &c.Signing
	switch {
	case s.Key != "" && s.KeyFile != "":
		return at("signing: give key or key_file, not both", "signing")
	case s.Key != "":
		if _, err := sign.ParseKey([]byte(s.Key)); err != nil {
			// The key's text is a secret: only what is wrong with it is said.
			return at("signing.key: "+err.Error(), "signing", "key")
		}
	case s.KeyFile != "":
		b, err := os.ReadFile(s.KeyFile)
		if err == nil {
			_, err = sign.ParseKey(b)
		}
		if err != nil {
			return at(fmt.Sprintf("signing.key_file: %s: %v", s.KeyFile, err), "signing", "key_file")
		}
	}
	if s.Expires != "" {
		t, err := time.Parse(time.RFC3339, s.Expires)
		if err != nil {
			return at(fmt.Sprintf("signing.expires: %q is not an RFC 3339 time such as 2027-01-01T00:00:00Z", s.Expires), "signing", "expires")
		}
		// As the public registry writes it, and npm parses it.
		s.Expires = t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return nil
}

// LoadSigner reads the signing key: signing.key, signing.key_file, or the
// data directory's own key when there is one (nil before the first
// `serve` made it). Replicas use a configured key only: a key in one
// replica's data directory would sign what the others cannot match.
func (c *Config) LoadSigner() (*sign.Signer, error) {
	switch {
	case c.Signing.Key != "":
		k, err := sign.ParseKey([]byte(c.Signing.Key))
		if err != nil {
			return nil, fmt.Errorf("signing.key: %w", err)
		}
		return sign.New(k, c.SigningOptions())
	case c.Signing.KeyFile != "":
		return sign.Load(c.Signing.KeyFile, c.SigningOptions())
	case c.Database.Enabled():
		return nil, nil
	}
	s, err := sign.Load(c.SigningKeyFile(), c.SigningOptions())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return s, err
}
