package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("feeds:\n  npm: {}\n"), 0o644)
	os.WriteFile(bad, []byte("feeds:\n  npm: {}\ncache:\n  max_age: soon\n"), 0o644)
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"check-config", good}, 0, "good.yaml: ok"},
		{[]string{"check-config", bad}, 1, "bad.yaml:4: \"soon\" is not a duration"},
		{[]string{"check-config", filepath.Join("..", "..", "npmgate.example.yaml")}, 0, "ok"},
		{[]string{"check-config"}, 2, "usage"},
		{[]string{"version"}, 0, "npmgate "},
		{[]string{"bogus"}, 2, "unknown command"},
		{nil, 2, "Usage"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, &stdout, &stderr)
		all := stdout.String() + stderr.String()
		if code != tt.code || !strings.Contains(all, tt.out) {
			t.Errorf("npmgate %v = %d %q; want %d containing %q", tt.args, code, all, tt.code, tt.out)
		}
	}
}

func TestFlagsOverrideConfig(t *testing.T) {
	t.Setenv("NPMGATE_DATA", "/env/data")
	sf, err := parseServeFlags([]string{"--listen", "127.0.0.1:9999", "--upstream", "http://127.0.0.1:1/", "--public-url", "https://npm.example.com/"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(sf)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.Data != "/env/data" || cfg.PublicURL != "https://npm.example.com" {
		t.Errorf("listen %q data %q public %q", cfg.Listen, cfg.Data, cfg.PublicURL)
	}
	if u := cfg.Connectors["npmjs"].URL; u != "http://127.0.0.1:1" {
		t.Errorf("--upstream did not reach the default connector: %q", u)
	}
	for _, args := range [][]string{{"--listen", "nope"}, {"--upstream", "ftp://x"}, {"--public-url", "https://u:p@x"}} {
		sf, err := parseServeFlags(args, os.Stderr)
		if err == nil {
			_, err = loadConfig(sf)
		}
		if err == nil {
			t.Errorf("serve %v accepted", args)
		}
	}
}

func TestCredentialCommands(t *testing.T) {
	data := t.TempDir()
	cli := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runWithInput(append(args, "--data", data), strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, e := cli("correct horse battery\n", "user", "add", "alice"); code != 0 {
		t.Fatalf("user add: %d %s", code, e)
	}
	if code, _, _ := cli("x\n", "user", "add", "alice"); code != 1 {
		t.Error("adding an existing user succeeded")
	}
	if code, out, _ := cli("", "user", "list"); code != 0 || out != "alice\n" {
		t.Errorf("user list: %q", out)
	}
	code, secret, e := cli("", "token", "create", "--user", "alice", "--read-only", "--expires", "30d")
	if code != 0 || !strings.HasPrefix(secret, "npmg_") || strings.Contains(e, strings.TrimSpace(secret)) {
		t.Fatalf("token create: %d %q %q", code, secret, e)
	}
	if code, _, _ := cli("", "token", "create", "--user", "nobody"); code != 1 {
		t.Error("token for a missing user")
	}
	code, key, _ := cli("", "apikey", "create", "--name", "ci", "--feed", "npm")
	if code != 0 || !strings.HasPrefix(key, "npmgk_") {
		t.Fatalf("apikey create: %d %q", code, key)
	}
	if code, _, _ := cli("", "apikey", "create", "--name", "ci", "--feed", "nope"); code != 1 {
		t.Error("a key for an unknown feed")
	}
	code, out, _ := cli("", "token", "list")
	if code != 0 || !strings.Contains(out, "alice") || strings.Contains(out, strings.TrimSpace(secret)) {
		t.Errorf("token list: %q", out)
	}
	fields := strings.Fields(strings.Split(out, "\n")[1])
	if code, _, e := cli("", "token", "revoke", fields[0]); code != 0 {
		t.Errorf("token revoke %s: %s", fields[0], e)
	}
	if code, out, _ := cli("", "token", "list"); code != 0 || strings.Contains(out, "alice") {
		t.Errorf("revoked token still listed: %q", out)
	}
	if code, _, _ := cli("", "user", "rm", "alice"); code != 0 {
		t.Error("user rm")
	}
	if code, _, _ := cli("", "user", "rm", "alice"); code != 1 {
		t.Error("removing a missing user succeeded")
	}
}
