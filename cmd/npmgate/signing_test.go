package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/sign"
)

// TestSigningKeyCmd: generate prints a key in both forms, show prints the
// data directory's public key as /-/npm/v1/keys lists it, and says what
// to do before there is one.
func TestSigningKeyCmd(t *testing.T) {
	data := t.TempDir()
	run1 := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, out, _ := run1("signing-key", "generate"); code != 0 || !strings.HasPrefix(out, "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("generate: %d %q", code, out)
	} else if _, err := sign.ParseKey([]byte(out)); err != nil {
		t.Errorf("generate printed a key that does not load: %v", err)
	}
	code, out, _ := run1("signing-key", "generate", "--base64")
	if _, err := sign.ParseKey([]byte(out)); code != 0 || err != nil || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("generate --base64: %d %q %v", code, out, err)
	}
	if code, _, errOut := run1("signing-key", "show", "--data", data); code != 1 || !strings.Contains(errOut, "npmgate serve makes "+filepath.Join(data, "signing-key.pem")) {
		t.Errorf("show before the first start: %d %q", code, errOut)
	}
	for _, args := range [][]string{{"signing-key"}, {"signing-key", "rotate"}, {"signing-key", "generate", "extra"}} {
		if code, _, errOut := run1(args...); code != 2 || !strings.Contains(errOut, "usage") {
			t.Errorf("%v: %d %q", args, code, errOut)
		}
	}

	cfg, err := config.Parse([]byte("data: "+data+"\nfeeds:\n  f: {}\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureSigningKey(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(data, "signing-key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the key made at the first start: %v %v", fi, err)
	}
	s, err := cfg.LoadSigner()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run1("signing-key", "show", "--data", data)
	var k sign.Key
	if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
		t.Fatalf("show: %d %q %q", code, out, errOut)
	}
	if k != s.PublicKey() || k.KeyType != sign.Scheme || k.Expires != nil {
		t.Errorf("show printed %+v, the server's key is %+v", k, s.PublicKey())
	}
	if _, err := base64.StdEncoding.DecodeString(k.Key); err != nil {
		t.Errorf("key %q is not base64", k.Key)
	}
}
