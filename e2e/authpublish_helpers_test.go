package e2e

// Helpers of the authentication (auth_test.go) and publishing
// (publish_test.go) tests: npmgate configurations with users and feeds,
// the credential CLI, npm with prompts answered on stdin, package
// directories to publish, publish bodies built as npm builds them, and a
// watch that every secret a test used stays out of npmgate's log and data.

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Passwords of the users the tests create (8 to 72 characters).
const (
	alicePassword = "alice-e2e-Passw0rd!"
	bobPassword   = "bob-e2e-Passw0rd!"
)

// startConfiguredGate writes cfg (YAML; "UPSTREAM" is replaced by the fake
// upstream's URL) and runs npmgate with it on a fresh data directory, or
// on data when not empty. It returns the gate and the configuration file,
// which the credential CLI needs too.
func startConfiguredGate(t *testing.T, up *upstream, data, cfg string) (*gate, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, file, strings.ReplaceAll(cfg, "UPSTREAM", up.URL))
	return startGate(t, up.URL, data, "--config", file), file
}

// gateCLI runs an npmgate credential command (user, token, apikey) on a
// data directory, with stdin as its standard input, and returns its
// standard output. A failure fails the test.
func gateCLI(t *testing.T, cfgFile, data, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := gateCLIResult(t, cfgFile, data, stdin, args...)
	if code != 0 {
		t.Fatalf("npmgate %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func gateCLIResult(t *testing.T, cfgFile, data, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	args = append(args, "--data", data)
	if cfgFile != "" {
		args = append(args, "--config", cfgFile)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gateBin, args...)
	cmd.Env = cleanEnv(nil)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	if err != nil && code == -1 {
		t.Fatalf("npmgate %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// addGateUser creates a user with the CLI (the password on stdin, as a script
// would pipe it).
func addGateUser(t *testing.T, cfgFile, data, name, password string) {
	t.Helper()
	gateCLI(t, cfgFile, data, password+"\n", "user", "add", name)
}

// cliToken makes a token with the CLI on g's data directory and returns
// its secret; a running g accepts it on its next request (a miss re-reads
// the token file).
func cliToken(t *testing.T, g *gate, cfgFile string, args ...string) string {
	t.Helper()
	secret := strings.TrimSpace(gateCLI(t, cfgFile, g.Data, "", append([]string{"token", "create"}, args...)...))
	if !strings.HasPrefix(secret, "npmg_") || strings.ContainsAny(secret, " \n") {
		t.Fatalf("npmgate token create printed %q, not one token", secret)
	}
	return secret
}

// cliAPIKey makes an API key with the CLI and returns its secret; a
// running g accepts it on its next request.
func cliAPIKey(t *testing.T, g *gate, cfgFile string, args ...string) string {
	t.Helper()
	secret := strings.TrimSpace(gateCLI(t, cfgFile, g.Data, "", append([]string{"apikey", "create"}, args...)...))
	if !strings.HasPrefix(secret, "npmgk_") || strings.ContainsAny(secret, " \n") {
		t.Fatalf("npmgate apikey create printed %q, not one key", secret)
	}
	return secret
}

// waitCredential polls g's /-/whoami with an Authorization header until
// it answers status, for at most 5 seconds (npmgate re-reads credential
// files every second).
func waitCredential(t *testing.T, g *gate, authorization string, status int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := get(t, g.URL+"-/whoami", "Authorization", authorization)
		if r.status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /-/whoami with the new credential: still %d %s after 5s, want %d", r.status, r.body, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tokenKeyOf is the key npmgate lists for a secret: the hex sha512 of it.
func tokenKeyOf(secret string) string {
	s := sha512.Sum512([]byte(secret))
	return hex.EncodeToString(s[:])
}

// basicAuth is the base64 of "user:password", as npm's _auth and HTTP Basic
// carry it.
func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// npmrcKey is npm's key for a registry URL in an npmrc: the URL without its
// scheme, "//127.0.0.1:PORT/path/".
func npmrcKey(registry string) string {
	return strings.TrimPrefix(strings.TrimPrefix(registry, "http:"), "https:")
}

// setUserrc replaces the sandbox's user npmrc.
func (sb *sandbox) setUserrc(t *testing.T, lines ...string) {
	t.Helper()
	writeFile(t, sb.userrc, strings.Join(lines, "\n")+"\n")
}

// writePublishable writes a package directory to publish: package.json with
// extra fields merged in, and index.js exporting a string that says which
// package and version it is (installedValue reads it back).
func writePublishable(t *testing.T, dir, name, version string, extra map[string]any) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pkg := map[string]any{"name": name, "version": version, "main": "index.js", "license": "MIT",
		"description": "npmgate e2e package " + name}
	for k, v := range extra {
		pkg[k] = v
	}
	writeFile(t, filepath.Join(dir, "package.json"), string(mustJSON(t, pkg)))
	writeFile(t, filepath.Join(dir, "index.js"), "module.exports = "+string(mustJSON(t, name+"@"+version))+";\n")
}

// setPackageVersion rewrites the version of a package directory (and what its
// index.js exports).
func setPackageVersion(t *testing.T, dir, version string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg map[string]any
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	pkg["version"] = version
	writeFile(t, filepath.Join(dir, "package.json"), string(mustJSON(t, pkg)))
	writeFile(t, filepath.Join(dir, "index.js"), "module.exports = "+string(mustJSON(t, pkg["name"].(string)+"@"+version))+";\n")
}

// writeConsumer writes an empty project to install into.
func writeConsumer(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "package.json"), `{"name":"e2e-consumer","version":"1.0.0","private":true}`)
}

// installedValue runs node in project and returns what require(name)
// exports: proof that the installed files are the published ones.
func (sb *sandbox) installedValue(t *testing.T, project, name string) string {
	t.Helper()
	r := sb.run(t, project, onPath(t, "node"), "-e", "process.stdout.write(String(require("+string(mustJSON(t, name))+")))")
	if r.code != 0 {
		t.Errorf("require(%q) failed:\n%s", name, r)
		return ""
	}
	return r.out
}

// checkInstalledVersion checks node_modules/name/package.json.
func checkInstalledVersion(t *testing.T, project, name, version string) {
	t.Helper()
	m := readManifest(t, filepath.Join(project, "node_modules", filepath.FromSlash(name)))
	if m.Name != name || m.Version != version {
		t.Errorf("node_modules/%s: installed %s@%s, want %s@%s", name, m.Name, m.Version, name, version)
	}
}

// mustFailWith fails the test unless r exited non-zero with every one of the
// patterns in its output.
func mustFailWith(t *testing.T, r result, patterns ...string) {
	t.Helper()
	if r.err == nil && r.code == 0 {
		t.Errorf("command succeeded, want a failure:\n%s", r)
		return
	}
	for _, p := range patterns {
		if !strings.Contains(r.out, p) {
			t.Errorf("output lacks %q:\n%s", p, r)
		}
	}
}

// cliPrompt is a question a command asks on its output and the line typed in
// answer.
type cliPrompt struct{ question, answer string }

// npmWithPrompts runs npm as sb.npm does, answering each prompt once it
// shows in npm's output. npm reads each answer with a fresh readline, so
// lines piped all at once would be swallowed by the first question.
func (sb *sandbox) npmWithPrompts(t *testing.T, dir, registry string, prompts []cliPrompt, args ...string) result {
	t.Helper()
	questions := make([]string, len(prompts))
	for i, p := range prompts {
		questions[i] = p.question
	}
	return sb.npmAnswering(t, dir, registry, questions, func(i int, _ string) string { return prompts[i].answer }, args...)
}

// npmAnswering is npmWithPrompts with answers computed from the output
// so far (a one-time password from a secret npm printed).
func (sb *sandbox) npmAnswering(t *testing.T, dir, registry string, questions []string, answer func(i int, out string) string, args ...string) result {
	t.Helper()
	npm := onPath(t, "npm")
	onPath(t, "node")
	args = sb.npmArgs(t, registry, "http", args)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	cmd.Env = sb.env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		defer stdin.Close()
		from := 0
		for n, q := range questions {
			for {
				s := out.String()
				if i := strings.Index(s[from:], q); i >= 0 {
					from += i + len(q)
					break
				}
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			io.WriteString(stdin, answer(n, out.String())+"\n")
		}
	}()
	err = cmd.Wait()
	close(done)
	<-answered
	r := result{cmd: "npm " + strings.Join(args, " "), out: out.String(), err: err, code: -1}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		r.err = fmt.Errorf("timed out after %s: %w", clientTimeout, err)
	}
	t.Logf("npm %s (with prompts): exit %d in %s", strings.Join(firstArgs(args), " "), r.code, time.Since(start).Round(time.Millisecond))
	return r
}

// secretWatch collects the secrets a test hands to clients and the
// npmgate processes it runs. When the test ends, after every npmgate has
// stopped, it checks that no secret is in any npmgate log, in any file of
// their data directories (which keep only hashes), or in any request the
// fake upstream received (client credentials are never forwarded).
type secretWatch struct {
	mu      sync.Mutex
	secrets map[string]string // value -> what it is
	gates   []*gate
	ups     []*upstream
	metrics []string // /metrics of each npmgate at the end
	// files are each npmgate's data files, read when the test ends and
	// before its data directory is removed (the check runs later still).
	files map[string]string // "URL file" -> contents
}

// watchSecrets starts a watch. Call it before starting npmgate, so that
// its check runs after npmgate's own cleanup stopped it.
func watchSecrets(t *testing.T) *secretWatch {
	t.Helper()
	w := &secretWatch{secrets: map[string]string{}, files: map[string]string{}}
	t.Cleanup(func() { w.check(t) })
	return w
}

func (w *secretWatch) add(what, value string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.secrets[value] = what
	// A token seen without its recognisable prefix is just as leaked.
	for _, p := range []string{"npmgk_", "npmg_"} {
		if rest, ok := strings.CutPrefix(value, p); ok && len(rest) >= 16 {
			w.secrets[rest] = what + " (without its prefix)"
			break
		}
	}
}

// addPassword records a user's password and the Basic credentials made
// of it.
func (w *secretWatch) addPassword(user, password string) {
	w.add("password of "+user, password)
	w.add("base64 of "+user+":password", basicAuth(user, password))
}

// addAPIKey records an API key and the _auth value made of it.
func (w *secretWatch) addAPIKey(key string) {
	w.add("API key", key)
	w.add("_auth of the API key", basicAuth("api", key))
}

// gate adds an npmgate to the watch. Its /metrics are read when the test
// ends, before npmgate stops (a later cleanup runs first).
func (w *secretWatch) gate(t *testing.T, g *gate) *gate {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gates = append(w.gates, g)
	t.Cleanup(func() {
		// Registered after the data directory was made, so this runs
		// before it is removed: the check, which runs last, would find
		// nothing there.
		w.readFiles(t, g)
		select {
		case <-g.done:
			return // killed by the test
		default:
		}
		r, err := fetch("GET", g.URL+"metrics")
		w.mu.Lock()
		defer w.mu.Unlock()
		if err == nil && r.status == 200 {
			w.metrics = append(w.metrics, string(r.body))
		}
	})
	return g
}

// readFiles keeps the contents of g's data files for the check. A gate
// with no data file at all is an error: the scan would check nothing.
func (w *secretWatch) readFiles(t *testing.T, g *gate) {
	files := filesUnder(t, g.Data)
	if len(files) == 0 {
		t.Errorf("secret watch: npmgate %s has no data files to scan in %s", g.URL, g.Data)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range files {
		if strings.HasSuffix(f, ".tgz") {
			continue // package bytes, compressed: nothing of ours
		}
		b, err := os.ReadFile(filepath.Join(g.Data, filepath.FromSlash(f)))
		if err != nil {
			t.Errorf("reading %s: %v", f, err)
			continue
		}
		w.files[g.URL+" "+f] = string(b)
	}
}

func (w *secretWatch) upstream(up *upstream) *upstream {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ups = append(w.ups, up)
	return up
}

func (w *secretWatch) check(t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.secrets) == 0 {
		t.Errorf("secret watch: no secret was recorded")
		return
	}
	scanned := 0
	find := func(where, text string) {
		for v, what := range w.secrets {
			if i := strings.Index(text, v); i >= 0 {
				lo, hi := max(0, i-200), min(len(text), i+len(v)+100)
				t.Errorf("%s contains the %s:\n…%s…", where, what, text[lo:hi])
			}
		}
	}
	for _, g := range w.gates {
		log := g.logText()
		scanned += len(log)
		find("npmgate's log ("+g.URL+")", log)
	}
	for f, text := range w.files {
		if strings.HasSuffix(f, " users-2fa.json") {
			// The server computes codes from the TOTP secret, so it is
			// kept as it is there (mode 0600); recovery codes are kept
			// hashed and are looked for like everything else.
			text = totpSecretsOut(text)
		}
		scanned += len(text)
		find("npmgate's data file "+f, text)
	}
	for _, m := range w.metrics {
		find("npmgate's /metrics", m)
	}
	for _, up := range w.ups {
		st := up.Requests()
		for i, h := range st.Headers {
			if a := h.Get("Authorization"); a != "" {
				t.Errorf("the fake upstream received an Authorization header (%.12s…) with %s", a, st.Paths[i])
			}
			var b strings.Builder
			h.Write(&b)
			find("a request to the fake upstream ("+st.Paths[i]+")", st.Paths[i]+"\n"+b.String())
		}
	}
	t.Logf("secret watch: %d secrets; %d bytes of log from %d npmgate processes, their data and %d /metrics scrapes checked", len(w.secrets), scanned, len(w.gates), len(w.metrics))
}

// npmPublishBody is the JSON npm PUTs to /{name} to publish one version
// (libnpmpublish's shape).
func npmPublishBody(t *testing.T, name, version, tag string, tgz []byte) []byte {
	t.Helper()
	sum1 := sha1.Sum(tgz)
	unscoped := name[strings.LastIndex(name, "/")+1:]
	return mustJSON(t, map[string]any{
		"_id":         name,
		"name":        name,
		"description": "npmgate e2e package " + name,
		"dist-tags":   map[string]string{tag: version},
		"versions": map[string]any{version: map[string]any{
			"name": name, "version": version, "main": "index.js", "license": "MIT",
			"description":  "npmgate e2e package " + name,
			"_id":          name + "@" + version,
			"_nodeVersion": "20.0.0", "_npmVersion": "11.0.0",
			"dist": map[string]any{
				"integrity": sriOf(tgz),
				"shasum":    hex.EncodeToString(sum1[:]),
				"tarball":   "http://127.0.0.1/" + name + "/-/" + unscoped + "-" + version + ".tgz",
			},
		}},
		"access": nil,
		"_attachments": map[string]any{name + "-" + version + ".tgz": map[string]any{
			"content_type": "application/octet-stream",
			"data":         base64.StdEncoding.EncodeToString(tgz),
			"length":       len(tgz),
		}},
	})
}

// bigTarball is a package tarball as npm packs it, with size bytes of
// incompressible data in package/blob.bin besides package.json and
// index.js.
func bigTarball(t *testing.T, name, version string, size int) []byte {
	t.Helper()
	return packTarball(t, name, version, mustJSON(t, name+"@"+version), tarFile{"package/blob.bin", randomBytes(size)})
}

// fullPackument is the part of a full packument these tests read.
type fullPackument struct {
	Name     string            `json:"name"`
	DistTags map[string]string `json:"dist-tags"`
	Versions map[string]struct {
		Version    string `json:"version"`
		Deprecated string `json:"deprecated"`
		Dist       struct {
			Tarball   string `json:"tarball"`
			Integrity string `json:"integrity"`
			Shasum    string `json:"shasum"`
		} `json:"dist"`
	} `json:"versions"`
}

// getFullPackument GETs a full packument: its status and, for a 200,
// the document.
func getFullPackument(t *testing.T, u string, headers ...string) (int, fullPackument) {
	t.Helper()
	r := get(t, u, append([]string{"Accept", "application/json"}, headers...)...)
	var doc fullPackument
	if r.status == 200 {
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("GET %s: %v: %.300s", u, err, r.body)
		}
	}
	return r.status, doc
}

// upstreamPathsWith is the fake upstream's request paths that contain s.
func upstreamPathsWith(up *upstream, s string) []string {
	var out []string
	for _, p := range up.Requests().Paths {
		if strings.Contains(strings.ToLower(p), strings.ToLower(s)) {
			out = append(out, p)
		}
	}
	return out
}

// randomBytes is n bytes of deterministic, incompressible data.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{1, 2, 3}).Read(b)
	return b
}

// totpSecretsOut removes the "secret" values of a users-2fa.json.
func totpSecretsOut(text string) string {
	var m map[string]map[string]any
	if json.Unmarshal([]byte(text), &m) != nil {
		return text
	}
	for _, u := range m {
		delete(u, "secret")
	}
	b, _ := json.Marshal(m)
	return string(b)
}
