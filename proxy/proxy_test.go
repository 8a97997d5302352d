package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// gate is an npmgate server on loopback in front of a fake upstream.
type gate struct {
	t    *testing.T
	up   *fakeupstream.Server
	srv  *Server
	url  string // http://127.0.0.1:port
	data string
}

type gateOpt func(*config.Config)

func startGate(t *testing.T, up *fakeupstream.Server, opts ...gateOpt) *gate {
	t.Helper()
	return startGateB(t, t, up, opts...)
}

// startGateB starts a gate for a test or a benchmark; t is used for
// requests made through the gate's helpers.
func startGateB(tb testing.TB, t *testing.T, up *fakeupstream.Server, opts ...gateOpt) *gate {
	tb.Helper()
	data := tb.TempDir()
	yaml := `
data: ` + data + `
cache:
  memory: 64MiB
  max_age: 2m
connectors:
  up:
    url: ` + up.URL + `
    timeout: 10s
    retries: 1
feeds:
  main:
    default: true
    connectors: [up]
`
	cfg, err := config.Parse([]byte(yaml), "test")
	if err != nil {
		tb.Fatal(err)
	}
	off := false
	cfg.Log.Access = &off
	for _, o := range opts {
		o(cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := New(cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	tb.Cleanup(func() {
		srv.Shutdown(context.Background())
		srv.Close()
	})
	return &gate{t: t, up: up, srv: srv, url: "http://" + ln.Addr().String(), data: data}
}

// get sends a GET with optional header pairs and returns the response with
// its body read.
func (g *gate) get(path string, headers ...string) (*http.Response, []byte) {
	g.t.Helper()
	req, _ := http.NewRequest("GET", g.url+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		g.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp, body
}

// storedTarballs lists the files in the tarball store.
func (g *gate) storedTarballs() []string {
	var files []string
	filepath.WalkDir(filepath.Join(g.data, "tarballs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func (g *gate) tmpFiles() []string {
	entries, _ := os.ReadDir(filepath.Join(g.data, "tmp"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

const corgi = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"

type packument struct {
	Name     string
	DistTags map[string]string `json:"dist-tags"`
	Versions map[string]struct {
		Version string
		Dist    struct {
			Tarball   string
			Integrity string
		}
		Readme      *string
		Description *string
		Scripts     map[string]string
	}
	ID   string `json:"_id"`
	Time map[string]string
}

func decode(t *testing.T, body []byte) packument {
	t.Helper()
	var p packument
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("bad JSON: %v\n%.300s", err, body)
	}
	return p
}

func TestPackumentFullAndAbbreviated(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)

	resp, full := g.get("/ms", "Accept", "application/json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("full: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("X-Npmgate-Cache") != "miss" {
		t.Errorf("first request cache = %q, want miss", resp.Header.Get("X-Npmgate-Cache"))
	}
	fp := decode(t, full)
	if fp.Name != "ms" || fp.ID != "ms" || len(fp.Versions) == 0 || fp.Time == nil ||
		fp.Versions["2.1.3"].Description == nil || fp.Versions["2.1.3"].Scripts == nil {
		t.Fatalf("full document lost fields: %.400s", full)
	}
	for v, ver := range fp.Versions {
		if want := g.url + "/ms/-/ms-" + v + ".tgz"; ver.Dist.Tarball != want {
			t.Errorf("%s tarball = %s, want %s", v, ver.Dist.Tarball, want)
		}
	}

	resp, abbr := g.get("/ms", "Accept", corgi)
	if resp.Header.Get("Content-Type") != "application/vnd.npm.install-v1+json" {
		t.Errorf("abbreviated Content-Type = %q", resp.Header.Get("Content-Type"))
	}
	ap := decode(t, abbr)
	if ap.ID != "" || len(ap.Versions) != len(fp.Versions) || ap.DistTags["latest"] != fp.DistTags["latest"] ||
		ap.Versions["2.1.3"].Description != nil || ap.Versions["2.1.3"].Scripts != nil {
		t.Errorf("abbreviated document kept more than installers need: %.400s", abbr)
	}
	if len(abbr) >= len(full) {
		t.Errorf("abbreviated (%d bytes) not smaller than full (%d)", len(abbr), len(full))
	}
	etagFull, etagAbbr := g.etag("/ms", "application/json"), g.etag("/ms", corgi)
	if etagFull == "" || etagFull == etagAbbr {
		t.Errorf("ETags must exist and differ per representation: %q %q", etagFull, etagAbbr)
	}

	// A hit: same bytes, no new upstream request, and a 304 on If-None-Match.
	before := up.Requests().Total
	resp, again := g.get("/ms", "Accept", corgi)
	if !bytes.Equal(again, abbr) || resp.Header.Get("X-Npmgate-Cache") != "hit" {
		t.Errorf("second request: cache %q, same bytes %v", resp.Header.Get("X-Npmgate-Cache"), bytes.Equal(again, abbr))
	}
	resp, body := g.get("/ms", "Accept", corgi, "If-None-Match", etagAbbr)
	if resp.StatusCode != 304 || len(body) != 0 {
		t.Errorf("If-None-Match: %d with %d bytes, want a bare 304", resp.StatusCode, len(body))
	}
	resp, _ = g.get("/ms", "Accept", corgi, "If-None-Match", etagFull)
	if resp.StatusCode != 200 {
		t.Errorf("If-None-Match with the other representation's ETag: %d, want 200", resp.StatusCode)
	}
	if n := up.Requests().Total - before; n != 0 {
		t.Errorf("hits caused %d upstream requests", n)
	}

	// gzip: the stored compressed copy decodes to the same document.
	resp, gz := g.get("/ms", "Accept", corgi, "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept") {
		t.Fatalf("gzip: Content-Encoding %q Vary %q", resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, abbr) {
		t.Error("gzip body differs from the identity body")
	}
}

func (g *gate) etag(path, accept string) string {
	resp, _ := g.get(path, "Accept", accept)
	return resp.Header.Get("ETag")
}

func TestScopedNameEncodingsShareOneEntry(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	var first []byte
	for _, p := range []string{"/@sindresorhus%2fis", "/@sindresorhus%2Fis", "/@sindresorhus/is", "/%40sindresorhus%2fis"} {
		resp, body := g.get(p, "Accept", corgi)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, body)
		}
		if first == nil {
			first = body
		} else if !bytes.Equal(body, first) {
			t.Errorf("%s: different bytes", p)
		}
	}
	if n := up.Requests().Packuments; n != 1 {
		t.Errorf("upstream packument requests = %d, want 1", n)
	}
	tarball := decode(t, first)
	for _, v := range tarball.Versions {
		if !strings.HasPrefix(v.Dist.Tarball, g.url+"/@sindresorhus/is/-/is-") {
			t.Fatalf("scoped tarball URL %s", v.Dist.Tarball)
		}
		break
	}
}

func TestFeedPathsRewriteToTheirOwnMount(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	_, body := g.get("/npm/main/ms", "Accept", corgi)
	for v, ver := range decode(t, body).Versions {
		if want := g.url + "/npm/main/ms/-/ms-" + v + ".tgz"; ver.Dist.Tarball != want {
			t.Fatalf("tarball = %s, want %s", ver.Dist.Tarball, want)
		}
	}
	resp, _ := g.get("/npm/main/ms/-/ms-2.1.3.tgz")
	if resp.StatusCode != 200 {
		t.Fatalf("tarball under the feed path: %d", resp.StatusCode)
	}
}

func TestConcurrentMissesMakeOneUpstreamRequest(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir(), fakeupstream.WithLatency(100*time.Millisecond))
	g := startGate(t, up)
	var wg sync.WaitGroup
	bodies := make([][]byte, 50)
	for i := range bodies {
		wg.Go(func() {
			resp, body := g.get("/typescript", "Accept", corgi)
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
			bodies[i] = body
		})
	}
	wg.Wait()
	if n := up.Requests().Packuments; n != 1 {
		t.Errorf("50 concurrent cold requests made %d upstream requests, want 1", n)
	}
	for _, b := range bodies[1:] {
		if !bytes.Equal(b, bodies[0]) {
			t.Fatal("concurrent requests got different bytes")
		}
	}
}

func sha512Integrity(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestTarballStoredOnceAndServedFromDisk(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir(), fakeupstream.WithLatency(50*time.Millisecond))
	g := startGate(t, up)
	want, err := fakeupstream.ReadTarball(up.Dir(), "ms", "ms-2.1.3.tgz")
	if err != nil {
		t.Fatal(err)
	}
	// Twenty clients ask for the same cold tarball at once: one download.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, body := g.get("/ms/-/ms-2.1.3.tgz")
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Errorf("cold tarball: %d, %d bytes, equal=%v", resp.StatusCode, len(body), bytes.Equal(body, want))
			}
		})
	}
	wg.Wait()
	if n := up.Requests().Tarballs; n != 1 {
		t.Errorf("20 concurrent cold downloads made %d upstream downloads, want 1", n)
	}
	files := g.storedTarballs()
	if len(files) != 1 {
		t.Fatalf("stored tarballs: %v, want exactly one", files)
	}
	if stored, _ := os.ReadFile(files[0]); !bytes.Equal(stored, want) {
		t.Error("stored bytes differ from upstream's")
	}
	resp, body := g.get("/ms/-/ms-2.1.3.tgz")
	if resp.Header.Get("X-Npmgate-Cache") != "hit" || !bytes.Equal(body, want) {
		t.Errorf("warm tarball: cache %q", resp.Header.Get("X-Npmgate-Cache"))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("Cache-Control = %q", cc)
	}
	if resp.Header.Get("Content-Encoding") != "" {
		t.Error("a tarball must never be content-encoded")
	}
	if n := up.Requests().Tarballs; n != 1 {
		t.Errorf("warm download went upstream")
	}
	if tmp := g.tmpFiles(); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	// A file the packument does not list is a 404 and never fetched.
	resp, body = g.get("/ms/-/evil-1.0.0.tgz")
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"error"`) {
		t.Errorf("unknown tarball: %d %s", resp.StatusCode, body)
	}
}

func TestIntegrityMismatchIsNeverStored(t *testing.T) {
	for _, fault := range []string{"corrupt", "reset"} {
		t.Run(fault, func(t *testing.T) {
			up := fakeupstream.Start(t, fakeupstream.Dir())
			g := startGate(t, up)
			if fault == "corrupt" {
				up.SetCorruptTarballs(true)
			} else {
				up.SetResetTarballs(true)
			}
			want, _ := fakeupstream.ReadTarball(up.Dir(), "ms", "ms-2.1.3.tgz")
			resp, err := http.Get(g.url + "/ms/-/ms-2.1.3.tgz")
			if err == nil {
				body, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr == nil && resp.StatusCode == 200 && len(body) == len(want) {
					t.Fatalf("a %s download reached the client as a whole 200 body", fault)
				}
			}
			waitFor(t, func() bool { return len(g.tmpFiles()) == 0 })
			if files := g.storedTarballs(); len(files) != 0 {
				t.Fatalf("bad bytes stored: %v", files)
			}
			up.SetCorruptTarballs(false)
			up.SetResetTarballs(false)
			resp2, body := g.get("/ms/-/ms-2.1.3.tgz")
			if resp2.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Fatalf("after the fault cleared: %d, equal=%v", resp2.StatusCode, bytes.Equal(body, want))
			}
			if len(g.storedTarballs()) != 1 {
				t.Error("good bytes not stored")
			}
		})
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUpstreamDown(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) { c.Cache.MaxAge = config.Duration(time.Millisecond) })
	_, fresh := g.get("/ms", "Accept", corgi)
	g.get("/ms/-/ms-2.1.3.tgz")
	up.SetDown(true)

	// Warm: the last snapshot is served, marked stale.
	time.Sleep(2 * time.Millisecond) // let max_age (1ms) pass
	resp, body := g.get("/ms", "Accept", corgi)
	if resp.StatusCode != 200 || !bytes.Equal(body, fresh) {
		t.Fatalf("stale serve: %d", resp.StatusCode)
	}
	if resp.Header.Get("X-Npmgate-Cache") != "stale" || resp.Header.Get("Warning") == "" {
		t.Errorf("stale response not marked: cache %q warning %q", resp.Header.Get("X-Npmgate-Cache"), resp.Header.Get("Warning"))
	}
	if resp, _ := g.get("/ms/-/ms-2.1.3.tgz"); resp.StatusCode != 200 {
		t.Errorf("stored tarball with upstream down: %d", resp.StatusCode)
	}
	// Cold: a 502 that says why, never a 404.
	resp, body = g.get("/debug", "Accept", corgi)
	if resp.StatusCode != 502 || !strings.Contains(string(body), "unreachable") {
		t.Errorf("cold with upstream down: %d %s", resp.StatusCode, body)
	}
}

func TestUpstreamHangsIsA504(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) {
		c.Connectors["up"].Timeout = config.Duration(300 * time.Millisecond)
	})
	up.SetHang(true)
	resp, body := g.get("/debug", "Accept", corgi)
	if resp.StatusCode != 504 || !strings.Contains(string(body), "timed out") {
		t.Errorf("hung upstream: %d %s", resp.StatusCode, body)
	}
}

func TestBadUpstreamDocumentsAreNotCached(t *testing.T) {
	tests := []struct {
		name, ctype, body string
	}{
		{"captive portal", "text/html", "<html>log in to the wifi</html>"},
		{"another package", "application/json", `{"name":"evil","versions":{}}`},
		{"truncated", "application/json", `{"name":"debug","versions":{`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := fakeupstream.Start(t, fakeupstream.Dir())
			g := startGate(t, up)
			up.SetPackumentOverride("debug", 200, tt.ctype, []byte(tt.body))
			resp, body := g.get("/debug", "Accept", corgi)
			if resp.StatusCode != 502 || !json.Valid(body) {
				t.Fatalf("got %d %s, want a 502 JSON error", resp.StatusCode, body)
			}
			up.SetPackumentOverride("debug", 0, "", nil)
			resp, body = g.get("/debug", "Accept", corgi)
			if resp.StatusCode != 200 || decode(t, body).Name != "debug" {
				t.Fatalf("after upstream recovered: %d", resp.StatusCode)
			}
		})
	}
}

func TestTarballURLsNeverFollowUpstreamHosts(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	orig, err := fakeupstream.ReadPackument(up.Dir(), "ms")
	if err != nil {
		t.Fatal(err)
	}
	// Point every tarball at a host npmgate must never contact.
	hostile := bytes.ReplaceAll(orig, []byte("https://registry.npmjs.org/"), []byte("http://127.0.0.1:1/secret/"))
	up.SetPackumentOverride("ms", 200, "application/json", hostile)
	_, body := g.get("/ms", "Accept", corgi)
	if bytes.Contains(body, []byte("127.0.0.1:1")) {
		t.Fatal("hostile tarball URL reached the client")
	}
	want, _ := fakeupstream.ReadTarball(up.Dir(), "ms", "ms-2.1.3.tgz")
	resp, got := g.get("/ms/-/ms-2.1.3.tgz")
	if resp.StatusCode != 200 || !bytes.Equal(got, want) {
		t.Fatalf("tarball: %d", resp.StatusCode)
	}
	paths := up.Requests().Paths
	if last := paths[len(paths)-1]; last != "/ms/-/ms-2.1.3.tgz" {
		t.Errorf("tarball fetched from %q, want the connector's own /ms/-/ms-2.1.3.tgz", last)
	}
}

func TestHostHeaderCannotPoisonOtherClients(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	resp, body := g.get("/ms", "Accept", corgi, "Host", "evil.example")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	_ = body
	_, body = g.get("/ms", "Accept", corgi)
	if bytes.Contains(body, []byte("evil.example")) {
		t.Error("one client's Host header reached another client's tarball URLs")
	}
	// Forwarded headers are ignored unless trusted.
	_, body = g.get("/ms", "Accept", corgi, "X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https")
	if bytes.Contains(body, []byte("evil.example")) || bytes.Contains(body, []byte("https://")) {
		t.Error("X-Forwarded-* honoured without trust_forwarded_headers")
	}
	for _, h := range []string{"good.example@evil.example", "good.example/evil", "good.example, evil.example", "good.example:99999"} {
		resp, _ := g.get("/ms", "Accept", corgi, "Host", h)
		if resp.StatusCode != 400 {
			t.Errorf("Host %q: %d, want 400", h, resp.StatusCode)
		}
	}
}

func TestTrustedForwardedHeaders(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) { c.TrustForwardedHeaders = true })
	_, body := g.get("/ms", "Accept", corgi, "X-Forwarded-Host", "npm.example.com", "X-Forwarded-Proto", "https")
	for _, v := range decode(t, body).Versions {
		if !strings.HasPrefix(v.Dist.Tarball, "https://npm.example.com/ms/-/") {
			t.Fatalf("tarball %s, want https://npm.example.com/...", v.Dist.Tarball)
		}
	}
	_, body = g.get("/ms", "Accept", corgi, "X-Forwarded-Host", "good.example@evil.example", "X-Forwarded-Proto", "javascript")
	if bytes.Contains(body, []byte("evil.example")) || bytes.Contains(body, []byte("javascript")) {
		t.Error("malformed forwarded headers were used")
	}
}

func TestPublicURL(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) { c.PublicURL = "https://npm.corp.example/registry" })
	_, body := g.get("/ms", "Accept", corgi, "Host", "other.example")
	for _, v := range decode(t, body).Versions {
		if !strings.HasPrefix(v.Dist.Tarball, "https://npm.corp.example/registry/ms/-/") {
			t.Fatalf("tarball %s", v.Dist.Tarball)
		}
	}
}

func TestErrors(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	tests := []struct {
		path   string
		status int
	}{
		{"/no-such-package-here", 404},
		{"/..%2f..%2fetc%2fpasswd", 400},
		{"/.bin", 400},
		{"/l%D0%BEdash", 400},
		{"/ms/9.9.9", 404},
		{"/ms/-/ms-9.9.9.tgz", 404},
		{"/-/nothing", 404},
	}
	for _, tt := range tests {
		resp, body := g.get(tt.path)
		var e struct{ Error string }
		if resp.StatusCode != tt.status || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %s; want %d with an {\"error\"} body", tt.path, resp.StatusCode, body, tt.status)
		}
	}
	for _, p := range up.Requests().Paths {
		if strings.Contains(p, "passwd") || strings.Contains(p, ".bin") || strings.Contains(p, "%D0") {
			t.Errorf("an invalid name reached upstream: %s", p)
		}
	}
	req, _ := http.NewRequest("PUT", g.url+"/ms", strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("anonymous PUT: %d, want 401 with a challenge", resp.StatusCode)
	}
}

func TestVersionAndPing(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	resp, body := g.get("/ms/latest")
	var v struct {
		Name, Version string
		Dist          struct{ Tarball string }
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &v) != nil || v.Name != "ms" || v.Dist.Tarball != g.url+"/ms/-/ms-"+v.Version+".tgz" {
		t.Errorf("GET /ms/latest: %d %+v", resp.StatusCode, v)
	}
	for _, p := range []string{"/-/ping", "/-/ping?write=true", "/healthz", "/readyz"} {
		if resp, body := g.get(p); resp.StatusCode != 200 || !json.Valid(body) {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
}

func TestRevalidationUses304(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) { c.Cache.MaxAge = config.Duration(time.Millisecond) })
	_, first := g.get("/ms", "Accept", corgi)
	time.Sleep(2 * time.Millisecond)
	resp, second := g.get("/ms", "Accept", corgi)
	if !bytes.Equal(first, second) || resp.Header.Get("X-Npmgate-Cache") != "revalidated" {
		t.Errorf("revalidated response: cache %q", resp.Header.Get("X-Npmgate-Cache"))
	}
	st := up.Requests()
	if st.Packuments != 2 || st.NotModified != 1 {
		t.Errorf("upstream saw %d packument requests and %d 304s, want 2 and 1", st.Packuments, st.NotModified)
	}
	if inm := st.Headers[1].Get("If-None-Match"); inm == "" {
		t.Error("revalidation was not conditional")
	}
}

func TestCredentialsStayWithTheirConnector(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) { c.Connectors["up"].Token = "UPSTREAM-TOKEN" })
	secret, _, err := g.srv.auth.Tokens.Create(auth.NewToken{User: "alice"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	g.get("/ms", "Accept", corgi, "Authorization", "Bearer "+secret)
	g.get("/ms/-/ms-2.1.3.tgz", "Authorization", "Bearer "+secret)
	st := up.Requests()
	if len(st.Headers) != 2 {
		t.Fatalf("upstream requests %d, want 2", len(st.Headers))
	}
	for _, h := range st.Headers {
		if got := h.Get("Authorization"); got != "Bearer UPSTREAM-TOKEN" {
			t.Errorf("upstream Authorization = %q, want the connector's token", got)
		}
	}
}

// TestVersionAfterTheSnapshotWasEvicted: the package's index is in memory
// but its snapshot is gone (npmgate gc ran): GET /{name}/{version} must
// answer, not crash the server on a document that is not there.
func TestVersionAfterTheSnapshotWasEvicted(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	if resp, _ := g.get("/ms", "Accept", corgi); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if err := os.RemoveAll(filepath.Join(g.data, "snapshots")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/ms/2.1.3", "/-/package/ms/dist-tags"} {
		resp, body := g.get(p)
		if resp.StatusCode != 404 || !json.Valid(body) {
			t.Errorf("%s: %d %s, want a 404 JSON error", p, resp.StatusCode, body)
		}
	}
	if resp, _ := g.get("/-/ping"); resp.StatusCode != 200 {
		t.Error("the server stopped answering")
	}
}
