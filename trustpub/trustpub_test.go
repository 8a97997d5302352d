package trustpub

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const gitlabIssuer = "https://gitlab.example.com"

var (
	now     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rsaKey  = mustRSA()
	ecKey   = mustEC()
	otherEC = mustEC()
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// sign makes a JWT with key (RS256 for RSA, ES256 for ECDSA) under kid.
func sign(t *testing.T, key any, kid string, claims map[string]any) string {
	t.Helper()
	alg := jose.RS256
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = jose.ES256
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func jwks(t *testing.T, keys map[string]any) []byte {
	t.Helper()
	var ks jose.JSONWebKeySet
	for kid, k := range keys {
		ks.Keys = append(ks.Keys, jose.JSONWebKey{Key: k, KeyID: kid, Use: "sig"})
	}
	b, err := json.Marshal(ks)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func githubClaims(mod func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": GitHubIssuer, "aud": "npm:registry.example.com", "sub": "repo:acme/app:environment:prod",
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Minute).Unix(),
		"jti": "gh-1", "repository": "acme/app", "workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main",
		"environment": "prod", "ref": "refs/heads/main",
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func gitlabClaims(mod func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": gitlabIssuer, "aud": "npm:registry.example.com", "sub": "project_path:acme/app:ref_type:branch:ref:main",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": "gl-1",
		"project_path": "acme/app", "ci_config_ref_uri": "gitlab.example.com/acme/app//.gitlab-ci.yml@refs/heads/main", "ref": "main",
	}
	if mod != nil {
		mod(c)
	}
	return c
}

var publishers = []Publisher{
	{Packages: []string{"@acme/*"}, Issuer: GitHubIssuer, Provider: GitHub, Repository: "acme/app", Workflow: "release.yml", Environment: "prod", Ref: "refs/heads/main"},
	{Packages: []string{"acme-tool"}, Issuer: gitlabIssuer, Provider: GitLab, Repository: "acme/app", Workflow: ".gitlab-ci.yml", Ref: "main"},
}

func newVerifier(t *testing.T) *Verifier {
	t.Helper()
	dir := t.TempDir()
	gh, gl := filepath.Join(dir, "gh.json"), filepath.Join(dir, "gl.json")
	os.WriteFile(gh, jwks(t, map[string]any{"k1": &rsaKey.PublicKey, "k2": &ecKey.PublicKey}), 0o644)
	os.WriteFile(gl, jwks(t, map[string]any{"gl": &ecKey.PublicKey}), 0o644)
	v, err := NewVerifier(Options{Files: map[string]string{GitHubIssuer: gh, gitlabIssuer: gl}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var audiences = []string{"npm:registry.example.com"}
var issuers = []string{GitHubIssuer, gitlabIssuer}

// TestExchangeChecks: each way an ID token or its claims can fail, and
// the two forms that pass.
func TestExchangeChecks(t *testing.T) {
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	tests := []struct {
		name    string
		token   func(t *testing.T) string
		pkg     string
		want    error  // nil: passes
		wantMsg string // in the error
	}{
		{"github token of the trusted workflow", func(t *testing.T) string { return sign(t, rsaKey, "k1", githubClaims(nil)) }, "@acme/lib", nil, ""},
		{"ECDSA key", func(t *testing.T) string { return sign(t, ecKey, "k2", githubClaims(nil)) }, "@acme/lib", nil, ""},
		{"gitlab token", func(t *testing.T) string { return sign(t, ecKey, "gl", gitlabClaims(nil)) }, "acme-tool", nil, ""},
		{"bad signature", func(t *testing.T) string { return sign(t, otherEC, "k2", githubClaims(nil)) }, "@acme/lib", ErrInvalidToken, "signature"},
		{"unknown kid", func(t *testing.T) string { return sign(t, rsaKey, "k9", githubClaims(nil)) }, "@acme/lib", ErrInvalidToken, `no key "k9"`},
		{"untrusted issuer", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(set("iss", "https://evil.example.com")))
		}, "@acme/lib", ErrInvalidToken, "not trusted"},
		{"issuer signed with another issuer's key", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", gitlabClaims(nil))
		}, "acme-tool", ErrInvalidToken, `no key "k1"`},
		{"wrong audience", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(set("aud", "npm:registry.npmjs.org")))
		}, "@acme/lib", ErrInvalidToken, "audience"},
		{"expired", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(set("exp", now.Add(-2*time.Minute).Unix())))
		}, "@acme/lib", ErrInvalidToken, "expired"},
		{"expired within skew", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(set("exp", now.Add(-30*time.Second).Unix())))
		}, "@acme/lib", nil, ""},
		{"no expiry", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(func(c map[string]any) { delete(c, "exp") }))
		}, "@acme/lib", ErrInvalidToken, "no expiry"},
		{"not yet valid", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(set("nbf", now.Add(2*time.Minute).Unix())))
		}, "@acme/lib", ErrInvalidToken, "not valid before"},
		{"issued in the future", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(set("iat", now.Add(2*time.Minute).Unix())))
		}, "@acme/lib", ErrInvalidToken, "future"},
		{"not a JWT", func(t *testing.T) string { return "npmg_abc" }, "@acme/lib", ErrInvalidToken, ""},
		{"unsigned (alg none)", func(t *testing.T) string {
			return "eyJhbGciOiJub25lIn0." + strings.TrimRight(b64(`{"iss":"`+GitHubIssuer+`"}`), "=") + "."
		}, "@acme/lib", ErrInvalidToken, ""},
		{"other repository", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(func(c map[string]any) {
				c["repository"] = "evil/app"
				c["workflow_ref"] = "evil/app/.github/workflows/release.yml@refs/heads/main"
			}))
		}, "@acme/lib", ErrUntrusted, `repository "evil/app"`},
		{"repository claim disagrees with workflow_ref", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(set("workflow_ref", "evil/app/.github/workflows/release.yml@refs/heads/main")))
		}, "@acme/lib", ErrUntrusted, ""},
		{"other workflow", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(set("workflow_ref", "acme/app/.github/workflows/test.yml@refs/heads/main")))
		}, "@acme/lib", ErrUntrusted, `workflow "test.yml"`},
		{"other environment", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(set("environment", "staging")))
		}, "@acme/lib", ErrUntrusted, `environment "staging"`},
		{"other ref", func(t *testing.T) string {
			return sign(t, rsaKey, "k1", githubClaims(set("ref", "refs/heads/feature")))
		}, "@acme/lib", ErrUntrusted, `ref "refs/heads/feature"`},
		{"package outside the pattern", func(t *testing.T) string { return sign(t, rsaKey, "k1", githubClaims(nil)) }, "@other/lib", ErrUntrusted, "no trusted publisher is configured for @other/lib"},
		{"github identity for the gitlab publisher", func(t *testing.T) string { return sign(t, rsaKey, "k1", githubClaims(nil)) }, "acme-tool", ErrUntrusted, ""},
		{"gitlab other project", func(t *testing.T) string {
			return sign(t, ecKey, "gl", gitlabClaims(func(c map[string]any) {
				c["project_path"] = "acme/other"
				c["ci_config_ref_uri"] = "gitlab.example.com/acme/other//.gitlab-ci.yml@refs/heads/main"
			}))
		}, "acme-tool", ErrUntrusted, `repository "acme/other"`},
		{"gitlab other config path", func(t *testing.T) string {
			return sign(t, ecKey, "gl", gitlabClaims(set("ci_config_ref_uri", "gitlab.example.com/acme/app//ci/other.yml@refs/heads/main")))
		}, "acme-tool", ErrUntrusted, `workflow "ci/other.yml"`},
		{"gitlab config of another project", func(t *testing.T) string {
			return sign(t, ecKey, "gl", gitlabClaims(set("ci_config_ref_uri", "gitlab.example.com/evil/x//.gitlab-ci.yml@refs/heads/main")))
		}, "acme-tool", ErrUntrusted, ""},
		{"gitlab other ref", func(t *testing.T) string { return sign(t, ecKey, "gl", gitlabClaims(set("ref", "dev"))) }, "acme-tool", ErrUntrusted, `ref "dev"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t)
			id, err := v.Verify(context.Background(), tc.token(t), issuers, audiences)
			if err == nil {
				_, err = Match(publishers, id, tc.pkg, "", "main")
			}
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			case tc.want != nil && !strings.Contains(err.Error(), tc.wantMsg):
				t.Fatalf("error %q does not say %q", err, tc.wantMsg)
			}
		})
	}
}

func b64(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// TestReplay: a token is exchanged once, whether it has a jti or not;
// only tokens that matched a publisher are remembered; the memory of used
// tokens is bounded and forgets expired ones.
func TestReplay(t *testing.T) {
	v := newVerifier(t)
	for _, c := range []map[string]any{githubClaims(nil), githubClaims(func(c map[string]any) { delete(c, "jti") })} {
		raw := sign(t, rsaKey, "k1", c)
		id, err := v.Verify(context.Background(), raw, issuers, audiences)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Use(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		again, err := v.Verify(context.Background(), raw, issuers, audiences)
		if err != nil {
			t.Fatalf("the token verified again: %v", err)
		}
		if err := v.Use(context.Background(), again); !errors.Is(err, ErrReplayed) {
			t.Fatalf("second use: %v, want ErrReplayed", err)
		}
	}
	// Another token with the same jti is the same token.
	same, err := v.Verify(context.Background(), sign(t, ecKey, "k2", githubClaims(nil)), issuers, audiences)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Use(context.Background(), same); !errors.Is(err, ErrReplayed) {
		t.Fatalf("same jti: %v, want ErrReplayed", err)
	}
	// A genuine token of an untrusted job, never used, takes no memory.
	raw := sign(t, rsaKey, "k1", githubClaims(func(c map[string]any) { c["jti"] = "untrusted" }))
	for range 2 {
		if _, err := v.Verify(context.Background(), raw, issuers, audiences); err != nil {
			t.Fatalf("unused token refused: %v", err)
		}
	}
	if n := len(v.replays.(*replay).m); n != 2 {
		t.Fatalf("%d tokens remembered, want 2", n)
	}

	clock := now
	r := &replay{max: 2, m: map[string]time.Time{}, now: func() time.Time { return clock }}
	remember := func(key string, until time.Time) (bool, error) { return r.Remember(context.Background(), key, until) }
	if a, _ := remember("a", now.Add(time.Hour)); !a {
		t.Fatal("first refused")
	}
	if b, _ := remember("b", now.Add(2*time.Minute)); !b {
		t.Fatal("second refused")
	}
	if _, err := remember("c", now.Add(time.Hour)); !errors.Is(err, errFull) {
		t.Fatalf("third while full: %v, want errFull", err)
	}
	clock = now.Add(5 * time.Minute) // b expired
	if c, err := remember("c", clock.Add(time.Hour)); !c || err != nil || len(r.m) != 2 {
		t.Fatalf("after b expired: %v, %v, %d remembered", c, err, len(r.m))
	}
	if a, err := remember("a", clock.Add(time.Hour)); a || err != nil {
		t.Fatalf("a again: %v, %v; want not new", a, err)
	}
}

// TestDiscovery: keys come from the issuer's discovery document, are
// fetched again for an unknown key id at most once per refreshEvery, and
// an oversized JWKS is refused.
func TestDiscovery(t *testing.T) {
	var fetches atomic.Int32
	var body atomic.Value
	body.Store(jwks(t, map[string]any{"k1": &rsaKey.PublicKey}))
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/keys"})
		case "/keys":
			fetches.Add(1)
			w.Write(body.Load().([]byte))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	clock := now
	v, err := NewVerifier(Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	iss := []string{srv.URL}
	tok := func(key any, kid, jti string) string {
		return sign(t, key, kid, githubClaims(func(c map[string]any) { c["iss"] = srv.URL; c["jti"] = jti }))
	}
	if _, err := v.Verify(context.Background(), tok(rsaKey, "k1", "1"), iss, audiences); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok(rsaKey, "k1", "2"), iss, audiences); err != nil || fetches.Load() != 1 {
		t.Fatalf("known kid: %v, %d fetches, want 1", err, fetches.Load())
	}
	// The issuer rotates: a new kid is fetched, but a burst of unknown
	// ones costs one fetch.
	body.Store(jwks(t, map[string]any{"k1": &rsaKey.PublicKey, "k2": &ecKey.PublicKey}))
	clock = clock.Add(refreshEvery)
	if _, err := v.Verify(context.Background(), tok(ecKey, "k2", "3"), iss, audiences); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	for i := range 5 {
		if _, err := v.Verify(context.Background(), tok(ecKey, "zz", string(rune('a'+i))), iss, audiences); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2", n)
	}
	// A JWKS over the size limit is refused, and nothing was cached.
	v2, _ := NewVerifier(Options{Now: func() time.Time { return clock }})
	body.Store([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxDocSize) + `"}`))
	if _, err := v2.Verify(context.Background(), tok(rsaKey, "k1", "x"), iss, audiences); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized JWKS: %v", err)
	}
}

// TestPublisherValidate: what configuration refuses.
func TestPublisherValidate(t *testing.T) {
	ok := publishers[0]
	for _, tc := range []struct {
		name string
		mod  func(p *Publisher)
		want string
	}{
		{"no packages", func(p *Publisher) { p.Packages = nil }, "packages"},
		{"everything", func(p *Publisher) { p.Packages = []string{"*"} }, "packages"},
		{"bad issuer", func(p *Publisher) { p.Issuer = "token.actions.githubusercontent.com" }, "issuer"},
		{"no repository", func(p *Publisher) { p.Repository = "app" }, "repository"},
		{"no workflow", func(p *Publisher) { p.Workflow = "" }, "workflow"},
		{"workflow path", func(p *Publisher) { p.Workflow = ".github/workflows/release.yml" }, "workflow"},
	} {
		p := ok
		tc.mod(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", tc.name, err, tc.want)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if u := DefaultUser(GitLab, "group/sub/proj"); u != "oidc-gitlab-group.sub.proj" {
		t.Errorf("DefaultUser = %q", u)
	}
	if u := DefaultUser(GitHub, strings.Repeat("a", 80)+"/x"); len(u) != 64 {
		t.Errorf("long DefaultUser has %d characters: %q", len(u), u)
	}
}

// TestReplayMemoryBound: the replay memory at its bound, with keys as
// Use makes them, stays within 40 MiB of heap,
// and refuses rather than grows.
func TestReplayMemoryBound(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := replay{max: defaultRemembered, m: map[string]time.Time{}, now: func() time.Time { return now }}
	exp := now.Add(time.Hour)
	for i := range defaultRemembered + 1000 {
		// Keys as Use makes them: the hex SHA-256 of issuer and jti.
		sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%08x-0000-4000-8000-%012x", GitHubIssuer, i, i))
		_, err := r.Remember(context.Background(), hex.EncodeToString(sum[:]), exp)
		if full := i >= defaultRemembered; full != errors.Is(err, errFull) {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 40<<20 {
		t.Errorf("replay memory of %d tokens: %d MiB of heap, want at most 40", len(r.m), grown>>20)
	} else {
		t.Logf("replay memory of %d tokens: %.1f MiB of heap", len(r.m), float64(grown)/(1<<20))
	}
	runtime.KeepAlive(&r)
}

// sharedReplays is a Replays as a database keeps them, or one that is
// down.
type sharedReplays struct {
	mu   sync.Mutex
	m    map[string]time.Time
	down error
}

func (s *sharedReplays) Remember(_ context.Context, key string, expires time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down != nil {
		return false, s.down
	}
	if until, ok := s.m[key]; ok && now.Before(until) {
		return false, nil
	}
	s.m[key] = expires
	return true, nil
}

// TestSharedReplays: with a shared memory, a token used through one
// verifier (one replica) is refused through another; the key is a hash of
// fixed size, and a memory that cannot be reached refuses (503), never
// lets a token through twice.
func TestSharedReplays(t *testing.T) {
	shared := &sharedReplays{m: map[string]time.Time{}}
	one, two := newVerifier(t), newVerifier(t)
	one.replays, two.replays = shared, shared
	raw := sign(t, rsaKey, "k1", githubClaims(nil))
	id, err := one.Verify(context.Background(), raw, issuers, audiences)
	if err != nil {
		t.Fatal(err)
	}
	if err := one.Use(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	id2, err := two.Verify(context.Background(), raw, issuers, audiences)
	if err != nil {
		t.Fatal(err)
	}
	if err := two.Use(context.Background(), id2); !errors.Is(err, ErrReplayed) {
		t.Errorf("the token at the second replica: %v, want ErrReplayed", err)
	}
	for k, until := range shared.m {
		if len(k) != 64 || !until.After(id.Expires) {
			t.Errorf("remembered %q until %v (token expires %v)", k, until, id.Expires)
		}
	}
	shared.down = errors.New("connection refused")
	fresh, _ := two.Verify(context.Background(), sign(t, rsaKey, "k1", githubClaims(func(c map[string]any) { c["jti"] = "other" })), issuers, audiences)
	if err := two.Use(context.Background(), fresh); !errors.Is(err, ErrUnavailable) {
		t.Errorf("with the shared memory down: %v, want ErrUnavailable", err)
	}
}
