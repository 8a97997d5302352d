package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// npmUnreachable is an npm error line that carries npmgate's error body:
// "npm error 502 Bad Gateway - GET http://.../chalk - upstream registry is
// unreachable and nothing is cached: ...".
var npmUnreachable = regexp.MustCompile(`(?m)^npm error .*\b50[24]\b.*upstream.*unreachable`)

// TestUpstreamDownNothingCached asks a cold npmgate for a package while its
// upstream is down, both refusing connections and answering 503: npm fails
// and shows npmgate's error, which says upstream is unreachable, and
// npmgate answers 502 or 504 with a JSON error.
func TestUpstreamDownNothingCached(t *testing.T) {
	for _, c := range []struct {
		name string
		down func(up *upstream)
	}{
		{"connection refused", func(up *upstream) { up.Close() }},
		{"503", func(up *upstream) { up.SetDown(true) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := startUpstream(t, "")
			g := startGate(t, up.URL, "")
			c.down(up)
			sb := newSandbox(t)
			project := sb.dir(t, "project")
			writeFile(t, filepath.Join(project, "package.json"), `{"name":"down","version":"1.0.0","private":true}`)

			r := sb.npm(t, project, g.URL, "install", "chalk@4.1.2")
			if r.err == nil || r.code == 0 {
				t.Fatalf("npm install succeeded with upstream down and nothing cached:\n%s", r)
			}
			if !npmUnreachable.MatchString(r.out) {
				t.Errorf("npm's error does not show npmgate's message that upstream is unreachable:\n%s", r)
			}
			if _, err := os.Stat(filepath.Join(project, "node_modules", "chalk")); err == nil {
				t.Errorf("node_modules/chalk exists after the failed install")
			}

			for _, p := range []struct{ path, accept string }{
				{"chalk", "application/json"},
				{"chalk", "application/vnd.npm.install-v1+json"},
				{"@sindresorhus%2fis", "application/vnd.npm.install-v1+json"},
				{"npm/npm/chalk", "application/json"},
				{"chalk/-/chalk-4.1.2.tgz", "*/*"},
			} {
				resp := get(t, g.URL+p.path, "Accept", p.accept)
				if resp.status != 502 && resp.status != 504 {
					t.Errorf("GET /%s: %d, want 502 or 504: %s", p.path, resp.status, resp.body)
					continue
				}
				var body struct {
					Error string `json:"error"`
				}
				if err := json.Unmarshal(resp.body, &body); err != nil || body.Error == "" {
					t.Errorf("GET /%s: body is not {\"error\":...}: %s", p.path, resp.body)
				} else if !strings.Contains(body.Error, "unreachable") {
					t.Errorf("GET /%s: error %q does not say upstream is unreachable", p.path, body.Error)
				}
			}
			if files := filesUnder(t, filepath.Join(g.Data, "tarballs")); len(files) > 0 {
				t.Errorf("tarballs stored with upstream down: %v", files)
			}
		})
	}
}

// TestGracefulShutdown sends SIGTERM while a request waits on a slow
// upstream: the request still gets its full 200 answer and the process
// exits 0. Each case starts its own npmgate.
func TestGracefulShutdown(t *testing.T) {
	const latency = 2 * time.Second
	chalk := recordedTarball(t, "chalk", "chalk-4.1.2.tgz")
	for _, c := range []struct {
		name string
		// warm runs before the slow request, with upstream still slow.
		warm string
		path string
		// check judges the answer's body.
		check func(t *testing.T, body []byte)
	}{
		{"uncached packument", "", "chalk", checkChalkPackument},
		{"tarball of an uncached package", "", "chalk/-/chalk-4.1.2.tgz", func(t *testing.T, body []byte) {
			if !bytes.Equal(body, chalk) {
				t.Errorf("got %d bytes, not the %d recorded ones", len(body), len(chalk))
			}
		}},
		{"tarball download of a known package", "chalk", "chalk/-/chalk-4.1.2.tgz", func(t *testing.T, body []byte) {
			if !bytes.Equal(body, chalk) {
				t.Errorf("got %d bytes, not the %d recorded ones", len(body), len(chalk))
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := startUpstream(t, "", fakeupstream.WithLatency(latency))
			g := startGate(t, up.URL, "")
			if c.warm != "" {
				if r := get(t, g.URL+c.warm); r.status != 200 {
					t.Fatalf("GET /%s: %d %s", c.warm, r.status, r.body)
				}
			}
			up.ResetStats()

			type answer struct {
				r   response
				err error
			}
			done := make(chan answer, 1)
			go func() {
				r, err := fetch("GET", g.URL+c.path, "Accept", "application/json")
				done <- answer{r, err}
			}()

			// Wait until npmgate's request has reached upstream (where it
			// waits for the latency), then ask npmgate to stop.
			// (Stats.Packuments and .Tarballs are only counted once the
			// latency has passed; Total at once.)
			deadline := time.Now().Add(10 * time.Second)
			for up.Requests().Total == 0 {
				if time.Now().After(deadline) {
					t.Fatal("npmgate's upstream request did not arrive")
				}
				time.Sleep(10 * time.Millisecond)
			}
			g.signal(t, syscall.SIGTERM)

			var a answer
			select {
			case a = <-done:
			case <-time.After(2*latency + 30*time.Second):
				t.Fatal("the request in flight got no answer")
			}
			switch {
			case a.err != nil:
				t.Errorf("GET /%s in flight at SIGTERM failed: %v", c.path, a.err)
			case a.r.status != 200:
				t.Errorf("GET /%s in flight at SIGTERM: %d %s, want 200", c.path, a.r.status, a.r.body)
			default:
				c.check(t, a.r.body)
			}
			if code := g.wait(t); code != 0 {
				t.Errorf("npmgate exited %d after SIGTERM, want 0", code)
			}
		})
	}
}

// TestSIGINT stops an idle npmgate, which has served a request on a
// connection that is still open, with SIGINT: it exits 0.
func TestSIGINT(t *testing.T) {
	up := startUpstream(t, "")
	g := startGate(t, up.URL, "")
	if r := get(t, g.URL+"chalk"); r.status != 200 {
		t.Fatalf("GET /chalk: %d %s", r.status, r.body)
	}
	g.signal(t, syscall.SIGINT)
	if code := g.wait(t); code != 0 {
		t.Errorf("npmgate exited %d after SIGINT, want 0", code)
	}
}

func checkChalkPackument(t *testing.T, body []byte) {
	t.Helper()
	var doc struct {
		Name     string         `json:"name"`
		Versions map[string]any `json:"versions"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Name != "chalk" || doc.Versions["4.1.2"] == nil {
		t.Errorf("not chalk's packument (%v): %.200s", err, body)
	}
}
