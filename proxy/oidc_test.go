package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/fakeupstream"
	"github.com/npmgate/npmgate/trustpub"
)

// recordingTokens remembers what the exchange asked the token store for.
type recordingTokens struct {
	auth.TokenStore
	mu   sync.Mutex
	made []auth.NewToken
}

func (r *recordingTokens) Create(n auth.NewToken, now time.Time) (string, *auth.Token, error) {
	r.mu.Lock()
	r.made = append(r.made, n)
	r.mu.Unlock()
	return r.TokenStore.Create(n, now)
}

// oidcGate trusts @acme/* on feed main and @team/* on feed team from
// acme/app's release.yml, with the keys of key from a JWKS file.
func oidcGate(t *testing.T, key *ecdsa.PrivateKey, audience ...string) (*gate, *recordingTokens) {
	t.Helper()
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k", Use: "sig"}}})
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGate(t, fakeupstream.Start(t, fakeupstream.Dir()), func(c *config.Config) {
		c.Feeds["team"] = &config.Feed{Connectors: []string{"up"}}
		c.Publishing = config.Publishing{
			Audience: audience,
			Issuers:  []config.Issuer{{Issuer: trustpub.GitHubIssuer, JWKSFile: file}},
			Trusted: []config.TrustedPublisher{
				{Packages: []string{"@acme/*"}, Issuer: trustpub.GitHubIssuer, Repository: "acme/app", Workflow: "release.yml"},
				{Packages: []string{"@team/*"}, Feed: "team", Issuer: trustpub.GitHubIssuer, Repository: "acme/app", Workflow: "release.yml"},
			},
		}
	})
	rec := &recordingTokens{TokenStore: g.srv.auth.Tokens}
	g.srv.auth.Tokens = rec
	return g, rec
}

func idToken(t *testing.T, key *ecdsa.PrivateKey, aud string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := jwt.Signed(s).Claims(map[string]any{
		"iss": trustpub.GitHubIssuer, "aud": aud, "sub": "repo:acme/app:ref:refs/heads/main",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": rand.Text(),
		"repository": "acme/app", "workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main", "ref": "refs/heads/main",
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestOIDCExchange: the exchange's answers as npm reads them, and the
// token it asks the store for.
func TestOIDCExchange(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	g, rec := oidcGate(t, key)
	port := g.url[strings.LastIndexByte(g.url, ':')+1:]
	const path = "/-/npm/v1/oidc/token/exchange/package/"
	tests := []struct {
		name, method, path, authz string
		status                    int
		says                      string // in "error" and "message"
		feed                      string // of the token made, on success
	}{
		{"npm's form, audience without the port", "POST", path + "@acme%2flib", "Bearer " + idToken(t, key, "npm:127.0.0.1"), 201, "", "main"},
		{"audience with the port", "POST", path + "@acme%2flib", "Bearer " + idToken(t, key, "npm:127.0.0.1:"+port), 201, "", "main"},
		{"root exchange for another feed's publisher", "POST", path + "@team%2flib", "Bearer " + idToken(t, key, "npm:127.0.0.1"), 201, "", "team"},
		{"below the feed's mount", "POST", "/npm/team" + path + "@team%2Flib", "Bearer " + idToken(t, key, "npm:127.0.0.1"), 201, "", "team"},
		{"below a feed no publisher of the package names", "POST", "/npm/team" + path + "@acme%2flib", "Bearer " + idToken(t, key, "npm:127.0.0.1"), 403,
			"no trusted publisher is configured for @acme/lib", ""},
		{"GET", "GET", path + "@acme%2flib", "", 405, "the token exchange is a POST", ""},
		{"no package", "POST", path, "Bearer x", 400, "names a package", ""},
		{"bad package name", "POST", path + "..%2f..", "Bearer x", 400, "names a package", ""},
		{"no ID token", "POST", path + "@acme%2flib", "", 401, "needs the CI job's OIDC ID token", ""},
		{"an npmgate token instead", "POST", path + "@acme%2flib", "Bearer npmg_abcdef", 401, "invalid ID token", ""},
		{"another registry's audience", "POST", path + "@acme%2flib", "Bearer " + idToken(t, key, "npm:registry.npmjs.org"), 401,
			`audience "npm:registry.npmjs.org" is not this registry's (npm:127.0.0.1 or npm:127.0.0.1:` + port + `)`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.made)
			resp, body := g.do(tc.method, tc.path, tc.authz, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.status)
			}
			var got struct{ Token, Error, Message string }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if tc.status != 201 {
				if !strings.Contains(got.Error, tc.says) || got.Message != got.Error {
					t.Errorf("body %s: want error and message saying %q", body, tc.says)
				}
				if len(rec.made) != before {
					t.Errorf("a refused exchange made a token")
				}
				return
			}
			want := auth.NewToken{User: "oidc-github-acme.app", Name: "trusted publishing " + strings.ReplaceAll(tc.path[strings.LastIndexByte(tc.path, '/')+1:], "%2f", "/"),
				Feeds: []string{tc.feed}, TTL: 5 * time.Minute, MaxUses: 1, Automation: true}
			want.Name = strings.ReplaceAll(want.Name, "%2F", "/")
			want.Packages = []string{strings.TrimPrefix(want.Name, "trusted publishing ")}
			if len(rec.made) != before+1 {
				t.Fatalf("%d tokens made, want 1", len(rec.made)-before)
			}
			n := rec.made[before]
			if n.User != want.User || n.Name != want.Name || !slices.Equal(n.Feeds, want.Feeds) || n.TTL != want.TTL ||
				!slices.Equal(n.Packages, want.Packages) || n.MaxUses != 1 || !n.Automation || n.ReadOnly || n.APIKey {
				t.Errorf("token asked for: %+v, want %+v", n, want)
			}
			// The token acts on its feed only.
			if !strings.HasPrefix(got.Token, "npmg_") {
				t.Fatalf("token %q", got.Token)
			}
			other := map[string]string{"main": "/npm/team/-/whoami", "team": "/-/whoami"}[tc.feed]
			if r, b := g.do("GET", strings.Replace(other, "/-/whoami", "/@x%2fy", 1), "Bearer "+got.Token, nil); r.StatusCode != http.StatusForbidden {
				t.Errorf("token of feed %s on another feed: %d %s, want 403", tc.feed, r.StatusCode, b)
			}
		})
	}
}

// TestOIDCExchangeConfigured: publishing.audience replaces the Host's
// audience; with no trusted publishers (after a reload too) the exchange
// is a 404 that says so.
func TestOIDCExchangeConfigured(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	g, _ := oidcGate(t, key, "npm:npm.example.com")
	const path = "/-/npm/v1/oidc/token/exchange/package/@acme%2flib"
	if r, b := g.do("POST", path, "Bearer "+idToken(t, key, "npm:127.0.0.1"), nil); r.StatusCode != 401 || !strings.Contains(string(b), "audience") {
		t.Errorf("Host's audience with publishing.audience set: %d %s, want 401", r.StatusCode, b)
	}
	if r, b := g.do("POST", path, "Bearer "+idToken(t, key, "npm:npm.example.com"), nil); r.StatusCode != 201 {
		t.Errorf("the configured audience: %d %s, want 201", r.StatusCode, b)
	}
	cfg := *g.srv.cfg
	cfg.Publishing.Trusted = nil
	if err := g.srv.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	if r, b := g.do("POST", path, "Bearer "+idToken(t, key, "npm:npm.example.com"), nil); r.StatusCode != 404 || !strings.Contains(string(b), "publishing.trusted") {
		t.Errorf("after a reload without publishers: %d %s, want 404", r.StatusCode, b)
	}
	cfg.Publishing.Issuers = nil
	if err := g.srv.Reload(&cfg); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Errorf("reload with other issuers: %v, want a restart asked for", err)
	}
}
