package fakeupstream

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	acceptCorgi = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
	acceptFull  = "application/json"
)

// client does not add Accept-Encoding or decompress, so tests see exactly
// what the server sent.
var client = &http.Client{
	Transport: &http.Transport{DisableCompression: true, DisableKeepAlives: false},
	Timeout:   30 * time.Second,
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func get(t *testing.T, url string, hdr ...string) response {
	t.Helper()
	return do(t, http.MethodGet, url, hdr...)
}

// sriOK reports whether b matches a sha512 SRI string.
func sriOK(b []byte, integrity string) bool {
	for _, tok := range strings.Fields(integrity) {
		if want, ok := strings.CutPrefix(tok, "sha512-"); ok {
			sum := sha512.Sum512(b)
			return base64.StdEncoding.EncodeToString(sum[:]) == want
		}
	}
	return false
}

func shasumOK(b []byte, shasum string) bool {
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:]) == shasum
}

type packument struct {
	Name     string                                `json:"name"`
	Modified string                                `json:"modified"`
	DistTags map[string]string                     `json:"dist-tags"`
	Time     map[string]any                        `json:"time"`
	Versions map[string]map[string]json.RawMessage `json:"versions"`
}

func decodePackument(t *testing.T, b []byte) packument {
	t.Helper()
	var p packument
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("packument does not decode: %v\n%.300s", err, b)
	}
	return p
}

func distOf(t *testing.T, v map[string]json.RawMessage) (tarball, integrity, shasum string) {
	t.Helper()
	var d struct{ Tarball, Integrity, Shasum string }
	if err := json.Unmarshal(v["dist"], &d); err != nil {
		t.Fatalf("dist: %v", err)
	}
	return d.Tarball, d.Integrity, d.Shasum
}

// recordedTarballs lists the recorded tarballs once per test binary.
var recordedTarballs = sync.OnceValues(func() ([]Tarball, error) { return Tarballs(Dir()) })

func TestDir(t *testing.T) {
	d := Dir()
	if !filepath.IsAbs(d) {
		t.Fatalf("Dir() = %q, not absolute", d)
	}
	for _, sub := range []string{"packuments", "tarballs", "README.md"} {
		if _, err := os.Stat(filepath.Join(d, sub)); err != nil {
			t.Errorf("Dir() = %q: %v", d, err)
		}
	}
}

func TestScopedEncodings(t *testing.T) {
	s := Start(t, Dir())
	for _, name := range []string{"@isaacs/cliui", "@types/node", "@parcel/logger", "@hot-loader/react-dom"} {
		scope, pkg, _ := strings.Cut(name, "/")
		forms := []string{scope + "%2f" + pkg, scope + "%2F" + pkg, scope + "/" + pkg, "%40" + scope[1:] + "%2f" + pkg}
		for _, accept := range []string{acceptFull, acceptCorgi} {
			var first []byte
			for _, f := range forms {
				r := get(t, s.URL+"/"+f, "Accept", accept)
				if r.status != http.StatusOK {
					t.Fatalf("GET /%s (%s): %d %s", f, accept, r.status, r.body)
				}
				if first == nil {
					first = r.body
					if p := decodePackument(t, r.body); p.Name != name {
						t.Errorf("GET /%s: name %q", f, p.Name)
					}
				} else if !bytes.Equal(first, r.body) {
					t.Errorf("GET /%s (%s): body differs from /%s", f, accept, forms[0])
				}
			}
		}
	}
}

func TestAbbreviatedVsFull(t *testing.T) {
	s := Start(t, Dir())
	allowed := map[string]bool{}
	for _, f := range abbreviatedFields {
		allowed[f] = true
	}
	allowed["hasInstallScript"], allowed["_hasShrinkwrap"] = true, true

	tests := []struct {
		name         string
		wantInstall  []string // versions that must have hasInstallScript
		checkVersion string   // a version whose dependencies must survive
	}{
		{name: "ms"},
		{name: "@isaacs/cliui", checkVersion: "8.0.2"},
		{name: "@parcel/logger", checkVersion: "2.0.0-canary.1875"},
		{name: "typescript", wantInstall: []string{"1.7.0-dev.20150925"}},
		{name: "react", checkVersion: "17.0.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if testing.Short() && (tc.name == "typescript" || tc.name == "react") {
				t.Skip("multi-MB packument; skipped in -short mode")
			}
			full := get(t, s.URL+"/"+tc.name, "Accept", acceptFull)
			corgi := get(t, s.URL+"/"+tc.name, "Accept", acceptCorgi)
			if full.status != 200 || corgi.status != 200 {
				t.Fatalf("status full %d corgi %d", full.status, corgi.status)
			}
			if ct := full.header.Get("Content-Type"); ct != TypeJSON {
				t.Errorf("full Content-Type %q", ct)
			}
			if ct := corgi.header.Get("Content-Type"); ct != TypeAbbreviated {
				t.Errorf("abbreviated Content-Type %q", ct)
			}
			if full.header.Get("ETag") == corgi.header.Get("ETag") {
				t.Error("full and abbreviated share an ETag")
			}
			if len(corgi.body) >= len(full.body) {
				t.Errorf("abbreviated (%d B) not smaller than full (%d B)", len(corgi.body), len(full.body))
			}
			var top map[string]json.RawMessage
			if err := json.Unmarshal(corgi.body, &top); err != nil {
				t.Fatal(err)
			}
			for k := range top {
				if k != "name" && k != "modified" && k != "dist-tags" && k != "versions" {
					t.Errorf("abbreviated has top-level %q", k)
				}
			}
			f, c := decodePackument(t, full.body), decodePackument(t, corgi.body)
			if c.Name != tc.name || f.Name != tc.name {
				t.Errorf("names %q %q", f.Name, c.Name)
			}
			if f.Time == nil || c.Time != nil {
				t.Errorf("time: full has %v, abbreviated has %v", f.Time != nil, c.Time != nil)
			}
			if c.Modified == "" {
				t.Error("abbreviated has no modified")
			} else if m, ok := f.Time["modified"].(string); ok && m != c.Modified {
				t.Errorf("modified %q, time.modified %q", c.Modified, m)
			}
			if !maps(f.DistTags, c.DistTags) {
				t.Errorf("dist-tags differ: %v vs %v", f.DistTags, c.DistTags)
			}
			if len(f.Versions) != len(c.Versions) {
				t.Fatalf("versions: full %d, abbreviated %d", len(f.Versions), len(c.Versions))
			}
			for v, fv := range f.Versions {
				cv, ok := c.Versions[v]
				if !ok {
					t.Fatalf("abbreviated lacks %s", v)
				}
				for k := range cv {
					if !allowed[k] {
						t.Errorf("%s: abbreviated has %q", v, k)
					}
				}
				if !bytes.Equal(compact(t, fv["dist"]), compact(t, cv["dist"])) {
					t.Errorf("%s: dist differs", v)
				}
				wantHIS := slices.Contains(tc.wantInstall, v)
				if got := string(cv["hasInstallScript"]) == "true"; got != wantHIS {
					t.Errorf("%s: hasInstallScript %v, want %v", v, got, wantHIS)
				}
			}
			if v := tc.checkVersion; v != "" {
				if !bytes.Equal(compact(t, f.Versions[v]["dependencies"]), compact(t, c.Versions[v]["dependencies"])) {
					t.Errorf("%s: dependencies differ", v)
				}
			}
		})
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func compact(t *testing.T, raw []byte) []byte {
	t.Helper()
	if raw == nil {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestETagAnd304(t *testing.T) {
	s := Start(t, Dir())
	u := s.URL + "/@sindresorhus%2fis"
	tests := []struct {
		name    string
		accept  string
		gzip    bool
		method  string
		inm     func(identity, gz string) string
		ims     string
		want    int
		wantLen bool // 200 with a body
	}{
		{name: "no validators", accept: acceptFull, method: "GET", want: 200, wantLen: true},
		{name: "match", accept: acceptFull, method: "GET", inm: func(e, _ string) string { return e }, want: 304},
		{name: "match head", accept: acceptFull, method: "HEAD", inm: func(e, _ string) string { return e }, want: 304},
		{name: "weak match", accept: acceptFull, method: "GET", inm: func(e, _ string) string { return "W/" + e }, want: 304},
		{name: "list match", accept: acceptFull, method: "GET", inm: func(e, _ string) string { return `"nope", ` + e }, want: 304},
		{name: "star", accept: acceptFull, method: "GET", inm: func(string, string) string { return "*" }, want: 304},
		{name: "no match", accept: acceptFull, method: "GET", inm: func(string, string) string { return `"nope"` }, want: 200, wantLen: true},
		{name: "corgi match", accept: acceptCorgi, method: "GET", inm: func(e, _ string) string { return e }, want: 304},
		{name: "gzip match gzip etag", accept: acceptFull, gzip: true, method: "GET", inm: func(_, g string) string { return g }, want: 304},
		{name: "gzip match identity etag", accept: acceptFull, gzip: true, method: "GET", inm: func(e, _ string) string { return e }, want: 304},
		{name: "if-modified-since future", accept: acceptFull, method: "GET", ims: time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), want: 304},
		{name: "if-modified-since past", accept: acceptFull, method: "GET", ims: "Mon, 01 Jan 2001 00:00:00 GMT", want: 200, wantLen: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			identity := get(t, u, "Accept", tc.accept)
			gz := get(t, u, "Accept", tc.accept, "Accept-Encoding", "gzip")
			e, g := identity.header.Get("ETag"), gz.header.Get("ETag")
			if e == "" || g == "" || e == g || !strings.HasPrefix(e, `"`) || !strings.HasSuffix(e, `"`) {
				t.Fatalf("ETags %q (identity) %q (gzip)", e, g)
			}
			hdr := []string{"Accept", tc.accept}
			if tc.gzip {
				hdr = append(hdr, "Accept-Encoding", "gzip")
			}
			if tc.inm != nil {
				hdr = append(hdr, "If-None-Match", tc.inm(e, g))
			}
			if tc.ims != "" {
				hdr = append(hdr, "If-Modified-Since", tc.ims)
			}
			before := s.Requests().NotModified
			r := do(t, tc.method, u, hdr...)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
			wantTag := e
			if tc.gzip {
				wantTag = g
			}
			if got := r.header.Get("ETag"); got != wantTag {
				t.Errorf("ETag %q, want %q", got, wantTag)
			}
			if tc.want == 304 {
				if len(r.body) != 0 {
					t.Errorf("304 with %d body bytes", len(r.body))
				}
				if got := s.Requests().NotModified - before; got != 1 {
					t.Errorf("NotModified counted %d", got)
				}
			}
			if tc.wantLen && tc.method == "GET" && len(r.body) == 0 {
				t.Error("empty 200")
			}
		})
	}
}

func TestGzip(t *testing.T) {
	s := Start(t, Dir())
	for _, name := range []string{"ms", "typescript", "@types%2fnode"} {
		for _, accept := range []string{acceptFull, acceptCorgi} {
			plain := get(t, s.URL+"/"+name, "Accept", accept)
			gz := get(t, s.URL+"/"+name, "Accept", accept, "Accept-Encoding", "gzip, deflate, br")
			if plain.header.Get("Content-Encoding") != "" {
				t.Errorf("%s: identity request got Content-Encoding %q", name, plain.header.Get("Content-Encoding"))
			}
			if gz.header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("%s: Content-Encoding %q", name, gz.header.Get("Content-Encoding"))
			}
			if cl := gz.header.Get("Content-Length"); cl != fmt.Sprint(len(gz.body)) {
				t.Errorf("%s: Content-Length %s for %d bytes", name, cl, len(gz.body))
			}
			zr, err := gzip.NewReader(bytes.NewReader(gz.body))
			if err != nil {
				t.Fatal(err)
			}
			dec, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dec, plain.body) {
				t.Errorf("%s (%s): gunzipped body differs from identity body", name, accept)
			}
			if !strings.Contains(gz.header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("Vary %q", gz.header.Get("Vary"))
			}
		}
	}
}

func TestTarballs(t *testing.T) {
	s := Start(t, Dir())
	tbs, err := recordedTarballs()
	if err != nil {
		t.Fatal(err)
	}
	if len(tbs) < 30 {
		t.Fatalf("only %d recorded tarballs", len(tbs))
	}
	for _, tb := range tbs {
		t.Run(tb.Name+"/"+tb.Basename, func(t *testing.T) {
			disk, err := os.ReadFile(tb.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !sriOK(disk, tb.Integrity) || !shasumOK(disk, tb.Shasum) {
				t.Fatalf("file on disk does not match dist.integrity %s / shasum %s", tb.Integrity, tb.Shasum)
			}
			paths := []string{tb.Name + "/-/" + tb.Basename}
			if scope, pkg, ok := strings.Cut(tb.Name, "/"); ok {
				paths = append(paths, scope+"%2f"+pkg+"/-/"+tb.Basename, scope+"%2F"+pkg+"/-/"+tb.Basename)
			}
			for _, p := range paths {
				r := get(t, s.URL+"/"+p)
				if r.status != 200 {
					t.Fatalf("GET /%s: %d", p, r.status)
				}
				if ct := r.header.Get("Content-Type"); ct != TypeTarball {
					t.Errorf("Content-Type %q", ct)
				}
				if r.header.Get("Content-Encoding") != "" {
					t.Errorf("tarball with Content-Encoding %q", r.header.Get("Content-Encoding"))
				}
				if cl := r.header.Get("Content-Length"); cl != fmt.Sprint(len(disk)) {
					t.Errorf("Content-Length %s, file has %d", cl, len(disk))
				}
				if !bytes.Equal(r.body, disk) {
					t.Errorf("GET /%s: body differs from %s", p, tb.Path)
				}
			}
			h := do(t, http.MethodHead, s.URL+"/"+paths[0])
			if h.status != 200 || len(h.body) != 0 || h.header.Get("Content-Length") != fmt.Sprint(len(disk)) {
				t.Errorf("HEAD: %d, %d body bytes, Content-Length %s", h.status, len(h.body), h.header.Get("Content-Length"))
			}
		})
	}
}

// TestLockfileRecorded checks that every package of the e2e lockfile is
// recorded with the lockfile's integrity, and reachable through the URL the
// served packument advertises.
func TestLockfileRecorded(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(Dir(), "..", "e2e", "app", "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	var lf struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Name, Version, Resolved, Integrity string
			HasInstallScript                   bool
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lf); err != nil {
		t.Fatal(err)
	}
	if lf.LockfileVersion != 3 {
		t.Errorf("lockfileVersion %d", lf.LockfileVersion)
	}
	tbs, err := recordedTarballs()
	if err != nil {
		t.Fatal(err)
	}
	byVersion := map[string]Tarball{}
	for _, tb := range tbs {
		byVersion[tb.Name+"@"+tb.Version] = tb
	}
	s := Start(t, Dir())
	docs := map[string]packument{}
	n := 0
	for key, e := range lf.Packages {
		if key == "" {
			continue
		}
		n++
		name := e.Name
		if name == "" {
			name = key[strings.LastIndex(key, "node_modules/")+len("node_modules/"):]
		}
		if e.HasInstallScript {
			t.Errorf("%s has an install script", key)
		}
		if !strings.HasPrefix(e.Resolved, "https://registry.npmjs.org/") {
			t.Errorf("%s: resolved %q", key, e.Resolved)
		}
		tb, ok := byVersion[name+"@"+e.Version]
		if !ok {
			t.Errorf("%s: %s@%s not recorded", key, name, e.Version)
			continue
		}
		if tb.Integrity != e.Integrity || tb.URL != e.Resolved {
			t.Errorf("%s: lockfile %s %s, packument %s %s", key, e.Resolved, e.Integrity, tb.URL, tb.Integrity)
		}
		p, ok := docs[name]
		if !ok {
			p = decodePackument(t, get(t, s.URL+"/"+name, "Accept", acceptCorgi).body)
			docs[name] = p
		}
		u, integrity, _ := distOf(t, p.Versions[e.Version])
		r := get(t, u)
		if r.status != 200 || !sriOK(r.body, integrity) {
			t.Errorf("%s: GET %s: %d, integrity ok %v", key, u, r.status, sriOK(r.body, integrity))
		}
	}
	if n < 25 || n > 60 {
		t.Errorf("lockfile has %d packages, want 25-60", n)
	}
}

func TestNotFound(t *testing.T) {
	s := Start(t, Dir())
	paths := []string{
		"/no-such-package-npmgate",
		"/@npmgate%2fno-such-package",
		"/@npmgate/no-such-package",
		"/ms/-/ms-0.0.0.tgz",
		"/ms/-/ms-2.1.3.tgz.bak",
		"/@types/node/-/node-0.0.0.tgz",
		"/@types%2fnode/-/node-0.0.0.tgz",
		"/no-such-package-npmgate/-/no-such-package-npmgate-1.0.0.tgz",
		"/..%2f..%2fgo.mod",
		"/%2e%2e/%2e%2e/go.mod",
		"/ms/-/..%2f..%2fpackuments%2fms.json.gz",
		"/ms/-/..",
		"/@types",
		"/@types/node/extra/segments",
		"/ms/",
		"/ms/2.1.3",
		"/-/v1/search",
		"/-/whoami",
		"/",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			before := s.Requests().NotFound
			r := get(t, s.URL+p)
			if r.status != http.StatusNotFound {
				t.Fatalf("status %d, body %.200s", r.status, r.body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(r.body, &e); err != nil || e.Error != "Not found" {
				t.Errorf("body %q", r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != TypeJSON {
				t.Errorf("Content-Type %q", ct)
			}
			if got := s.Requests().NotFound - before; got != 1 {
				t.Errorf("NotFound counted %d", got)
			}
		})
	}
}

func TestPing(t *testing.T) {
	s := Start(t, Dir())
	r := get(t, s.URL+"/-/ping")
	if r.status != 200 || string(r.body) != "{}" {
		t.Fatalf("ping: %d %q", r.status, r.body)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := Start(t, Dir())
	r := do(t, http.MethodPut, s.URL+"/ms")
	if r.status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", r.status)
	}
}

func TestSetDown(t *testing.T) {
	s := Start(t, Dir())
	s.SetDown(true)
	for _, p := range []string{"/ms", "/ms/-/ms-2.1.3.tgz", "/-/ping", "/nope"} {
		r := get(t, s.URL+p)
		var e struct{ Error string }
		if r.status != http.StatusServiceUnavailable || json.Unmarshal(r.body, &e) != nil || e.Error == "" {
			t.Errorf("down: GET %s: %d %q", p, r.status, r.body)
		}
	}
	s.SetDown(false)
	if r := get(t, s.URL+"/ms"); r.status != 200 {
		t.Errorf("up again: %d", r.status)
	}
}

func TestCorruptTarballs(t *testing.T) {
	s := Start(t, Dir())
	tbs, err := recordedTarballs()
	if err != nil {
		t.Fatal(err)
	}
	tb := tbs[0]
	u := s.URL + "/" + tb.Name + "/-/" + tb.Basename
	good := get(t, u).body
	s.SetCorruptTarballs(true)
	bad := get(t, u)
	if bad.status != 200 || len(bad.body) != len(good) || bad.header.Get("Content-Length") != fmt.Sprint(len(good)) {
		t.Fatalf("corrupt: status %d, %d bytes, want %d", bad.status, len(bad.body), len(good))
	}
	if sriOK(bad.body, tb.Integrity) {
		t.Error("corrupted tarball still matches dist.integrity")
	}
	diff := 0
	for i := range good {
		if good[i] != bad.body[i] {
			diff++
		}
	}
	if diff != 1 {
		t.Errorf("%d bytes differ, want 1", diff)
	}
	// Packuments are untouched.
	if r := get(t, s.URL+"/ms"); r.status != 200 || !json.Valid(r.body) {
		t.Errorf("packument while corrupting: %d", r.status)
	}
	s.SetCorruptTarballs(false)
	if r := get(t, u); !sriOK(r.body, tb.Integrity) {
		t.Error("still corrupt after SetCorruptTarballs(false)")
	}
}

func TestResetTarballs(t *testing.T) {
	s := Start(t, Dir())
	u := s.URL + "/@hot-loader/react-dom/-/react-dom-17.0.2.tgz"
	full := get(t, u).body
	s.SetResetTarballs(true)
	for i := 0; i < 3; i++ { // and the server keeps working afterwards
		resp, err := client.Get(u)
		if err != nil {
			continue // also acceptable: the client saw the reset early
		}
		if resp.ContentLength != int64(len(full)) {
			t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(full))
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("read %d of %d bytes without an error", len(b), len(full))
		}
		if len(b) >= len(full) {
			t.Errorf("read %d bytes, want fewer than %d", len(b), len(full))
		}
	}
	if r := get(t, s.URL+"/ms"); r.status != 200 {
		t.Errorf("packument while resetting tarballs: %d", r.status)
	}
	s.SetResetTarballs(false)
	if r := get(t, u); !bytes.Equal(r.body, full) {
		t.Error("tarball still cut after SetResetTarballs(false)")
	}
}

func TestHangThenClose(t *testing.T) {
	s, err := New(Dir())
	if err != nil {
		t.Fatal(err)
	}
	s.SetHang(true)
	errc := make(chan error, 3)
	for _, p := range []string{"/ms", "/ms/-/ms-2.1.3.tgz", "/-/ping"} {
		go func() {
			resp, err := client.Get(s.URL + p)
			if err == nil {
				resp.Body.Close()
				err = fmt.Errorf("GET %s answered %d while hanging", p, resp.StatusCode)
			} else {
				err = nil
			}
			errc <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Requests().Total < 3 {
		if time.Now().After(deadline) {
			t.Fatal("requests never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close hangs")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	for i := 0; i < 3; i++ {
		select {
		case err := <-errc:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a hung request did not end after Close")
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestHangRespectsClientContext(t *testing.T) {
	s := Start(t, Dir())
	s.SetHang(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/ms", nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d while hanging", resp.StatusCode)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v", err)
	}
	s.SetHang(false)
	if r := get(t, s.URL+"/ms"); r.status != 200 {
		t.Errorf("after SetHang(false): %d", r.status)
	}
}

func TestRewrite(t *testing.T) {
	on := Start(t, Dir())
	off := Start(t, Dir(), WithTarballBaseRewrite(false))
	tests := []struct {
		name   string
		decode bool // check every dist.tarball one by one (slow for huge documents)
	}{
		{"ms", true},
		{"@isaacs/cliui", true},
		{"@parcel/logger", true},
		{"react", false},
		{"@types/node", false},
		{"typescript", false},
	}
	for _, tc := range tests {
		name := tc.name
		t.Run(name, func(t *testing.T) {
			recorded, err := ReadPackument(Dir(), name)
			if err != nil {
				t.Fatal(err)
			}
			offFull := get(t, off.URL+"/"+name, "Accept", acceptFull)
			if !bytes.Equal(offFull.body, recorded) {
				t.Error("rewrite off: full packument differs from the recording")
			}
			// Rewriting changes nothing but dist.tarball.
			onFull := get(t, on.URL+"/"+name, "Accept", acceptFull).body
			undone := strings.ReplaceAll(string(onFull), on.URL+"/", "https://registry.npmjs.org/")
			if undone != string(recorded) {
				t.Error("rewrite changed more than dist.tarball")
			}
			if strings.Count(string(onFull), on.URL+"/"+name+"/-/") != strings.Count(string(recorded), `"tarball": "`) {
				t.Error("not every dist.tarball points at the server")
			}
			if !tc.decode {
				return
			}
			rec := decodePackument(t, recorded)
			for _, variant := range []struct {
				s      *Server
				accept string
			}{{on, acceptFull}, {on, acceptCorgi}, {off, acceptCorgi}} {
				p := decodePackument(t, get(t, variant.s.URL+"/"+name, "Accept", variant.accept).body)
				for v, m := range p.Versions {
					got, _, _ := distOf(t, m)
					orig, _, _ := distOf(t, rec.Versions[v])
					want := orig
					if variant.s == on {
						want = on.URL + "/" + name + "/-/" + tarballBasename(orig)
					}
					if got != want {
						t.Fatalf("%s (%s): dist.tarball %q, want %q", v, variant.accept, got, want)
					}
				}
			}
		})
	}
}

func TestLatency(t *testing.T) {
	s := Start(t, Dir(), WithLatency(80*time.Millisecond))
	for _, p := range []string{"/-/ping", "/ms", "/nope"} {
		start := time.Now()
		get(t, s.URL+p)
		if d := time.Since(start); d < 80*time.Millisecond {
			t.Errorf("GET %s took %v", p, d)
		}
	}
}

func TestStats(t *testing.T) {
	s := Start(t, Dir())
	get(t, s.URL+"/@types%2Fnode", "Accept", acceptCorgi, "X-Test", "1")
	get(t, s.URL+"/@types%2Fnode", "Accept", acceptCorgi, "If-None-Match", get(t, s.URL+"/@types%2Fnode", "Accept", acceptCorgi).header.Get("ETag"))
	get(t, s.URL+"/ms/-/ms-2.1.3.tgz?x=1")
	get(t, s.URL+"/nope")
	st := s.Requests()
	wantPaths := []string{"/@types%2Fnode", "/@types%2Fnode", "/@types%2Fnode", "/ms/-/ms-2.1.3.tgz", "/nope"}
	if !slices.Equal(st.Paths, wantPaths) {
		t.Errorf("Paths %q, want %q", st.Paths, wantPaths)
	}
	if st.Total != 5 || st.Packuments != 4 || st.Tarballs != 1 || st.NotModified != 1 || st.NotFound != 1 {
		t.Errorf("stats %+v", st)
	}
	if len(st.Headers) != 5 || st.Headers[0].Get("X-Test") != "1" || st.Headers[0].Get("Accept") != acceptCorgi {
		t.Errorf("headers %v", st.Headers)
	}
	st.Headers[0].Set("X-Test", "changed")
	if s.Requests().Headers[0].Get("X-Test") != "1" {
		t.Error("Requests does not return a copy")
	}
	s.ResetStats()
	if st := s.Requests(); st.Total != 0 || len(st.Paths) != 0 || len(st.Headers) != 0 {
		t.Errorf("after ResetStats: %+v", st)
	}
}

func TestPackumentOverride(t *testing.T) {
	s := Start(t, Dir())
	tests := []struct {
		name, path, ct string
		status         int
		body           []byte
	}{
		{"html 500", "/ms", "text/html", 500, []byte("<html>oops</html>")},
		{"truncated json", "/@isaacs%2Fcliui", "application/json", 200, []byte(`{"name":"@isaacs/cli`)},
		{"unpublished", "/@isaacs/cliui", "application/json", 200, []byte(`{"name":"@isaacs/cliui","time":{"unpublished":{"time":"2020-01-01T00:00:00.000Z"}}}`)},
		{"empty 404", "/@isaacs%2fcliui", "application/json", 404, []byte{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.NewReplacer("%2f", "/", "%2F", "/").Replace(strings.TrimPrefix(tc.path, "/"))
			s.SetPackumentOverride(name, tc.status, tc.ct, tc.body)
			for _, accept := range []string{acceptFull, acceptCorgi} {
				r := get(t, s.URL+tc.path, "Accept", accept)
				if r.status != tc.status || r.header.Get("Content-Type") != tc.ct || !bytes.Equal(r.body, tc.body) {
					t.Errorf("%s: %d %q %q", accept, r.status, r.header.Get("Content-Type"), r.body)
				}
			}
			s.SetPackumentOverride(name, 0, "", nil)
			if r := get(t, s.URL+tc.path); r.status != 200 || decodePackument(t, r.body).Name != name {
				t.Errorf("after removing the override: %d", r.status)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	s := Start(t, Dir())
	tbs, err := recordedTarballs()
	if err != nil {
		t.Fatal(err)
	}
	names, err := Names(Dir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 12; i++ {
				var u, accept string
				if (g+i)%2 == 0 {
					tb := tbs[(g*7+i)%len(tbs)]
					u = s.URL + "/" + tb.Name + "/-/" + tb.Basename
				} else {
					u = s.URL + "/" + Escape(names[(g*5+i)%len(names)])
					accept = []string{acceptFull, acceptCorgi}[i%2]
				}
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				if i%3 == 0 {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					errs <- fmt.Errorf("GET %s: %d %v", u, resp.StatusCode, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Requests(); st.Total != 32*12 || len(st.Paths) != st.Total {
		t.Errorf("counted %d requests, %d paths", st.Total, len(st.Paths))
	}
}

func TestNewRejectsNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		if s, err := New(Dir(), WithListenAddr(addr)); err == nil {
			s.Close()
			t.Errorf("New with %q succeeded", addr)
		}
	}
	if _, err := New(t.TempDir()); err == nil {
		t.Error("New on an empty directory succeeded")
	}
}

// writeSynthetic creates a registry directory holding hand-made packuments
// for cases the recorded data lacks: pretty-printed JSON, a version with
// build metadata in its tarball name, install scripts, HTML characters, and
// an unpublished package.
func writeSynthetic(t *testing.T) (dir string, tarball []byte) {
	t.Helper()
	dir = t.TempDir()
	tarball = []byte("not really a tarball, but bytes are bytes\x00\x01\x02")
	sum := sha512.Sum512(tarball)
	integrity := "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	sha := sha1.Sum(tarball)
	pkg := `{
  "_id": "@syn/plus",
  "name": "@syn/plus",
  "readme": "<b>&amp; \u003c</b> \/ slashes",
  "dist-tags": { "latest": "1.0.0+build.5" },
  "versions": {
    "1.0.0+build.5": {
      "name": "@syn/plus",
      "version": "1.0.0+build.5",
      "scripts": { "postinstall": "node x.js", "test": "x" },
      "dependencies": { "ms": "2.1.3+meta" },
      "dist" : {
        "shasum": "` + hex.EncodeToString(sha[:]) + `",
        "tarball"	:	"https://registry.npmjs.org/@syn/plus/-/plus-1.0.0+build.5.tgz",
        "integrity": "` + integrity + `"
      }
    },
    "0.9.0": {
      "name": "@syn/plus", "version": "0.9.0", "scripts": { "install": "" },
      "dist": { "tarball": null },
      "gitHead": "abc"
    }
  },
  "time": { "created": "2020-01-01T00:00:00.000Z", "0.9.0": "2020-01-02T00:00:00.000Z", "1.0.0+build.5": "2021-03-04T05:06:07.890Z" }
}
`
	gone := `{"_id":"gone","name":"gone","time":{"created":"2019-01-01T00:00:00.000Z","modified":"2019-05-05T00:00:00.000Z","unpublished":{"time":"2019-05-05T00:00:00.000Z","versions":["1.0.0"]}}}`
	write := func(rel string, b []byte, zip bool) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if zip {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(b)
			zw.Close()
			b = buf.Bytes()
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("packuments/@syn%2fplus.json.gz", []byte(pkg), true)
	write("packuments/gone.json.gz", []byte(gone), true)
	write("tarballs/@syn%2fplus/plus-1.0.0+build.5.tgz", tarball, false)
	return dir, tarball
}

func TestSynthetic(t *testing.T) {
	dir, tarball := writeSynthetic(t)
	s := Start(t, dir)
	recorded, err := ReadPackument(dir, "@syn/plus")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("rewrite keeps other bytes", func(t *testing.T) {
		full := get(t, s.URL+"/@syn%2fplus", "Accept", acceptFull).body
		want := strings.Replace(string(recorded),
			`"tarball"	:	"https://registry.npmjs.org/@syn/plus/-/plus-1.0.0+build.5.tgz"`,
			`"tarball"	:	"`+s.URL+`/@syn/plus/-/plus-1.0.0+build.5.tgz"`, 1)
		if string(full) != want {
			t.Errorf("served:\n%s\nwant:\n%s", full, want)
		}
	})

	t.Run("abbreviated", func(t *testing.T) {
		r := get(t, s.URL+"/@syn/plus", "Accept", acceptCorgi)
		want := `{"name":"@syn/plus","modified":"2021-03-04T05:06:07.890Z","dist-tags":{"latest":"1.0.0+build.5"},"versions":{` +
			`"1.0.0+build.5":{"name":"@syn/plus","version":"1.0.0+build.5","dependencies":{"ms":"2.1.3+meta"},"dist":{"shasum":"` +
			hex.EncodeToString(func() []byte { h := sha1.Sum(tarball); return h[:] }()) +
			`","tarball":"` + s.URL + `/@syn/plus/-/plus-1.0.0+build.5.tgz","integrity":"` +
			func() string { h := sha512.Sum512(tarball); return "sha512-" + base64.StdEncoding.EncodeToString(h[:]) }() +
			`"},"hasInstallScript":true},` +
			`"0.9.0":{"name":"@syn/plus","version":"0.9.0","dist":{"tarball":null}}}}`
		if string(r.body) != want {
			t.Errorf("got\n%s\nwant\n%s", r.body, want)
		}
		if lm := r.header.Get("Last-Modified"); lm != "Thu, 04 Mar 2021 05:06:07 GMT" {
			t.Errorf("Last-Modified %q", lm)
		}
	})

	t.Run("plus in tarball name", func(t *testing.T) {
		for _, p := range []string{
			"/@syn/plus/-/plus-1.0.0+build.5.tgz",
			"/@syn%2fplus/-/plus-1.0.0%2Bbuild.5.tgz",
			"/@syn%2Fplus/-/plus-1.0.0+build.5.tgz",
		} {
			r := get(t, s.URL+p)
			if r.status != 200 || !bytes.Equal(r.body, tarball) {
				t.Errorf("GET %s: %d", p, r.status)
			}
		}
		if r := get(t, s.URL+"/@syn/plus/-/plus-1.0.0 build.5.tgz"); r.status != 404 {
			t.Errorf("'+' as space: %d", r.status)
		}
		if r := get(t, s.URL+"/@syn/plus/-/plus-1.0.0.tgz"); r.status != 404 {
			t.Errorf("without build metadata: %d", r.status)
		}
	})

	t.Run("unpublished", func(t *testing.T) {
		full := get(t, s.URL+"/gone", "Accept", acceptFull)
		corgi := get(t, s.URL+"/gone", "Accept", acceptCorgi)
		if full.status != 200 || corgi.status != 200 {
			t.Fatalf("status %d %d", full.status, corgi.status)
		}
		if want := `{"name":"gone","modified":"2019-05-05T00:00:00.000Z","dist-tags":{},"versions":{}}`; string(corgi.body) != want {
			t.Errorf("abbreviated %s", corgi.body)
		}
	})

	t.Run("tarballs list", func(t *testing.T) {
		tbs, err := Tarballs(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(tbs) != 1 || tbs[0].Version != "1.0.0+build.5" || tbs[0].Basename != "plus-1.0.0+build.5.tgz" {
			t.Errorf("Tarballs = %+v", tbs)
		}
	})
}

func TestScanPackumentErrors(t *testing.T) {
	for _, doc := range []string{``, `[]`, `{"versions":{"1":{"dist":{"tarball":"x"}}}`, `{} {}`, `{"a":}`} {
		if _, _, err := scanPackument([]byte(doc)); err == nil {
			t.Errorf("scanPackument(%q) succeeded", doc)
		}
	}
	vs, spans, err := scanPackument([]byte(`{"versions":{"2":{"dist":[1,{"tarball":"no"}]},"1":{"dist":{"tarball":"u"}},"3":null},"x":{"dist":{"tarball":"no"}}}`))
	if err != nil || !slices.Equal(vs, []string{"2", "1", "3"}) || len(spans) != 1 || spans[0].url != "u" {
		t.Errorf("got %v %v %v", vs, spans, err)
	}
}
