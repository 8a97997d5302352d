package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
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
	// Disabling revokes the user's tokens; list marks them; enabling
	// lets the password work again.
	cli("", "token", "create", "--user", "alice")
	if code, out, e := cli("", "user", "disable", "alice"); code != 0 || out != "user alice disabled, and 1 token revoked\n" {
		t.Errorf("user disable: %d %q %s", code, out, e)
	}
	if code, out, _ := cli("", "user", "list"); code != 0 || out != "alice (disabled)\n" {
		t.Errorf("user list of a disabled user: %q", out)
	}
	if code, out, _ := cli("", "token", "list", "--user", "alice"); code != 0 || strings.Count(out, "\n") > 1 {
		t.Errorf("a disabled user's tokens: %q", out)
	}
	if code, _, _ := cli("", "user", "disable", "nobody"); code != 1 {
		t.Error("disabling a missing user succeeded")
	}
	if code, _, e := cli("", "user", "enable", "alice"); code != 0 {
		t.Errorf("user enable: %d %s", code, e)
	}
	if code, out, _ := cli("", "user", "list"); out != "alice\n" {
		t.Errorf("user list after enable: %d %q", code, out)
	}
	if code, _, _ := cli("", "user", "rm", "alice"); code != 0 {
		t.Error("user rm")
	}
	if code, _, _ := cli("", "user", "rm", "alice"); code != 1 {
		t.Error("removing a missing user succeeded")
	}
}

func TestTLSListenerReloadsItsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, reload, err := tlsListener(ln, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if ctx.IsTLS() {
			ctx.SetBodyString("tls")
		}
	}}
	go srv.Serve(tln)
	defer srv.Shutdown()
	serial := func() int64 {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d", s)
	}
	writeCert(t, certFile, keyFile, 2)
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if s := serial(); s != 2 {
		t.Errorf("after reload the serial is %d, want 2", s)
	}
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	if err := reload(); err == nil {
		t.Error("a broken certificate was accepted")
	}
	if s := serial(); s != 2 {
		t.Errorf("a failed reload changed the certificate")
	}
}

func writeCert(t *testing.T, certFile, keyFile string, serial int64) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

func TestLogWriterFlushes(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	w := newLogWriter(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}), 10*time.Millisecond)
	w.Write([]byte("line one\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := out.String()
		mu.Unlock()
		if got == "line one\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not flushed by the ticker: %q", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.Write([]byte("line two\n"))
	w.Close()
	if out.String() != "line one\nline two\n" {
		t.Errorf("Close did not flush: %q", out.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestURLPasswordsRedacted: a URL npmgate refuses is quoted without its
// password, by check-config and by serve (its --upstream flag or the
// file), whatever is wrong with it.
func TestURLPasswordsRedacted(t *testing.T) {
	const password = "s3cr3t-Pa55word"
	dir := t.TempDir()
	file := func(name, yaml string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(yaml), 0o644)
		return p
	}
	tests := []struct {
		name string
		args []string
	}{
		{"check-config, user info in a connector", []string{"check-config", file("userinfo.yaml",
			"connectors:\n  up:\n    url: https://alice:"+password+"@registry.example.com/\nfeeds:\n  npm:\n    connectors: [up]\n")}},
		{"check-config, a connector URL that does not parse", []string{"check-config", file("badport.yaml",
			"connectors:\n  up:\n    url: https://alice:"+password+"@registry.example.com:port/\nfeeds:\n  npm:\n    connectors: [up]\n")}},
		{"check-config, an audit URL with user info", []string{"check-config", file("audit.yaml",
			"feeds:\n  npm:\n    audit: https://alice:"+password+"@audit.example.com/\n")}},
		{"check-config, not an http audit URL", []string{"check-config", file("ftp.yaml",
			"feeds:\n  npm:\n    audit: ftp://alice:"+password+"@audit.example.com/\n")}},
		{"serve --upstream with user info", []string{"serve", "--data", dir, "--upstream", "https://alice:" + password + "@registry.example.com/"}},
		{"serve --upstream that does not parse", []string{"serve", "--data", dir, "--upstream", "https://alice:" + password + "@registry.example.com:port/"}},
		{"serve --upstream not http", []string{"serve", "--data", dir, "--upstream", "ftp://alice:" + password + "@registry.example.com/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			all := stdout.String() + stderr.String()
			if code == 0 {
				t.Fatalf("npmgate %v accepted the URL: %s", tt.args[0], all)
			}
			if strings.Contains(all, password) || strings.Contains(all, "s3cr3t") {
				t.Errorf("npmgate %s printed the password: %s", tt.args[0], all)
			}
			if !strings.Contains(all, "example.com") {
				t.Errorf("npmgate %s does not say which URL: %s", tt.args[0], all)
			}
			t.Log(strings.TrimSpace(all))
		})
	}
}
