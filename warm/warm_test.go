package warm

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/fakeupstream"
	"github.com/npmgate/npmgate/proxy"
)

// newProxy runs the real server, as the command does.
func newProxy(cfg *config.Config, log *slog.Logger) (Server, error) {
	srv, err := proxy.New(cfg, log)
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// gateConfig is an npmgate configuration over one connector to upstream,
// storing in data. The timeout is long because the fake upstream renders
// react's 4 MB packument on first use, which takes seconds on a loaded
// machine under -race; a down upstream answers 503 at once anyway.
func gateConfig(t *testing.T, data, upstream string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data: %s
cache:
  memory: 16MiB
  max_age: 2m
log:
  access: false
connectors:
  up:
    url: %s
    timeout: 60s
    retries: 0
feeds:
  main:
    default: true
    connectors: [up]
`, data, upstream)), "test")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func storedTarballs(t *testing.T, data string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(data, "tarballs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func execJob(t *testing.T, job Job) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Exec(context.Background(), job, &out, &errb)
	t.Logf("exit %d\n--- stdout ---\n%s--- stderr ---\n%s", code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// Warming the e2e app's lockfile into a data directory through an
// in-process npmgate stores every tarball; warming again through a running
// npmgate finds them all present; with the upstream down and nothing
// cached, every package fails and the exit code is 1.
func TestWarmThroughNpmgate(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	data := t.TempDir()

	code, out, _ := execJob(t, Job{Lockfile: e2eLock, NewServer: newProxy, Server: gateConfig(t, data, up.URL)})
	if code != 0 || !strings.Contains(out, "38 packages in ") || !strings.Contains(out, ": 38 fetched, 0 already present, 0 failed") {
		t.Fatalf("first run: exit %d, %q", code, out)
	}
	if n := storedTarballs(t, data); n != 38 {
		t.Errorf("%d tarballs stored, want 38", n)
	}
	if st := up.Requests(); st.Tarballs != 38 {
		t.Errorf("upstream served %d tarballs, want each of the 38 once", st.Tarballs)
	}

	// A second run, through the URL of a running npmgate on the same data.
	up.ResetStats()
	local, err := StartLocal(gateConfig(t, data, up.URL), "", nil, newProxy)
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ = execJob(t, Job{Lockfile: "testdata/pnpm9/pnpm-lock.yaml", URL: local.URL})
	if err := local.Stop(context.Background()); err != nil {
		t.Error(err)
	}
	if code != 0 || !strings.Contains(out, ": 0 fetched, 38 already present, 0 failed") {
		t.Fatalf("second run: exit %d, %q", code, out)
	}
	if st := up.Requests(); st.Tarballs != 0 {
		t.Errorf("second run: upstream served %d tarballs, want none", st.Tarballs)
	}

	// Upstream down, an empty data directory: nothing can be had.
	up.SetDown(true)
	code, out, _ = execJob(t, Job{Lockfile: "testdata/yarn1/yarn.lock", NewServer: newProxy, Server: gateConfig(t, t.TempDir(), up.URL)})
	if code != 1 || !strings.Contains(out, ": 0 fetched, 0 already present, 38 failed") {
		t.Fatalf("upstream down: exit %d, %q", code, out)
	}
	if !regexp.MustCompile(`(?m)^  failed ms@2\.1\.3: packument: 502 `).MatchString(out) {
		t.Errorf("upstream down: no failure line for ms@2.1.3 with the 502 in %q", out)
	}
}

func TestExecUsage(t *testing.T) {
	if code, _, errOut := execJob(t, Job{Lockfile: e2eLock}); code != 1 || !strings.Contains(errOut, "no URL") {
		t.Errorf("no URL and no server: exit %d, %q", code, errOut)
	}
	// Nothing listens on the discard port: one failure, not one per package.
	if code, out, errOut := execJob(t, Job{Lockfile: e2eLock, URL: "http://127.0.0.1:9/"}); code != 1 || out != "" || !strings.Contains(errOut, "cannot reach npmgate at http://127.0.0.1:9/") {
		t.Errorf("nothing at the URL: exit %d, %q", code, errOut)
	}
	if code, _, errOut := execJob(t, Job{Lockfile: "testdata/nope/yarn.lock", URL: "http://127.0.0.1:9/"}); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing lockfile: exit %d, %q", code, errOut)
	}
	cfg := gateConfig(t, t.TempDir(), "http://127.0.0.1:9")
	if code, _, errOut := execJob(t, Job{Lockfile: e2eLock, Server: cfg, Feed: "other"}); code != 1 || !strings.Contains(errOut, `no feed "other"`) {
		t.Errorf("unknown feed: exit %d, %q", code, errOut)
	}
	if _, err := Run(context.Background(), "ftp://x/", nil, Options{}); err == nil {
		t.Error("ftp URL: no error")
	}
}

// registry is a fake registry for Run's own behaviour: packuments are
// given per name, tarballs per path.
type registry struct {
	t         *testing.T
	srv       *httptest.Server
	mu        sync.Mutex
	docs      map[string]string // escaped name -> JSON
	tarballs  map[string][]byte // path -> bytes
	cache     map[string]string // path -> X-Npmgate-Cache
	fails     map[string]int    // path -> 503s to send first
	auth      []string          // "path auth" per request
	accepts   map[string]string
	statusFor map[string]int
}

func newRegistry(t *testing.T) *registry {
	r := &registry{t: t, docs: map[string]string{}, tarballs: map[string][]byte{}, cache: map[string]string{},
		fails: map[string]int{}, accepts: map[string]string{}, statusFor: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p := req.URL.EscapedPath()
		r.mu.Lock()
		r.auth = append(r.auth, p+" "+req.Header.Get("Authorization"))
		r.accepts[p] = req.Header.Get("Accept")
		fail := r.fails[p] > 0
		if fail {
			r.fails[p]--
		}
		status, doc, tb, cache := r.statusFor[p], r.docs[strings.TrimPrefix(p, "/")], r.tarballs[p], r.cache[p]
		r.mu.Unlock()
		switch {
		case fail:
			http.Error(w, `{"error":"try later"}`, http.StatusServiceUnavailable)
		case status != 0:
			w.WriteHeader(status)
			fmt.Fprint(w, `{"error":"no entry"}`)
		case doc != "":
			w.Header().Set("Content-Type", "application/vnd.npm.install-v1+json")
			fmt.Fprint(w, doc)
		case tb != nil:
			if cache != "" {
				w.Header().Set("X-Npmgate-Cache", cache)
			}
			w.Write(tb)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"Not found"}`)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func sri(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(s[:])
}

// publish adds name@version with its tarball at tarballURL (on srv, or
// "" for none in the packument).
func (r *registry) publish(name, version, tarballURL string, body []byte) {
	escaped := escapeName(name)
	var doc map[string]any
	if d := r.docs[escaped]; d != "" {
		json.Unmarshal([]byte(d), &doc)
	} else {
		doc = map[string]any{"name": name, "versions": map[string]any{}}
	}
	doc["versions"].(map[string]any)[version] = map[string]any{
		"name": name, "version": version,
		"dist": map[string]any{"tarball": tarballURL, "integrity": sri(body)},
	}
	b, _ := json.Marshal(doc)
	r.docs[escaped] = string(b)
}

func TestRun(t *testing.T) {
	reg := newRegistry(t)
	other := newRegistry(t) // another origin, where a packument may point tarballs
	tb := func(s string) []byte { return []byte("tarball of " + s) }

	// @s/a: scoped, tarball on the registry, already cached there.
	reg.publish("@s/a", "1.0.0", reg.srv.URL+"/@s/a/-/a-1.0.0.tgz", tb("a"))
	reg.tarballs["/@s/a/-/a-1.0.0.tgz"] = tb("a")
	reg.cache["/@s/a/-/a-1.0.0.tgz"] = "hit"
	// b: no dist.tarball: the conventional path is used; fetched.
	reg.publish("b", "2.0.0", "", tb("b"))
	reg.tarballs["/b/-/b-2.0.0.tgz"] = tb("b")
	reg.cache["/b/-/b-2.0.0.tgz"] = "miss"
	// c: the lockfile's integrity does not match the tarball.
	reg.publish("c", "1.0.0", reg.srv.URL+"/c/-/c-1.0.0.tgz", tb("c"))
	reg.tarballs["/c/-/c-1.0.0.tgz"] = tb("c")
	// d: the lockfile's version is not in the packument.
	reg.publish("d", "1.0.0", reg.srv.URL+"/d/-/d-1.0.0.tgz", tb("d"))
	// e: the registry refuses.
	reg.statusFor["/e"] = http.StatusUnauthorized
	// f: tarball on another origin, which must not get the token; the
	// packument's integrity is checked when the lockfile has none.
	reg.publish("f", "1.0.0", other.srv.URL+"/f/-/f-1.0.0.tgz", tb("f"))
	other.tarballs["/f/-/f-1.0.0.tgz"] = []byte("not f")
	// g: one 503 first, then fine (Retries: 1).
	reg.publish("g", "1.0.0", reg.srv.URL+"/g/-/g-1.0.0.tgz", tb("g"))
	reg.tarballs["/g/-/g-1.0.0.tgz"] = tb("g")
	reg.fails["/g"] = 1
	// b again at another version: one packument request for both.
	reg.publish("b", "2.1.0", reg.srv.URL+"/b/-/b-2.1.0.tgz", tb("b2"))
	reg.tarballs["/b/-/b-2.1.0.tgz"] = tb("b2")

	pkgs := []Package{
		{Name: "@s/a", Version: "1.0.0", Integrity: sri(tb("a"))},
		{Name: "b", Version: "2.0.0"},
		{Name: "c", Version: "1.0.0", Integrity: sri(tb("not c"))},
		{Name: "d", Version: "9.9.9"},
		{Name: "e", Version: "1.0.0"},
		{Name: "f", Version: "1.0.0"},
		{Name: "g", Version: "1.0.0", Integrity: sri(tb("g"))},
		{Name: "b", Version: "2.1.0", Integrity: "sha1-bm90IGEgc2hhMQ== " + sri(tb("b2"))},
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), reg.srv.URL+"/", pkgs, Options{Token: "s3cret", Retries: 1, Concurrency: 3, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	var summary bytes.Buffer
	rep.WriteSummary(&summary)
	t.Logf("%s\n%s", progress.String(), summary.String())

	want := []struct {
		status Status
		err    string
	}{
		{Present, ""},
		{Fetched, ""},
		{Failed, "integrity mismatch: the lockfile says sha512-"},
		{Failed, "version 9.9.9 is not in the feed's packument"},
		{Failed, "packument: 401 Unauthorized: no entry (pass a token that may read the feed: --token)"},
		{Failed, "integrity mismatch: the packument says sha512-"},
		{Fetched, ""},
		{Fetched, ""},
	}
	for i, w := range want {
		r := rep.Results[i]
		if r.Package != pkgs[i] || r.Status != w.status || (w.err == "") != (r.Err == nil) || r.Err != nil && !strings.Contains(r.Err.Error(), w.err) {
			t.Errorf("%s: %s %v, want %s %q", pkgs[i], r.Status, r.Err, w.status, w.err)
		}
	}
	if rep.Fetched != 3 || rep.Present != 1 || rep.Failed != 4 {
		t.Errorf("counts %d/%d/%d", rep.Fetched, rep.Present, rep.Failed)
	}
	for _, line := range reg.auth {
		if !strings.HasSuffix(line, " Bearer s3cret") {
			t.Errorf("registry request without the token: %q", line)
		}
	}
	for _, line := range other.auth {
		if !strings.HasSuffix(line, " ") {
			t.Errorf("the token went to another origin: %q", line)
		}
	}
	packuments := 0
	for _, line := range reg.auth {
		if strings.HasPrefix(line, "/b ") {
			packuments++
		}
	}
	if packuments != 1 {
		t.Errorf("b's packument requested %d times, want once for its two versions", packuments)
	}
	if a := reg.accepts["/@s%2fa"]; !strings.HasPrefix(a, "application/vnd.npm.install-v1+json") {
		t.Errorf("packument Accept %q (or the scoped name was not sent as @s%%2fa)", a)
	}
	if !strings.Contains(summary.String(), "8 packages in ") || !strings.Contains(summary.String(), "  failed d@9.9.9: version 9.9.9") {
		t.Errorf("summary %q", summary.String())
	}
	if !strings.HasSuffix(progress.String(), "warm: 8/8 (100%) fetched 3 present 1 failed 4\n") {
		t.Errorf("progress %q", progress.String())
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := Run(ctx, "http://127.0.0.1:9/", []Package{{Name: "a", Version: "1.0.0"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || rep.Results[0].Err != context.Canceled {
		t.Errorf("got %+v", rep.Results)
	}
}

func TestProgress(t *testing.T) {
	var plain bytes.Buffer
	p := newProgress(&plain, false, 95)
	for i := range 95 {
		p.done([]Status{Fetched, Present, Failed}[i%3])
	}
	p.finish()
	lines := strings.Split(strings.TrimSpace(plain.String()), "\n")
	if len(lines) != 10 || lines[9] != "warm: 95/95 (100%) fetched 32 present 32 failed 31" {
		t.Errorf("plain progress, %d lines:\n%s", len(lines), plain.String())
	}

	var term bytes.Buffer
	p = newProgress(&term, true, 4)
	for range 4 {
		p.done(Fetched)
	}
	p.finish()
	s := term.String()
	if !strings.HasPrefix(s, "\r\x1b[K[------------------------------] 0/4 ") ||
		!strings.HasSuffix(s, "\r\x1b[K[##############################] 4/4 fetched 4 present 0 failed 0\n") ||
		strings.Count(s, "4/4") != 1 {
		t.Errorf("terminal progress %q", s)
	}
}
