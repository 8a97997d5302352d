package e2e

// Trusted publishing with the real npm CLI: a fake CI ID-token service
// (GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL, GitLab's NPM_ID_TOKEN)
// issues JWTs signed by a test key whose JWKS npmgate reads from a file;
// npm publish with no token exchanges them at npmgate.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/npmgate/npmgate/internal/testservices"
)

const (
	githubIssuer = "https://token.actions.githubusercontent.com"
	gitlabIssuer = "https://gitlab.example.com"
)

// trustConfig: the default feed takes @acme/* from acme/app's release.yml
// in environment prod (GitHub) and acme-gl from GitLab's acme/app; the
// feed team, at /npm/team/, takes @team/* from acme/app's release.yml.
const trustConfig = `
connectors:
  npmjs:
    url: UPSTREAM
    retries: 0
feeds:
  npm:
    default: true
    connectors: [npmjs]
    owned_scopes: ["@acme", "@other"]
    owned_names: ["acme-gl"]
  team:
    connectors: []
publishing:
  issuers:
    - issuer: https://token.actions.githubusercontent.com
      jwks_file: JWKS
    - issuer: https://gitlab.example.com
      jwks_file: JWKS
  trusted:
    - packages: ["@acme/*"]
      repository: acme/app
      workflow: release.yml
      environment: prod
    - packages: ["acme-gl"]
      issuer: https://gitlab.example.com
      project_path: acme/app
      ci_config_path: .gitlab-ci.yml
      ref: main
    - packages: ["@team/*"]
      feed: team
      repository: acme/app
      workflow: release.yml
`

// idService is a fake CI ID-token service: GitHub's form answers GET
// ?audience=... with {"value": JWT} to the request token, with the claims
// claims gives for that audience.
type idService struct {
	t        *testing.T
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	reqToken string
	watch    *secretWatch
	mu       sync.Mutex
	claims   func(aud string) map[string]any
	fixed    string // when set, answered instead of a new token (replay)
	last     string
	jti      int
}

func newIDService(t *testing.T, w *secretWatch) *idService {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &idService{t: t, key: key, reqToken: "gh-request-" + fmt.Sprint(time.Now().UnixNano()), watch: w}
	w.add("ACTIONS_ID_TOKEN_REQUEST_TOKEN", s.reqToken)
	s.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+s.reqToken {
			http.Error(rw, `{"message":"bad request token"}`, http.StatusUnauthorized)
			return
		}
		raw := s.fixedOr(func() string { return s.mint(s.claimsFor(r.URL.Query().Get("audience"))) })
		json.NewEncoder(rw).Encode(map[string]string{"value": raw})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *idService) fixedOr(mint func() string) string {
	s.mu.Lock()
	fixed := s.fixed
	s.mu.Unlock()
	if fixed != "" {
		return fixed
	}
	return mint()
}

func (s *idService) claimsFor(aud string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims(aud)
}

// mint signs claims (a fresh jti unless they have one) and records the
// token as a secret.
func (s *idService) mint(claims map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jti++
	if _, ok := claims["jti"]; !ok {
		claims["jti"] = fmt.Sprintf("jti-%d-%d", time.Now().UnixNano(), s.jti)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "test-key"))
	if err != nil {
		s.t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		s.t.Fatal(err)
	}
	s.watch.add("ID token", raw)
	s.watch.add("ID token signature", raw[strings.LastIndexByte(raw, '.')+1:])
	s.last = raw
	return raw
}

func (s *idService) set(claims func(aud string) map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims, s.fixed = claims, ""
}

// jwksFile writes the service's public key as a JWKS file.
func (s *idService) jwksFile(t *testing.T) string {
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: "test-key", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, f, string(b))
	return f
}

// githubJob is the claims of a GitHub Actions job of repo running
// workflow in env, for aud.
func githubJob(aud, repo, workflow, env string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": githubIssuer, "aud": aud, "sub": "repo:" + repo + ":environment:" + env,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"repository": repo, "repository_owner": strings.Split(repo, "/")[0],
		"workflow_ref": repo + "/.github/workflows/" + workflow + "@refs/heads/main",
		"environment":  env, "ref": "refs/heads/main", "repository_visibility": "private",
	}
}

func gitlabJob(aud, project, config, ref string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": gitlabIssuer, "aud": aud, "sub": "project_path:" + project + ":ref_type:branch:ref:" + ref,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"project_path": project, "ci_config_ref_uri": "gitlab.example.com/" + project + "//" + config + "@refs/heads/" + ref,
		"ref": ref, "ref_type": "branch", "project_visibility": "private",
	}
}

type trustSetup struct {
	g     *gate
	ids   *idService
	watch *secretWatch
}

// minTrustNPM is the first npm that exchanges CI ID tokens.
const minTrustNPM = "11.5.1"

func newTrustSetup(t *testing.T) *trustSetup {
	t.Helper()
	out, err := exec.Command(onPath(t, "npm"), "--version").Output()
	if v, verr := semver.NewVersion(strings.TrimSpace(string(out))); err != nil || verr != nil || v.LessThan(semver.MustParse(minTrustNPM)) {
		t.Fatalf("npm %q on PATH: trusted publishing needs npm %s or later (npm install -g npm@11)", strings.TrimSpace(string(out)), minTrustNPM)
	}
	w := watchSecrets(t)
	ids := newIDService(t, w)
	up := w.upstream(startUpstream(t, ""))
	g, _ := startConfiguredGate(t, up, "", strings.ReplaceAll(trustConfig, "JWKS", ids.jwksFile(t)))
	w.gate(t, g)
	return &trustSetup{g: g, ids: ids, watch: w}
}

// githubCI is a sandbox whose npm runs as in a GitHub Actions job with
// id-token: write, and no npm token.
func (s *trustSetup) githubCI(t *testing.T) *sandbox {
	sb := newSandbox(t)
	sb.env = append(slices.Clone(sb.env), "GITHUB_ACTIONS=true",
		"ACTIONS_ID_TOKEN_REQUEST_URL="+s.ids.srv.URL+"/token?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN="+s.ids.reqToken)
	return sb
}

// gitlabCI is a sandbox whose npm runs as in a GitLab CI job with the ID
// token idToken (id_tokens: NPM_ID_TOKEN).
func gitlabCI(t *testing.T, idToken string) *sandbox {
	sb := newSandbox(t)
	sb.env = append(slices.Clone(sb.env), "GITLAB_CI=true", "NPM_ID_TOKEN="+idToken)
	return sb
}

// publishVerbose runs npm publish with --loglevel verbose, where npm
// prints why a token exchange failed.
func publishVerbose(t *testing.T, sb *sandbox, dir, registry string) result {
	t.Helper()
	return sb.run(t, dir, onPath(t, "npm"), sb.npmArgs(t, registry, "verbose", []string{"publish"})...)
}

// versionsOf are the versions npmgate's feed at registry has of name.
func versionsOf(t *testing.T, registry, name string) []string {
	t.Helper()
	r := get(t, registry+strings.Replace(name, "/", "%2f", 1))
	if r.status != 200 {
		return nil
	}
	var doc struct {
		Versions map[string]json.RawMessage `json:"versions"`
	}
	json.Unmarshal(r.body, &doc)
	var out []string
	for v := range doc.Versions {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// TestTrustedPublishingNPM: npm publish with no token from the trusted
// GitHub workflow succeeds, and fails with npm's own output for another
// workflow, an expired token, a wrong audience, a replayed token and a
// package outside the pattern; GitLab's form works too; a registry at
// /npm/team/ gets a token for that feed although npm exchanges at the root.
func TestTrustedPublishingNPM(t *testing.T) {
	s := newTrustSetup(t)
	sb := s.githubCI(t)
	dir := sb.dir(t, "acme-lib")
	writePublishable(t, dir, "@acme/lib", "1.0.0", nil)

	s.ids.set(func(aud string) map[string]any { return githubJob(aud, "acme/app", "release.yml", "prod") })
	r := publishVerbose(t, sb, dir, s.g.URL)
	mustSucceed(t, r)
	if !strings.Contains(r.out, "oidc Successfully retrieved and set token") {
		t.Errorf("npm did not use the exchanged token:\n%s", r)
	}
	if got := versionsOf(t, s.g.URL, "@acme/lib"); !slices.Equal(got, []string{"1.0.0"}) {
		t.Fatalf("@acme/lib versions after the trusted publish: %v", got)
	}
	accepted := s.ids.last

	refusals := []struct {
		name   string
		claims func(aud string) map[string]any
		replay bool
		pkg    string
		says   string
	}{
		{"another workflow", func(aud string) map[string]any { return githubJob(aud, "acme/app", "test.yml", "prod") }, false, "@acme/lib",
			`no trusted publisher of @acme/lib matches this job (issuer ` + githubIssuer + `, repository "acme/app", workflow "test.yml"`},
		{"another repository", func(aud string) map[string]any { return githubJob(aud, "evil/app", "release.yml", "prod") }, false, "@acme/lib",
			`no trusted publisher of @acme/lib matches this job (issuer ` + githubIssuer + `, repository "evil/app"`},
		{"expired", func(aud string) map[string]any {
			c := githubJob(aud, "acme/app", "release.yml", "prod")
			c["iat"], c["nbf"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Hour).Unix(), time.Now().Add(-10*time.Minute).Unix()
			return c
		}, false, "@acme/lib", "invalid ID token: expired at"},
		{"wrong audience", func(string) map[string]any {
			return githubJob("npm:registry.npmjs.org", "acme/app", "release.yml", "prod")
		}, false, "@acme/lib",
			`invalid ID token: audience "npm:registry.npmjs.org" is not this registry's (npm:127.0.0.1`},
		{"replayed", nil, true, "@acme/lib", "this ID token was exchanged before"},
		{"package outside the pattern", func(aud string) map[string]any { return githubJob(aud, "acme/app", "release.yml", "prod") }, false, "@other/lib",
			"no trusted publisher is configured for @other/lib"},
	}
	for i, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if tc.replay {
				s.ids.mu.Lock()
				s.ids.fixed = accepted
				s.ids.mu.Unlock()
			} else {
				s.ids.set(tc.claims)
			}
			d := sb.dir(t, fmt.Sprintf("refused-%d", i))
			writePublishable(t, d, tc.pkg, "2.0.0", nil)
			r := publishVerbose(t, sb, d, s.g.URL)
			// npm logs the exchange's message and, left without a
			// token, refuses to publish.
			mustFailWith(t, r, "npm verbose oidc Failed token exchange request with body message: "+tc.says,
				"npm error code ENEEDAUTH", "This command requires you to be logged in to "+s.g.URL)
			if got := versionsOf(t, s.g.URL, tc.pkg); slices.Contains(got, "2.0.0") {
				t.Errorf("%s@2.0.0 was published: %v", tc.pkg, got)
			}
		})
	}

	t.Run("gitlab", func(t *testing.T) {
		raw := s.ids.mint(gitlabJob("npm:127.0.0.1", "acme/app", ".gitlab-ci.yml", "main"))
		gl := gitlabCI(t, raw)
		d := gl.dir(t, "acme-gl")
		writePublishable(t, d, "acme-gl", "1.0.0", nil)
		mustSucceed(t, publishVerbose(t, gl, d, s.g.URL))
		other := gitlabCI(t, s.ids.mint(gitlabJob("npm:127.0.0.1", "acme/app", ".gitlab-ci.yml", "dev")))
		writePublishable(t, d, "acme-gl", "1.0.1", nil)
		mustFailWith(t, publishVerbose(t, other, d, s.g.URL), `ref "dev")`, "ENEEDAUTH")
		if got := versionsOf(t, s.g.URL, "acme-gl"); !slices.Equal(got, []string{"1.0.0"}) {
			t.Errorf("acme-gl versions: %v, want [1.0.0]", got)
		}
	})

	t.Run("feed at /npm/team/", func(t *testing.T) {
		// A public repository: npm then asks the registry whether the
		// package is public before it turns provenance on.
		s.ids.set(func(aud string) map[string]any {
			c := githubJob(aud, "acme/app", "release.yml", "")
			c["repository_visibility"] = "public"
			return c
		})
		team := s.g.URL + "npm/team/"
		d := sb.dir(t, "team-lib")
		writePublishable(t, d, "@team/lib", "1.0.0", nil)
		mustSucceed(t, publishVerbose(t, sb, d, team))
		if got := versionsOf(t, team, "@team/lib"); !slices.Equal(got, []string{"1.0.0"}) {
			t.Errorf("@team/lib on feed team: %v", got)
		}
		if got := versionsOf(t, s.g.URL, "@team/lib"); len(got) != 0 {
			t.Errorf("@team/lib on the default feed: %v", got)
		}
	})

	metrics := string(get(t, s.g.URL+"metrics").body)
	for _, want := range []string{`npmgate_oidc_exchanges_total{outcome="ok"} 3`, `npmgate_oidc_exchanges_total{outcome="untrusted"} 4`,
		`npmgate_oidc_exchanges_total{outcome="invalid_token"} 2`, `npmgate_oidc_exchanges_total{outcome="replayed"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	waitLog(t, s.g, `outcome=replayed`)
	log := s.g.logText()
	if !strings.Contains(log, `repository=acme/app workflow=test.yml`) {
		t.Errorf("the exchanges' identities are not in the log:\n%s", log)
	}
	if m := regexp.MustCompile(`npmgk?_[A-Za-z0-9]{8,}`).FindString(log); m != "" {
		t.Errorf("npmgate's log holds a token: %.12s…", m)
	}
}

// exchangeDirect asks npmgate's exchange for name with a fresh token of
// the trusted workflow and returns the token given back.
func (s *trustSetup) exchangeDirect(t *testing.T, name string) string {
	t.Helper()
	raw := s.ids.mint(githubJob("npm:127.0.0.1", "acme/app", "release.yml", "prod"))
	r := post(t, s.g.URL+"-/npm/v1/oidc/token/exchange/package/"+strings.Replace(name, "/", "%2f", 1), nil, "Authorization", "Bearer "+raw)
	var body struct {
		Token string `json:"token"`
	}
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &body) != nil || body.Token == "" {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	s.watch.add("exchanged token", body.Token)
	return body.Token
}

// TestTrustedPublishingTokenLimits: the token an exchange gives is good
// for its feed only; once for its package only (the limits the token store
// enforces).
func TestTrustedPublishingTokenLimits(t *testing.T) {
	s := newTrustSetup(t)
	tok := s.exchangeDirect(t, "@acme/lib")
	sb := newSandbox(t)
	sb.setUserrc(t, npmrcKey(s.g.URL)+":_authToken="+tok, npmrcKey(s.g.URL+"npm/team/")+":_authToken="+tok)
	d := sb.dir(t, "team")
	// The token's user is a principal npm can show.
	who := sb.npm(t, d, s.g.URL, "whoami")
	mustSucceed(t, who)
	if !strings.Contains(who.out, "oidc-github-acme.app") {
		t.Errorf("npm whoami with the exchanged token:\n%s", who)
	}
	writePublishable(t, d, "@acme/lib", "1.0.0", nil)
	mustFailWith(t, sb.npm(t, d, s.g.URL+"npm/team/", "publish"), "E403", `not valid for feed "team"`)

	// Another package of the pattern with a token for @acme/lib.
	o := sb.dir(t, "other")
	writePublishable(t, o, "@acme/other", "1.0.0", nil)
	otherRefused := sb.npm(t, o, s.g.URL, "publish")

	mustSucceed(t, sb.npm(t, d, s.g.URL, "publish"))
	setPackageVersion(t, d, "1.0.1")
	againRefused := sb.npm(t, d, s.g.URL, "publish")
	mustFailWith(t, otherRefused, "E403")
	mustFailWith(t, againRefused, "npm error")
}

// TestTrustedPublishingYarn: yarn 4 (yarn npm publish in GitHub Actions)
// sends the exchange below its registry URL, /npm/team/, and asks for the
// audience with the port: it gets a token for feed team.
func TestTrustedPublishingYarn(t *testing.T) {
	tool := toolPath(t, toolYarn4)
	s := newTrustSetup(t)
	s.ids.set(func(aud string) map[string]any { return githubJob(aud, "acme/app", "release.yml", "prod") })
	sb := s.githubCI(t)
	reg := strings.TrimSuffix(s.g.URL+"npm/team/", "/")
	dir := sb.dir(t, "yarn-pkg")
	writePublishable(t, dir, "@team/yarn-lib", "1.0.0", nil)
	writeFile(t, filepath.Join(dir, "yarn.lock"), "")
	writeFile(t, filepath.Join(dir, ".yarnrc.yml"), fmt.Sprintf("npmRegistryServer: %q\n"+
		"npmPublishRegistry: %q\n"+
		"unsafeHttpWhitelist:\n  - \"127.0.0.1\"\n"+
		"nodeLinker: node-modules\n"+
		"enableGlobalCache: false\n"+
		"enableMirror: false\n"+
		"cacheFolder: %q\n"+
		"enableTelemetry: false\n", reg, reg, sb.dir(t, "yarn-cache")))
	mustSucceed(t, sb.node(t, dir, tool, "install"))
	r := sb.node(t, dir, tool, "npm", "publish")
	mustSucceed(t, r)
	if got := versionsOf(t, reg+"/", "@team/yarn-lib"); !slices.Equal(got, []string{"1.0.0"}) {
		t.Errorf("@team/yarn-lib on feed team: %v\n%s", got, r)
	}
	waitLog(t, s.g, "path=/npm/team/-/npm/v1/oidc/token/exchange/package/@team%2fyarn-lib status=201")
	// Another workflow: the exchange is refused and yarn, with no token,
	// cannot publish.
	s.ids.set(func(aud string) map[string]any { return githubJob(aud, "acme/app", "test.yml", "prod") })
	setPackageVersion(t, dir, "1.0.1")
	if r := sb.node(t, dir, tool, "npm", "publish"); r.code == 0 {
		t.Errorf("yarn published from another workflow:\n%s", r)
	}
	if got := versionsOf(t, reg+"/", "@team/yarn-lib"); !slices.Equal(got, []string{"1.0.0"}) {
		t.Errorf("@team/yarn-lib after the refused publish: %v", got)
	}
}

// waitLog waits up to 5 seconds for npmgate's log (read from its stderr
// as it comes) to show want.
func waitLog(t *testing.T, g *gate, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(g.logText(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("npmgate's log does not show %q", want)
		}
	}
}

// TestScaleOutTrustedPublishingReplay: with replicas, an ID token
// exchanged at one replica is refused at the other (each remembering only
// its own exchanges would let a token taken from a CI log be exchanged
// once more per replica); a new token is exchanged at either.
func TestScaleOutTrustedPublishingReplay(t *testing.T) {
	w := watchSecrets(t)
	ids := newIDService(t, w)
	up := w.upstream(startUpstream(t, ""))
	db, s3 := testservices.Postgres(t), testservices.S3(t)
	cfg := strings.NewReplacer("JWKS", ids.jwksFile(t), "UPSTREAM", up.URL).Replace(trustConfig) +
		fmt.Sprintf("database:\n  url: %s\nstorage:\n  s3:\n    endpoint: %s\n    region: %s\n    bucket: %s\n    path_style: true\n    access_key: %s\n    secret_key: %s\n",
			db, s3.Endpoint, s3.Region, s3.Bucket, s3.AccessKey, s3.SecretKey)
	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, file, cfg)
	gateCLI(t, file, t.TempDir(), "", "migrate")
	start := func() *gate {
		data := t.TempDir()
		return w.gate(t, startGateWith(t, data, nil, "--config", file, "--listen", "127.0.0.1:0", "--data", data))
	}
	one, two := start(), start()
	exchange := func(g *gate, raw string) response {
		return post(t, g.URL+"-/npm/v1/oidc/token/exchange/package/@acme%2flib", nil, "Authorization", "Bearer "+raw)
	}
	raw := ids.mint(githubJob("npm:127.0.0.1", "acme/app", "release.yml", "prod"))
	if r := exchange(one, raw); r.status != http.StatusCreated {
		t.Fatalf("exchange at replica one: %d %s", r.status, r.body)
	}
	for name, g := range map[string]*gate{"replica two": two, "replica one again": one} {
		if r := exchange(g, raw); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "exchanged before") {
			t.Errorf("the same ID token at %s: %d %s", name, r.status, r.body)
		}
	}
	fresh := ids.mint(githubJob("npm:127.0.0.1", "acme/app", "release.yml", "prod"))
	if r := exchange(two, fresh); r.status != http.StatusCreated {
		t.Errorf("a new ID token at replica two: %d %s", r.status, r.body)
	}
}
