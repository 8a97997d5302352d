package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/sign"
)

// TestSigningErrors: each bad signing section is refused at its line,
// saying what to do, and never repeats the key's text.
func TestSigningErrors(t *testing.T) {
	const feed = "feeds:\n  f: {}\n"
	dir := t.TempDir()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p384)
	p384File := filepath.Join(dir, "p384.pem")
	os.WriteFile(p384File, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name, doc string
		line      int
		msg       string
	}{
		{"both", "signing:\n  key: abc\n  key_file: k.pem\n" + feed, 1, "signing: give key or key_file, not both"},
		{"bad key", "signing:\n  key: c2VjcmV0LWtleS10ZXh0\n" + feed, 2, "signing.key: "},
		{"missing file", "signing:\n  key_file: " + missing + "\n" + feed, 2, "signing.key_file: " + missing + ": open " + missing + ": no such file or directory"},
		{"P-384", "signing:\n  key_file: " + p384File + "\n" + feed, 2, "signing.key_file: " + p384File + ": an ECDSA P-384 key is not P-256"},
		{"expires", "signing:\n  expires: tomorrow\n" + feed, 2, `signing.expires: "tomorrow" is not an RFC 3339 time`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "f.yaml")
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not *Error", err, err)
			}
			if ce.Line != tt.line || !strings.HasPrefix(ce.Msg, tt.msg) {
				t.Errorf("got line %d %q\nwant line %d %q", ce.Line, ce.Msg, tt.line, tt.msg)
			}
			if strings.Contains(ce.Error(), "c2VjcmV0") {
				t.Errorf("the error repeats the key: %s", ce.Error())
			}
		})
	}
}

// TestLoadSigner: the key from the environment, from a file, the data
// directory's own, none before the first start, and none for replicas
// unless configured.
func TestLoadSigner(t *testing.T) {
	pemKey, err := sign.Generate()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemKey)
	dir := t.TempDir()
	file := filepath.Join(dir, "given.pem")
	os.WriteFile(file, pemKey, 0o600)
	data := t.TempDir()
	t.Setenv("TEST_SIGNING_KEY", base64.StdEncoding.EncodeToString(block.Bytes))
	const feed = "feeds:\n  f: {}\n"
	const replicas = "database:\n  url: postgres://db/npmgate\nstorage:\n  s3:\n    endpoint: http://s3:9000\n    bucket: npmgate\n"
	load := func(t *testing.T, doc string) *sign.Signer {
		t.Helper()
		cfg, err := Parse([]byte("data: "+data+"\n"+doc+feed), "f.yaml")
		if err != nil {
			t.Fatal(err)
		}
		s, err := cfg.LoadSigner()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want, err := sign.Load(file, sign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, doc string
		signs     bool
	}{
		{"env", "signing:\n  key: ${TEST_SIGNING_KEY}\n", true},
		{"file", "signing:\n  key_file: " + file + "\n", true},
		{"replicas with a key", replicas + "signing:\n  key: ${TEST_SIGNING_KEY}\n", true},
		{"none yet", "", false},
		{"replicas without a key", replicas, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := load(t, tc.doc)
			if (s != nil) != tc.signs {
				t.Fatalf("signer %v, want one: %v", s, tc.signs)
			}
			if s != nil && s.KeyID() != want.KeyID() {
				t.Errorf("keyid %s, want the given key's %s", s.KeyID(), want.KeyID())
			}
		})
	}
	if made, err := sign.Create(filepath.Join(data, "signing-key.pem")); err != nil || !made {
		t.Fatal(made, err)
	}
	if load(t, "") == nil {
		t.Error("the data directory's key is not used")
	}
	if load(t, replicas) != nil {
		t.Error("replicas sign with a key of one data directory")
	}
	s := load(t, "signing:\n  key_file: "+file+"\n  keyid: SHA256:ours\n  expires: 2030-01-02T03:04:05+01:00\n")
	if pk := s.PublicKey(); pk.KeyID != "SHA256:ours" || pk.Expires == nil || *pk.Expires != "2030-01-02T02:04:05.000Z" {
		t.Errorf("keyid %s expires %v, want SHA256:ours and 2030-01-02T02:04:05.000Z", pk.KeyID, pk.Expires)
	}
}
