package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// authConfig has a public default feed (npm, at /), a feed that only
// authenticated users read (locked), one that only the group devs reads
// and publishes to (team), and a private feed of the owned scope @acme
// with no connector.
const authConfig = `
connectors:
  npmjs:
    url: UPSTREAM
    retries: 0
feeds:
  npm:
    default: true
    connectors: [npmjs]
  locked:
    connectors: [npmjs]
    access:
      read: [$authenticated]
      publish: [$authenticated]
  team:
    connectors: [npmjs]
    access:
      read: [devs]
      publish: [devs]
  private:
    owned_scopes: ["@acme"]
    access:
      read: [$authenticated]
      publish: [devs]
auth:
  groups:
    devs: [alice]
`

// authSetup is one npmgate with authConfig and the users alice (in devs)
// and bob (in no group).
type authSetup struct {
	up    *upstream
	g     *gate
	cfg   string
	sb    *sandbox
	watch *secretWatch
}

func newAuthSetup(t *testing.T) *authSetup {
	t.Helper()
	w := watchSecrets(t)
	w.addPassword("alice", alicePassword)
	w.addPassword("bob", bobPassword)
	up := w.upstream(startUpstream(t, ""))
	data := t.TempDir()
	// Users exist before the server starts, as after an install script.
	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, file, strings.ReplaceAll(authConfig, "UPSTREAM", up.URL))
	addGateUser(t, file, data, "alice", alicePassword)
	addGateUser(t, file, data, "bob", bobPassword)
	g := w.gate(t, startGate(t, up.URL, data, "--config", file))
	return &authSetup{up: up, g: g, cfg: file, sb: newSandbox(t), watch: w}
}

func (s *authSetup) feed(name string) string { return s.g.URL + "npm/" + name + "/" }

// npmE401 is the error npm prints for a 401 (it shows its own text, not
// the registry's message).
const npmE401 = "npm error code E401"

// TestAuthNPMLogin logs in with the real npm client against a feed that
// only authenticated users may read, in both flows npm has (legacy, and
// web falling back to legacy on npmgate's 404), then uses the token npm
// saved: whoami, install, token list/create/revoke, logout.
func TestAuthNPMLogin(t *testing.T) {
	s := newAuthSetup(t)
	sb, locked := s.sb, s.feed("locked")
	project := sb.dir(t, "project")
	writeConsumer(t, project)
	answers := []cliPrompt{{"Username:", "alice"}, {"Password:", alicePassword}}

	savedToken := func(t *testing.T) string {
		t.Helper()
		b, err := os.ReadFile(sb.userrc)
		if err != nil {
			t.Fatalf("npm's user config: %v", err)
		}
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(npmrcKey(locked)) + `:_authToken=(\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("npm did not save a token for %s in its user config:\n%s", npmrcKey(locked), b)
		}
		tok := string(m[1])
		s.watch.add("token from npm login", tok)
		return tok
	}

	var webToken string
	t.Run("web login falls back to the password prompt", func(t *testing.T) {
		r := sb.npmWithPrompts(t, project, locked, answers, "login")
		mustSucceed(t, r)
		for _, want := range []string{"POST 404 " + locked + "-/v1/login", "PUT 201 " + locked + "-/user/org.couchdb.user:alice", "Logged in on " + locked} {
			if !strings.Contains(r.out, want) {
				t.Errorf("npm login output lacks %q:\n%s", want, r)
			}
		}
		webToken = savedToken(t)
	})

	t.Run("wrong password", func(t *testing.T) {
		sb.setUserrc(t)
		r := sb.npmWithPrompts(t, project, locked, []cliPrompt{{"Username:", "alice"}, {"Password:", "not-" + alicePassword}}, "login", "--auth-type=legacy")
		mustFailWith(t, r, npmE401, "PUT 401 "+locked+"-/user/org.couchdb.user:alice")
		if b, _ := os.ReadFile(sb.userrc); strings.Contains(string(b), "_authToken") {
			t.Errorf("a failed login saved a token:\n%s", b)
		}
	})

	var token string
	if !t.Run("legacy login", func(t *testing.T) {
		sb.setUserrc(t)
		r := sb.npmWithPrompts(t, project, locked, answers, "login", "--auth-type=legacy")
		mustSucceed(t, r)
		if strings.Contains(r.out, "/-/v1/login") {
			t.Errorf("npm login --auth-type=legacy tried the web flow:\n%s", r)
		}
		token = savedToken(t)
		if token == webToken {
			t.Errorf("two logins gave the same token")
		}
	}) || token == "" {
		return // (token is empty when -run skipped the login)
	}

	t.Run("whoami", func(t *testing.T) {
		r := sb.npm(t, project, locked, "whoami")
		mustSucceed(t, r)
		if strings.TrimSpace(lastOutputLine(r.out)) != "alice" {
			t.Errorf("npm whoami did not print alice:\n%s", r)
		}
	})

	t.Run("install from the locked feed", func(t *testing.T) {
		r := sb.npm(t, project, locked, "install", "debug@4.4.3")
		mustSucceed(t, r)
		checkInstalledVersion(t, project, "debug", "4.4.3")
		checkInstalledVersion(t, project, "ms", "2.1.3")
		lf := readLockfile(t, filepath.Join(project, "package-lock.json"))
		for _, p := range lf.Packages {
			if !strings.HasPrefix(p.Resolved, locked) {
				t.Errorf("%s resolved to %s, not under %s", p.Path, p.Resolved, locked)
			}
		}
	})

	var created string
	t.Run("token list and create", func(t *testing.T) {
		r := sb.npm(t, project, locked, "token", "list")
		mustSucceed(t, r)
		for _, tok := range []string{token, webToken} {
			if !strings.Contains(r.out, tok[:9]) {
				t.Errorf("npm token list does not show the token %s…:\n%s", tok[:9], r)
			}
		}
		if strings.Contains(r.out, token) {
			t.Errorf("npm token list shows a whole secret:\n%s", r)
		}

		// npm 11 sends the password of --password; without it, it would
		// prompt for it.
		r = sb.npm(t, project, locked, "token", "create", "--password="+alicePassword)
		mustSucceed(t, r)
		m := regexp.MustCompile(`Created token (npmg_\S+)`).FindStringSubmatch(r.out)
		if m == nil {
			t.Fatalf("npm token create printed no token:\n%s", r)
		}
		created = m[1]
		s.watch.add("token from npm token create", created)
		r = sb.npm(t, project, locked, "whoami", "--"+npmrcKey(locked)+":_authToken="+created)
		mustSucceed(t, r)
		if lastOutputLine(r.out) != "alice" {
			t.Errorf("npm whoami with the created token:\n%s", r)
		}

		r = sb.npm(t, project, locked, "token", "create", "--password=not-"+alicePassword)
		mustFailWith(t, r, npmE401)

		r = sb.npm(t, project, locked, "token", "list", "--json")
		mustSucceed(t, r)
		var list []struct {
			Key   string `json:"key"`
			Token string `json:"token"`
		}
		if err := json.Unmarshal([]byte(npmJSONOutput(r.out)), &list); err != nil {
			t.Fatalf("npm token list --json: %v\n%s", err, r)
		}
		keys := map[string]bool{}
		for _, e := range list {
			keys[e.Key] = true
		}
		for _, tok := range []string{token, webToken, created} {
			if !keys[tokenKeyOf(tok)] {
				t.Errorf("npm token list --json lacks the key of %s…: %+v", tok[:9], list)
			}
		}
	})

	t.Run("token revoke", func(t *testing.T) {
		if created == "" {
			t.Skip("no token was created")
		}
		r := sb.npm(t, project, locked, "token", "revoke", tokenKeyOf(created)[:12])
		mustSucceed(t, r)
		if !strings.Contains(r.out, "Removed 1 token") {
			t.Errorf("npm token revoke:\n%s", r)
		}
		r = sb.npm(t, project, locked, "whoami", "--"+npmrcKey(locked)+":_authToken="+created)
		mustFailWith(t, r, npmE401)
		// The token npm is logged in with still works.
		mustSucceed(t, sb.npm(t, project, locked, "whoami"))
		// Another user's token cannot be revoked.
		bobs := cliToken(t, s.g, s.cfg, "--user", "bob")
		s.watch.add("bob's token", bobs)
		r = sb.npm(t, project, locked, "token", "revoke", tokenKeyOf(bobs)[:12])
		mustFailWith(t, r)
		resp := do(t, "DELETE", locked+"-/npm/v1/tokens/token/"+tokenKeyOf(bobs), "Authorization", "Bearer "+token)
		if resp.status != 404 {
			t.Errorf("DELETE of bob's token with alice's: %d %s, want 404", resp.status, resp.body)
		}
		if r := get(t, locked+"-/whoami", "Authorization", "Bearer "+bobs); r.status != 200 {
			t.Errorf("bob's token stopped working: %d %s", r.status, r.body)
		}
	})

	t.Run("logout", func(t *testing.T) {
		r := sb.npm(t, project, locked, "logout")
		mustSucceed(t, r)
		if !strings.Contains(r.out, "DELETE 200 "+locked+"-/user/token/") {
			t.Errorf("npm logout did not revoke its token on the registry:\n%s", r)
		}
		if b, _ := os.ReadFile(sb.userrc); strings.Contains(string(b), token) {
			t.Errorf("npm logout left the token in its user config:\n%s", b)
		}
		// The token is gone on the server, not only from npm's config.
		r = sb.npm(t, project, locked, "whoami", "--"+npmrcKey(locked)+":_authToken="+token)
		mustFailWith(t, r, npmE401, "GET 401 "+locked+"-/whoami")
		// The web login's token is still good.
		r = sb.npm(t, project, locked, "whoami", "--"+npmrcKey(locked)+":_authToken="+webToken)
		mustSucceed(t, r)
	})
}

// lastOutputLine is the last non-empty line of out that is not an npm log line.
func lastOutputLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "npm ") {
			return l
		}
	}
	return ""
}

// npmJSONOutput is npm's output without its log lines (--json output is
// printed on stdout, the http log lines on stderr, both captured).
func npmJSONOutput(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "npm ") {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// TestAuthLockedFeedErrors installs from a feed without credentials, with
// bad ones, and as a user whose groups lack the feed: npm fails with E401,
// E401 and E403 (showing npmgate's reason), and installs nothing.
func TestAuthLockedFeedErrors(t *testing.T) {
	s := newAuthSetup(t)
	sb := s.sb

	t.Run("no credentials", func(t *testing.T) {
		sb.setUserrc(t)
		project := sb.dir(t, "anonymous")
		writeConsumer(t, project)
		r := sb.npm(t, project, s.feed("locked"), "install", "ms")
		mustFailWith(t, r, npmE401, "GET 401 "+s.feed("locked")+"ms")
		if _, err := os.Stat(filepath.Join(project, "node_modules", "ms")); err == nil {
			t.Errorf("ms was installed without credentials")
		}
		// What npm did not print: npmgate's challenge and reason.
		resp := get(t, s.feed("locked")+"ms")
		if resp.status != 401 || !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Basic") ||
			!strings.Contains(string(resp.body), "needs credentials") {
			t.Errorf("GET /npm/locked/ms anonymously: %d, WWW-Authenticate %q, %s", resp.status, resp.header.Get("WWW-Authenticate"), resp.body)
		}
		// The tarball is protected like its packument.
		if resp := get(t, s.feed("locked")+"ms/-/ms-2.1.3.tgz"); resp.status != 401 {
			t.Errorf("GET the tarball anonymously: %d, want 401", resp.status)
		}
	})

	t.Run("unknown token", func(t *testing.T) {
		fake := "npmg_" + strings.Repeat("A", 52)
		s.watch.add("made-up token", fake)
		sb.setUserrc(t, npmrcKey(s.feed("locked"))+":_authToken="+fake)
		project := sb.dir(t, "badtoken")
		writeConsumer(t, project)
		mustFailWith(t, sb.npm(t, project, s.feed("locked"), "install", "ms"), npmE401)
	})

	t.Run("wrong password", func(t *testing.T) {
		sb.setUserrc(t, npmrcKey(s.feed("locked"))+":_auth="+basicAuth("alice", "not-"+alicePassword))
		s.watch.addPassword("alice (wrong)", "not-"+alicePassword)
		project := sb.dir(t, "badpassword")
		writeConsumer(t, project)
		mustFailWith(t, sb.npm(t, project, s.feed("locked"), "install", "ms"), npmE401)
	})

	t.Run("user outside the group", func(t *testing.T) {
		bobs := cliToken(t, s.g, s.cfg, "--user", "bob")
		s.watch.add("bob's token", bobs)
		sb.setUserrc(t, npmrcKey(s.feed("team"))+":_authToken="+bobs)
		project := sb.dir(t, "bob")
		writeConsumer(t, project)
		r := sb.npm(t, project, s.feed("team"), "install", "ms")
		mustFailWith(t, r, "npm error code E403", "GET 403 "+s.feed("team")+"ms", `bob may not read on feed "team"`)
		if _, err := os.Stat(filepath.Join(project, "node_modules", "ms")); err == nil {
			t.Errorf("ms was installed by a user outside the group")
		}
	})

	t.Run("user in the group", func(t *testing.T) {
		// username and _password (base64), as the README shows.
		pw64 := base64.StdEncoding.EncodeToString([]byte(alicePassword))
		s.watch.add("base64 of alice's password", pw64)
		sb.setUserrc(t, npmrcKey(s.feed("team"))+":username=alice", npmrcKey(s.feed("team"))+":_password="+pw64)
		project := sb.dir(t, "alice")
		writeConsumer(t, project)
		mustSucceed(t, sb.npm(t, project, s.feed("team"), "install", "ms@2.1.3"))
		checkInstalledVersion(t, project, "ms", "2.1.3")
	})
}

// TestAuthAPIKey uses a read-only API key as npm's _auth (ProGet style,
// base64 of api:KEY): install works, publish is refused with E403, and
// once the key is revoked with the CLI the next install fails with E401.
func TestAuthAPIKey(t *testing.T) {
	s := newAuthSetup(t)
	sb, locked := s.sb, s.feed("locked")
	key := cliAPIKey(t, s.g, s.cfg, "--name", "ci-bot", "--feed", "locked")
	s.watch.addAPIKey(key)
	sb.setUserrc(t, npmrcKey(locked)+":_auth="+basicAuth("api", key))

	project := sb.dir(t, "project")
	writeConsumer(t, project)
	mustSucceed(t, sb.npm(t, project, locked, "install", "ms@2.1.3"))
	checkInstalledVersion(t, project, "ms", "2.1.3")

	// (npm whoami with _auth prints the user name it decodes from _auth,
	// "api", without asking; the registry knows the key's name.)
	if r := get(t, locked+"-/whoami", "Authorization", "Basic "+basicAuth("api", key)); r.status != 200 || !strings.Contains(string(r.body), `"ci-bot"`) {
		t.Errorf("GET /-/whoami with the API key: %d %s", r.status, r.body)
	}

	pkg := sb.dir(t, "pkg")
	writePublishable(t, pkg, "e2e-apikey-pkg", "1.0.0", nil)
	r := sb.npm(t, pkg, locked, "publish")
	mustFailWith(t, r, "npm error code E403", "PUT 403 "+locked+"e2e-apikey-pkg", "read-only")

	// Limited to the feed locked: the team feed refuses it.
	other := sb.dir(t, "other")
	writeConsumer(t, other)
	sb.setUserrc(t, npmrcKey(locked)+":_auth="+basicAuth("api", key), npmrcKey(s.feed("team"))+":_auth="+basicAuth("api", key))
	mustFailWith(t, sb.npm(t, other, s.feed("team"), "install", "ms"), "npm error code E403")

	// Revoke it with the CLI, by the key prefix apikey list shows.
	list := gateCLI(t, s.cfg, s.g.Data, "", "apikey", "list")
	var prefix string
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "ci-bot" {
			prefix = f[0]
		}
	}
	if prefix == "" || !strings.HasPrefix(tokenKeyOf(key), prefix) {
		t.Fatalf("npmgate apikey list does not list the key of ci-bot:\n%s", list)
	}
	if strings.Contains(list, key) {
		t.Errorf("npmgate apikey list shows the whole key")
	}
	gateCLI(t, s.cfg, s.g.Data, "", "apikey", "revoke", prefix)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := get(t, locked+"ms", "Authorization", "Basic "+basicAuth("api", key))
		if resp.status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked key still gets %d after 5s", resp.status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	again := sb.dir(t, "after-revoke")
	writeConsumer(t, again)
	mustFailWith(t, sb.npm(t, again, locked, "install", "ms@2.1.3"), npmE401, "GET 401 "+locked+"ms")
}

// TestAuthScopedRegistry configures npm as a company would: @acme from the
// private feed with a token, everything else from the default feed
// anonymously. One install takes @acme/x and ms, each from its own feed,
// and a new @acme/x version is published through the scope's registry.
func TestAuthScopedRegistry(t *testing.T) {
	s := newAuthSetup(t)
	sb, private := s.sb, s.feed("private")
	token := cliToken(t, s.g, s.cfg, "--user", "alice")
	s.watch.add("alice's token", token)
	sb.setUserrc(t, "@acme:registry="+private, npmrcKey(private)+":_authToken="+token)

	pkg := sb.dir(t, "x")
	writePublishable(t, pkg, "@acme/x", "1.0.0", nil)
	// The registry given is the default one: the scope's wins for @acme.
	r := sb.npm(t, pkg, s.g.URL, "publish")
	mustSucceed(t, r)
	if !strings.Contains(r.out, "PUT 200 "+private+"@acme%2fx") {
		t.Errorf("npm did not publish to the scope's registry:\n%s", r)
	}

	project := sb.dir(t, "project")
	writeConsumer(t, project)
	mustSucceed(t, sb.npm(t, project, s.g.URL, "install", "@acme/x", "ms@2.1.3"))
	checkInstalledVersion(t, project, "@acme/x", "1.0.0")
	checkInstalledVersion(t, project, "ms", "2.1.3")
	if v := sb.installedValue(t, project, "@acme/x"); v != "@acme/x@1.0.0" {
		t.Errorf("require(\"@acme/x\") = %q", v)
	}
	lf := readLockfile(t, filepath.Join(project, "package-lock.json"))
	for _, p := range lf.Packages {
		want := s.g.URL + "ms/"
		if p.Path == "node_modules/@acme/x" {
			want = private + "@acme/x/"
		}
		if !strings.HasPrefix(p.Resolved, want) {
			t.Errorf("%s resolved to %s, want under %s", p.Path, p.Resolved, want)
		}
	}

	setPackageVersion(t, pkg, "1.1.0")
	mustSucceed(t, sb.npm(t, pkg, s.g.URL, "publish"))
	project2 := sb.dir(t, "project2")
	writeConsumer(t, project2)
	mustSucceed(t, sb.npm(t, project2, s.g.URL, "install", "@acme/x"))
	checkInstalledVersion(t, project2, "@acme/x", "1.1.0")

	// Upstream never heard of @acme; the private feed needs credentials;
	// the default feed (which does not own @acme, so it asks upstream)
	// does not have @acme/x.
	if p := upstreamPathsWith(s.up, "acme"); len(p) > 0 {
		t.Errorf("upstream was asked for the owned scope: %v", p)
	}
	if r := get(t, private+"@acme%2fx"); r.status != 401 {
		t.Errorf("GET @acme/x anonymously: %d, want 401", r.status)
	}
	if r := get(t, s.g.URL+"@acme%2fx"); r.status != 404 {
		t.Errorf("GET @acme/x from the default feed: %d, want 404: %s", r.status, r.body)
	}
}

// TestAuthYarnPnpm installs from the locked feed with yarn 4 (npmAuthToken,
// then npmAuthIdent user:password) and pnpm (_authToken).
func TestAuthYarnPnpm(t *testing.T) {
	s := newAuthSetup(t)
	locked := s.feed("locked")
	token := cliToken(t, s.g, s.cfg, "--user", "alice", "--read-only")
	s.watch.add("alice's read-only token", token)

	yarnrc := func(t *testing.T, sb *sandbox, project, auth string) {
		writeFile(t, filepath.Join(project, ".yarnrc.yml"), fmt.Sprintf("npmRegistryServer: %q\n"+
			"%s\n"+
			"unsafeHttpWhitelist:\n  - \"127.0.0.1\"\n"+
			"nodeLinker: node-modules\n"+
			"enableGlobalCache: false\n"+
			"enableMirror: false\n"+
			"cacheFolder: %q\n"+
			"enableTelemetry: false\n",
			strings.TrimSuffix(locked, "/"), auth, sb.dir(t, "yarn-cache-"+filepath.Base(project))))
	}
	project := func(t *testing.T, sb *sandbox, name string) string {
		p := sb.dir(t, name)
		writeFile(t, filepath.Join(p, "package.json"), `{"name":"e2e-`+name+`","version":"1.0.0","private":true,"dependencies":{"debug":"4.4.3"}}`)
		return p
	}
	// debug 4.4.3 depends on ms 2.1.3: both come through the locked feed.
	check := func(t *testing.T, sb *sandbox, project, msDir string) {
		checkInstalledVersion(t, project, "debug", "4.4.3")
		if m := readManifest(t, filepath.Join(project, "node_modules", filepath.FromSlash(msDir))); m.Name != "ms" || m.Version != "2.1.3" {
			t.Errorf("node_modules/%s: installed %s@%s, want ms@2.1.3", msDir, m.Name, m.Version)
		}
		r := sb.run(t, project, onPath(t, "node"), "-e", `require("debug")("e2e")`)
		mustSucceed(t, r)
	}

	t.Run("yarn4 npmAuthToken", func(t *testing.T) {
		tool := toolPath(t, toolYarn4)
		sb := newSandbox(t)
		p := project(t, sb, "yarn-token")
		yarnrc(t, sb, p, fmt.Sprintf("npmAlwaysAuth: true\nnpmAuthToken: %q", token))
		mustSucceed(t, sb.node(t, p, tool, "install"))
		check(t, sb, p, "ms")
	})
	t.Run("yarn4 npmAuthIdent", func(t *testing.T) {
		tool := toolPath(t, toolYarn4)
		sb := newSandbox(t)
		p := project(t, sb, "yarn-ident")
		yarnrc(t, sb, p, fmt.Sprintf("npmAlwaysAuth: true\nnpmAuthIdent: %q", "alice:"+alicePassword))
		mustSucceed(t, sb.node(t, p, tool, "install"))
		check(t, sb, p, "ms")
	})
	t.Run("yarn4 without credentials", func(t *testing.T) {
		tool := toolPath(t, toolYarn4)
		sb := newSandbox(t)
		p := project(t, sb, "yarn-anonymous")
		// (With npmAlwaysAuth and no credentials yarn would not even ask;
		// without it, it asks anonymously and reports npmgate's 401.)
		yarnrc(t, sb, p, "")
		r := sb.node(t, p, tool, "install")
		mustFailWith(t, r, "YN0041", "Invalid authentication (as an anonymous user)")
	})
	t.Run("pnpm _authToken", func(t *testing.T) {
		tool := toolPath(t, toolPnpm)
		sb := newSandbox(t)
		p := project(t, sb, "pnpm")
		writeFile(t, filepath.Join(p, ".npmrc"), npmrcKey(locked)+":_authToken="+token+"\n")
		mustSucceed(t, sb.node(t, p, tool, "install", "--registry", locked,
			"--store-dir", sb.dir(t, "pnpm-store"), "--no-frozen-lockfile"))
		// pnpm does not hoist: ms is in its virtual store.
		check(t, sb, p, ".pnpm/ms@2.1.3/node_modules/ms")
	})
}

// TestAuthNPMTokenByValue is what npm token list and npm token revoke
// show and do with npmgate's token list. The public registry sends each
// token's first characters without an ellipsis (npm adds one) and a name;
// npm token revoke takes a key prefix or the token itself, and for the
// token itself sends DELETE /-/npm/v1/tokens/token/{the token}, after
// matching it against the listed beginnings.
func TestAuthNPMTokenByValue(t *testing.T) {
	s := newAuthSetup(t)
	sb, locked := s.sb, s.feed("locked")
	project := sb.dir(t, "project")
	writeConsumer(t, project)
	login := cliToken(t, s.g, s.cfg, "--user", "alice")
	s.watch.add("alice's token", login)
	sb.setUserrc(t, npmrcKey(locked)+":_authToken="+login)

	t.Run("token list", func(t *testing.T) {
		r := sb.npm(t, project, locked, "token", "list")
		mustSucceed(t, r)
		if !strings.Contains(r.out, login[:9]) {
			t.Errorf("npm token list does not show %s…:\n%s", login[:9], r)
		}
		if strings.Contains(r.out, "……") {
			t.Errorf("npm token list prints a doubled ellipsis: npmgate's \"token\" field already ends in \"…\", which npm appends itself:\n%s", r)
		}
		if strings.Contains(r.out, "name undefined") {
			t.Errorf("npm token list prints \"name undefined\": npmgate's token objects have no \"name\":\n%s", r)
		}
	})

	t.Run("npm token revoke TOKEN", func(t *testing.T) {
		victim := cliToken(t, s.g, s.cfg, "--user", "alice")
		s.watch.add("token revoked by value with npm", victim)
		r := sb.npm(t, project, locked, "token", "revoke", victim)
		if r.code != 0 || !strings.Contains(r.out, "Removed 1 token") {
			t.Errorf("npm token revoke <token> did not revoke it:\n%s", r)
		}
		if resp := get(t, locked+"-/whoami", "Authorization", "Bearer "+victim); resp.status != 401 {
			t.Errorf("the token npm token revoke was given still works: %d", resp.status)
		}
	})

	// The request npm sends for the revoke above once it recognises the
	// token in the list: the secret is in the path. It must revoke the
	// token and, like the logout path, be logged redacted (the secret
	// watch reads the log when the test ends).
	t.Run("DELETE /-/npm/v1/tokens/token/TOKEN", func(t *testing.T) {
		victim := cliToken(t, s.g, s.cfg, "--user", "alice")
		s.watch.add("token revoked by value over HTTP", victim)
		r := do(t, "DELETE", locked+"-/npm/v1/tokens/token/"+victim, "Authorization", "Bearer "+login)
		if r.status != 204 && r.status != 200 {
			t.Errorf("DELETE /-/npm/v1/tokens/token/<token>: %d %s, want it revoked", r.status, r.body)
		}
		if resp := get(t, locked+"-/whoami", "Authorization", "Bearer "+victim); resp.status != 401 {
			t.Errorf("the token is still valid: %d", resp.status)
		}
	})
}
