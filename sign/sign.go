// Package sign makes npm registry signatures: ECDSA P-256 over SHA-256 of
// "name@version:integrity", as the public registry signs every version
// and `npm audit signatures` verifies them against /-/npm/v1/keys.
package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Scheme is the keytype and scheme npm's keys endpoint names for these
// keys.
const Scheme = "ecdsa-sha2-nistp256"

// Signature is one entry of a version's dist.signatures.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// Key is one entry of /-/npm/v1/keys: the public key as base64 SPKI DER.
// Expires is null while the key is in use; npm refuses a signature on a
// version published after its key expired.
type Key struct {
	Expires *string `json:"expires"`
	KeyID   string  `json:"keyid"`
	KeyType string  `json:"keytype"`
	Scheme  string  `json:"scheme"`
	Key     string  `json:"key"`
}

// Signer signs with one private key.
type Signer struct {
	key   *ecdsa.PrivateKey
	keyid string
	pub   Key
}

// Options are what the configuration adds to the key.
type Options struct {
	// KeyID replaces the key id computed from the public key.
	KeyID string
	// Expires, an RFC 3339 time, is shown in the keys document.
	Expires string
}

// New makes a signer of key, which must be a P-256 key.
func New(key *ecdsa.PrivateKey, o Options) (*Signer, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("the signing key must be an ECDSA P-256 key (npm verifies ecdsa-sha2-nistp256 only)")
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	keyid := o.KeyID
	if keyid == "" {
		keyid = KeyID(spki)
	}
	s := &Signer{key: key, keyid: keyid, pub: Key{
		KeyID: keyid, KeyType: Scheme, Scheme: Scheme, Key: base64.StdEncoding.EncodeToString(spki),
	}}
	if o.Expires != "" {
		e := o.Expires
		s.pub.Expires = &e
	}
	return s, nil
}

// KeyID is the public registry's key id of an SPKI DER public key:
// "SHA256:" and the base64 of its SHA-256.
func KeyID(spki []byte) string {
	sum := sha256.Sum256(spki)
	return "SHA256:" + base64.StdEncoding.EncodeToString(sum[:])
}

// Message is what a registry signature of a version is over.
func Message(name, version, integrity string) string {
	return name + "@" + version + ":" + integrity
}

// KeyID is the id of the signer's key, as in its signatures.
func (s *Signer) KeyID() string { return s.keyid }

// PublicKey is the signer's entry of /-/npm/v1/keys.
func (s *Signer) PublicKey() Key { return s.pub }

// Sign signs name@version's integrity. Signatures are deterministic (RFC
// 6979): every replica, and every rendering, makes the same bytes.
func (s *Signer) Sign(name, version, integrity string) (Signature, error) {
	h := sha256.Sum256([]byte(Message(name, version, integrity)))
	sig, err := s.key.Sign(nil, h[:], crypto.SHA256)
	if err != nil {
		return Signature{}, err
	}
	return Signature{KeyID: s.keyid, Sig: base64.StdEncoding.EncodeToString(sig)}, nil
}

// Verify checks sig over name@version:integrity with the public key of a
// keys document entry, as npm does.
func Verify(k Key, name, version, integrity, sig string) error {
	der, err := base64.StdEncoding.DecodeString(k.Key)
	if err != nil {
		return fmt.Errorf("key %s: %w", k.KeyID, err)
	}
	pk, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return fmt.Errorf("key %s: %w", k.KeyID, err)
	}
	ek, ok := pk.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("key %s is not an ECDSA key", k.KeyID)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	h := sha256.Sum256([]byte(Message(name, version, integrity)))
	if !ecdsa.VerifyASN1(ek, h[:], raw) {
		return errors.New("signature does not verify")
	}
	return nil
}

// ParseKey reads a private key: PEM ("PRIVATE KEY", PKCS#8, or "EC
// PRIVATE KEY", SEC 1) or, for a key kept in one environment variable,
// the base64 of the PKCS#8 DER. Anything but a P-256 key is refused.
func ParseKey(b []byte) (*ecdsa.PrivateKey, error) {
	text := strings.TrimSpace(string(b))
	var der []byte
	if block, _ := pem.Decode([]byte(text)); block != nil {
		der = block.Bytes
		if block.Type == "EC PRIVATE KEY" {
			k, err := x509.ParseECPrivateKey(der)
			if err != nil {
				return nil, err
			}
			return p256(k)
		}
		if block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("a PEM %q block is not a private key; want \"PRIVATE KEY\" (PKCS#8)", block.Type)
		}
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), "")); err != nil {
			return nil, errors.New("not a PEM private key, nor the base64 of a PKCS#8 one")
		}
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	return p256(k)
}

func p256(k any) (*ecdsa.PrivateKey, error) {
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T is not an ECDSA key; npm verifies ECDSA P-256 signatures only", k)
	}
	if ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("an ECDSA %s key is not P-256; npm verifies ecdsa-sha2-nistp256 only", ek.Curve.Params().Name)
	}
	return ek, nil
}

// Generate makes a new P-256 key, as PEM PKCS#8.
func Generate() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Create writes a new key to path (mode 0600) unless a file is there
// already; it reports whether it made one. Two processes racing both
// end up with the one key written first.
func Create(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	b, err := Generate()
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".signing-key-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	// A hard link never replaces a key another process wrote meanwhile.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// Load reads a key file and makes its signer.
func Load(path string, o Options) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return New(k, o)
}
