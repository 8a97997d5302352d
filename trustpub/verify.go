package trustpub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/time/rate"
)

// Limits of verification.
const (
	// maxTokenSize bounds an ID token (GitHub's are about 1.5 KiB).
	maxTokenSize = 16 << 10
	// maxDocSize bounds a discovery document or a JWKS fetched.
	maxDocSize = 1 << 20
	// skew is the clock difference allowed on exp, nbf and iat.
	skew = time.Minute
	// keysMaxAge is how long fetched keys are used before a refresh.
	keysMaxAge = time.Hour
	// refreshEvery bounds fetches per issuer: a token with an unknown
	// key id makes at most one in this time.
	refreshEvery = 10 * time.Second
	// fetchTimeout bounds one discovery or JWKS request.
	fetchTimeout = 10 * time.Second
	// defaultRemembered bounds the ID tokens remembered against replay.
	defaultRemembered = 100_000
)

// algorithms are the signatures accepted: those CI issuers use.
var algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.ES256, jose.ES384}

// Options configure a Verifier.
type Options struct {
	// Files maps an issuer to a JWKS file (air-gapped sites): its keys
	// are used and the issuer is never asked for them.
	Files map[string]string
	// Client fetches discovery documents and keys; nil: a client with a
	// 10 second timeout.
	Client *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Remembered bounds the tokens remembered against replay (0: 100,000).
	Remembered int
	// Replays remembers the tokens exchanged: nil is this process's
	// memory (Remembered); with replicas, the database they share, so
	// that a token exchanged at one replica is refused at every other.
	Replays Replays
}

// Replays remembers the ID tokens exchanged, wherever all the servers
// that accept them can see it.
type Replays interface {
	// Remember records key as used until expires and reports whether it
	// is new: false when a use of key has not expired yet. Of two
	// concurrent calls with one key, one is new.
	Remember(ctx context.Context, key string, expires time.Time) (bool, error)
}

// Verifier checks ID tokens: signature against the issuer's keys, issuer,
// audience, lifetime, and that a token is exchanged once.
type Verifier struct {
	client *http.Client
	now    func() time.Time
	mu     sync.Mutex
	sets   map[string]*keySet
	// replays remembers the tokens exchanged (Use).
	replays Replays
}

// keySet is one issuer's keys: from a file, or fetched through its
// discovery document and refreshed when old or missing a key id.
type keySet struct {
	mu      sync.Mutex
	static  bool
	keys    jose.JSONWebKeySet
	fetched time.Time
	limit   *rate.Limiter
}

// NewVerifier reads the configured JWKS files.
func NewVerifier(o Options) (*Verifier, error) {
	v := &Verifier{client: o.Client, now: o.Now, sets: map[string]*keySet{}, replays: o.Replays}
	if v.client == nil {
		v.client = &http.Client{Timeout: fetchTimeout}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.replays == nil {
		r := &replay{max: o.Remembered, m: map[string]time.Time{}, now: v.now}
		if r.max <= 0 {
			r.max = defaultRemembered
		}
		v.replays = r
	}
	for iss, file := range o.Files {
		ks, err := ReadJWKS(file)
		if err != nil {
			return nil, err
		}
		v.sets[iss] = &keySet{static: true, keys: *ks}
	}
	return v, nil
}

// ReadJWKS reads a JWKS file and checks it holds public keys.
func ReadJWKS(file string) (*jose.JSONWebKeySet, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var ks jose.JSONWebKeySet
	if err := json.Unmarshal(b, &ks); err != nil {
		return nil, fmt.Errorf("%s: not a JWKS: %w", file, err)
	}
	if len(ks.Keys) == 0 {
		return nil, fmt.Errorf("%s: the JWKS has no keys", file)
	}
	for _, k := range ks.Keys {
		if !k.IsPublic() || !k.Valid() {
			return nil, fmt.Errorf("%s: key %q is not a valid public key", file, k.KeyID)
		}
	}
	return &ks, nil
}

// idClaims are the claims read from GitHub's and GitLab's ID tokens.
type idClaims struct {
	jwt.Claims
	Repository     string `json:"repository"`
	WorkflowRef    string `json:"workflow_ref"`
	Environment    string `json:"environment"`
	Ref            string `json:"ref"`
	ProjectPath    string `json:"project_path"`
	CIConfigRefURI string `json:"ci_config_ref_uri"`
}

// Verify checks raw and returns the identity it proves. issuers are the
// issuers trusted at all (no other is ever asked for keys); audiences are
// those that name this registry. Whether the token was exchanged before
// is Use's to say: the record of its use is what tells a replay, in one
// step (with replicas, one insert).
func (v *Verifier) Verify(ctx context.Context, raw string, issuers, audiences []string) (*Identity, error) {
	if len(raw) > maxTokenSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidToken, maxTokenSize)
	}
	tok, err := jwt.ParseSigned(raw, algorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	var unsafe jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unsafe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !contains(issuers, unsafe.Issuer) {
		return nil, fmt.Errorf("%w: issuer %q is not trusted by any publisher", ErrInvalidToken, unsafe.Issuer)
	}
	key, err := v.key(ctx, unsafe.Issuer, tok.Headers[0].KeyID)
	if err != nil {
		return nil, err
	}
	var c idClaims
	if err := tok.Claims(key.Key, &c); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrInvalidToken, err)
	}
	now := v.now()
	if err := checkTime(&c.Claims, now); err != nil {
		return nil, err
	}
	if !anyAudience(c.Audience, audiences) {
		return nil, fmt.Errorf("%w: audience %q is not this registry's (%s)", ErrInvalidToken, strings.Join(c.Audience, ","), strings.Join(audiences, " or "))
	}
	id := identity(&c, raw)
	id.Expires = c.Expiry.Time()
	return id, nil
}

// Use marks the token of id used, until it expires: it is refused from
// then on. It is called once the identity matched a trusted publisher, so
// that only tokens of trusted jobs take memory (anyone's CI can mint a
// genuine token for this audience); of two concurrent exchanges of one
// token, the second gets ErrReplayed.
func (v *Verifier) Use(ctx context.Context, id *Identity) error {
	// Hashed: a key of fixed size and alphabet, whatever the jti holds.
	sum := sha256.Sum256([]byte(id.replayKey()))
	fresh, err := v.replays.Remember(ctx, hex.EncodeToString(sum[:]), id.Expires.Add(skew))
	switch {
	case err != nil:
		return fmt.Errorf("%w: remembering the ID token: %v", ErrUnavailable, err)
	case !fresh:
		return errReplayed()
	}
	return nil
}

func (id *Identity) replayKey() string { return id.Issuer + "\x00" + id.ID }

func errReplayed() error {
	return refuse(ErrReplayed, "this ID token was exchanged before: a CI job asks for a new one for each publish")
}

// checkTime checks exp (required), nbf and iat with skew.
func checkTime(c *jwt.Claims, now time.Time) error {
	switch {
	case c.Expiry == nil:
		return fmt.Errorf("%w: no expiry (exp)", ErrInvalidToken)
	case now.Add(-skew).After(c.Expiry.Time()):
		return fmt.Errorf("%w: expired at %s", ErrInvalidToken, c.Expiry.Time().UTC().Format(time.RFC3339))
	case c.NotBefore != nil && now.Add(skew).Before(c.NotBefore.Time()):
		return fmt.Errorf("%w: not valid before %s", ErrInvalidToken, c.NotBefore.Time().UTC().Format(time.RFC3339))
	case c.IssuedAt != nil && now.Add(skew).Before(c.IssuedAt.Time()):
		return fmt.Errorf("%w: issued in the future (%s)", ErrInvalidToken, c.IssuedAt.Time().UTC().Format(time.RFC3339))
	}
	return nil
}

func identity(c *idClaims, raw string) *Identity {
	id := &Identity{Issuer: c.Issuer, Subject: c.Subject, ID: c.ID, Environment: c.Environment, Ref: c.Ref}
	if id.ID == "" {
		sum := sha256.Sum256([]byte(raw))
		id.ID = "sha256:" + hex.EncodeToString(sum[:])
	}
	switch {
	case c.WorkflowRef != "":
		id.Provider = GitHub
		id.Repository = c.Repository
		id.workflowRepo, id.Workflow = githubWorkflow(c.WorkflowRef)
	case c.ProjectPath != "":
		id.Provider = GitLab
		id.Repository = c.ProjectPath
		id.workflowRepo, id.Workflow = gitlabConfig(c.CIConfigRefURI, c.Issuer)
	}
	return id
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func anyAudience(got jwt.Audience, want []string) bool {
	for _, w := range want {
		if got.Contains(w) {
			return true
		}
	}
	return false
}

// key finds the issuer's key kid, fetching the issuer's keys when none are
// known yet, they are old, or kid is not among them (within the rate
// limit).
func (v *Verifier) key(ctx context.Context, iss, kid string) (*jose.JSONWebKey, error) {
	v.mu.Lock()
	ks := v.sets[iss]
	if ks == nil {
		ks = &keySet{limit: rate.NewLimiter(rate.Every(refreshEvery), 1)}
		v.sets[iss] = ks
	}
	v.mu.Unlock()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	k := find(&ks.keys, kid)
	if ks.static {
		if k == nil {
			return nil, fmt.Errorf("%w: no key %q in the JWKS file of %s", ErrInvalidToken, kid, iss)
		}
		return k, nil
	}
	if (k == nil || v.now().Sub(ks.fetched) > keysMaxAge) && ks.limit.AllowN(v.now(), 1) {
		keys, err := v.fetchKeys(ctx, iss)
		if err != nil && len(ks.keys.Keys) == 0 {
			return nil, fmt.Errorf("%w: keys of %s: %v", ErrUnavailable, iss, err)
		}
		if err == nil {
			ks.keys, ks.fetched = *keys, v.now()
			k = find(&ks.keys, kid)
		}
	}
	if k == nil {
		return nil, fmt.Errorf("%w: %s has no key %q", ErrInvalidToken, iss, kid)
	}
	return k, nil
}

// find is the key kid of ks; a token without kid may use a set's only key.
func find(ks *jose.JSONWebKeySet, kid string) *jose.JSONWebKey {
	if kid == "" {
		if len(ks.Keys) == 1 {
			return &ks.Keys[0]
		}
		return nil
	}
	if keys := ks.Key(kid); len(keys) > 0 {
		return &keys[0]
	}
	return nil
}

// fetchKeys reads the issuer's discovery document and then its JWKS.
func (v *Verifier) fetchKeys(ctx context.Context, iss string) (*jose.JSONWebKeySet, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, strings.TrimSuffix(iss, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return nil, err
	}
	if doc.Issuer != iss {
		return nil, fmt.Errorf("discovery document names issuer %q", doc.Issuer)
	}
	if !strings.HasPrefix(doc.JWKSURI, "https://") && !(strings.HasPrefix(iss, "http://") && strings.HasPrefix(doc.JWKSURI, "http://")) {
		return nil, fmt.Errorf("jwks_uri %q is not https", doc.JWKSURI)
	}
	var ks jose.JSONWebKeySet
	if err := v.getJSON(ctx, doc.JWKSURI, &ks); err != nil {
		return nil, err
	}
	return &ks, nil
}

// getJSON fetches url into dst, within fetchTimeout and maxDocSize.
func (v *Verifier) getJSON(ctx context.Context, url string, dst any) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocSize+1))
	if err != nil {
		return err
	}
	if len(b) > maxDocSize {
		return fmt.Errorf("GET %s: larger than %d bytes", url, maxDocSize)
	}
	return json.Unmarshal(b, dst)
}

// replay is the Replays of one process: the tokens exchanged until they
// expire, at most max of them: past that, expired ones are forgotten, and
// if none has expired an exchange is refused rather than memory grown.
type replay struct {
	mu    sync.Mutex
	max   int
	m     map[string]time.Time
	now   func() time.Time
	swept time.Time // last sweep of expired entries
}

var errFull = errors.New("too many ID tokens in their lifetime are remembered; try again shortly")

func (r *replay) Remember(_ context.Context, key string, expires time.Time) (bool, error) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if until, ok := r.m[key]; ok && now.Before(until) {
		return false, nil
	}
	if len(r.m) >= r.max {
		// A sweep walks every entry: at most one a second while full.
		if now.Sub(r.swept) >= time.Second {
			r.swept = now
			for k, until := range r.m {
				if !now.Before(until) {
					delete(r.m, k)
				}
			}
		}
		if len(r.m) >= r.max {
			return false, errFull
		}
	}
	r.m[key] = expires
	return true, nil
}
