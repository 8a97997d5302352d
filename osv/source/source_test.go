package source

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/npmgate/npmgate/osv"
)

// exportServer serves a zip with an ETag and Last-Modified, answers
// conditional GETs, and can be told to fail or to serve other bytes.
type exportServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     []byte
	etag     string
	status   int // non-zero: answer this instead
	requests atomic.Int32
	ifNone   []string // If-None-Match of each request
}

func newExportServer(t *testing.T, body []byte) *exportServer {
	s := &exportServer{body: body, etag: `"v1"`}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests.Add(1)
		s.ifNone = append(s.ifNone, r.Header.Get("If-None-Match"))
		if s.status != 0 {
			w.WriteHeader(s.status)
			return
		}
		if r.Header.Get("If-None-Match") == s.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", s.etag)
		w.Header().Set("Last-Modified", "Wed, 25 Nov 2026 00:00:00 GMT")
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *exportServer) set(body []byte, etag string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag, s.status = body, etag, status
}

func testZip(t *testing.T) []byte {
	data, err := os.ReadFile(testdataZip)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSourceURLRefresh(t *testing.T) {
	srv := newExportServer(t, testZip(t))
	cache := t.TempDir()
	src, err := New(Options{Location: srv.URL + "/npm/all.zip?token=secret", CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if src.Affecting("semver", "7.5.1") != nil || src.Status().Loaded {
		t.Fatal("a source serves nothing before it starts")
	}
	ctx := context.Background()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(src.Affecting("semver", "7.5.1")); !slices.Equal(got, []string{"GHSA-c2qf-rxjj-qqgw"}) {
		t.Fatalf("after start: %v", got)
	}
	st := src.Status()
	if !st.Loaded || st.Records != 7 || st.Malicious != 2 || st.LastError != "" || st.LastSuccess.IsZero() {
		t.Errorf("status %+v", st)
	}
	if strings.Contains(st.Location, "secret") || strings.Contains(src.String(), "secret") {
		t.Errorf("the location keeps its query: %q", st.Location)
	}
	first := src.DB()

	// Unchanged: a conditional GET, a 304, the same database.
	if err := src.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if src.DB() != first || srv.ifNone[len(srv.ifNone)-1] != `"v1"` {
		t.Errorf("304: db replaced %v, If-None-Match %q", src.DB() != first, srv.ifNone)
	}

	// The URL fails: the last good database stays, the error is said.
	srv.set(testZip(t), `"v1"`, http.StatusBadGateway)
	if err := src.Refresh(ctx); err == nil {
		t.Fatal("no error from a 502")
	}
	st = src.Status()
	if src.DB() != first || !strings.Contains(st.LastError, "502") || strings.Contains(st.LastError, "secret") {
		t.Errorf("after a 502: db kept %v, status %+v", src.DB() == first, st)
	}

	// A new export: replaced.
	files := dirFiles(t, testdataDir)
	files["GHSA-new.json"] = rec("GHSA-new", "react")
	srv.set(zipOf(t, files), `"v2"`, 0)
	if err := src.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(src.Affecting("react", "1.0.0")); !slices.Equal(got, []string{"GHSA-new"}) || src.Status().Records != 8 {
		t.Errorf("after a new export: %v %+v", got, src.Status())
	}
}

// Exports that parse into nothing, fail validation or shrink by half
// never replace a good database.
func TestSourceKeepsGoodDatabase(t *testing.T) {
	srv := newExportServer(t, testZip(t))
	src, err := New(Options{Location: srv.URL + "/all.zip", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	good := src.DB()
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"not a zip", []byte("<html>maintenance</html>")},
		{"no npm record", zipOf(t, map[string][]byte{"x.json": []byte(`{"id":"PYSEC-1","affected":[{"package":{"ecosystem":"PyPI","name":"x"},"versions":["1"]}]}`)})},
		{"empty zip", zipOf(t, map[string][]byte{})},
		{"shrunk", zipOf(t, map[string][]byte{"a.json": rec("GHSA-a", "a"), "b.json": rec("GHSA-b", "b")})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.set(tc.body, `"`+tc.name+`"`, 0)
			if err := src.Refresh(ctx); err == nil {
				t.Fatal("no error")
			}
			if src.DB() != good || src.Status().Records != 7 || src.Status().LastError == "" {
				t.Errorf("database replaced: %+v", src.Status())
			}
		})
	}
}

// A restart while the URL is down serves the cached copy, and asks the
// URL with the cached validators once it is back.
func TestSourceCacheSurvivesRestart(t *testing.T) {
	srv := newExportServer(t, testZip(t))
	cache := t.TempDir()
	opts := Options{Location: srv.URL + "/all.zip", CacheDir: cache}
	ctx := context.Background()
	first, _ := New(opts)
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 2 {
		t.Fatalf("cache holds %v, want the zip and its validators", entries)
	}

	srv.set(nil, "", http.StatusServiceUnavailable)
	second, _ := New(opts)
	if err := second.Start(ctx); err != nil {
		t.Fatalf("start with the URL down and a cache: %v", err)
	}
	st := second.Status()
	if !st.Loaded || !st.FromCache || st.Records != 7 || !strings.Contains(st.LastError, "503") {
		t.Errorf("status %+v", st)
	}
	if got := ids(second.Affecting("json5", "2.2.1")); !slices.Equal(got, []string{"GHSA-9c47-m6qq-7p4h"}) {
		t.Errorf("from cache: %v", got)
	}

	srv.set(testZip(t), `"v1"`, 0)
	before := srv.requests.Load()
	if err := second.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.requests.Load() != before+1 || srv.ifNone[len(srv.ifNone)-1] != `"v1"` {
		t.Errorf("refresh after restart sent If-None-Match %q", srv.ifNone[len(srv.ifNone)-1])
	}

	// Another URL never serves this URL's cache.
	other, _ := New(Options{Location: srv.URL + "/other.zip", CacheDir: cache})
	srv.set(nil, "", http.StatusServiceUnavailable)
	if err := other.Start(ctx); err == nil || other.DB() != nil {
		t.Errorf("another URL served a cache: %v", other.Status())
	}
}

func TestSourceWithoutCacheFailsWhenDown(t *testing.T) {
	srv := newExportServer(t, nil)
	srv.set(nil, "", http.StatusNotFound)
	src, _ := New(Options{Location: srv.URL + "/all.zip"})
	if err := src.Start(context.Background()); err == nil || src.Status().Loaded {
		t.Fatalf("start: %v %+v", err, src.Status())
	}
}

func TestSourceDownloadBound(t *testing.T) {
	srv := newExportServer(t, testZip(t))
	src, _ := New(Options{Location: srv.URL + "/all.zip", MaxDownload: 100})
	if err := src.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than 100") {
		t.Fatalf("start: %v", err)
	}
}

func TestSourcePath(t *testing.T) {
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "all.zip")
	if err := os.WriteFile(zipPath, testZip(t), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := New(Options{Location: zipPath})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	first := src.DB()
	if err := src.Refresh(ctx); err != nil || src.DB() != first {
		t.Errorf("an unchanged file was read again: %v", err)
	}
	if err := os.WriteFile(zipPath, []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := src.Refresh(ctx); err == nil || src.DB() != first {
		t.Errorf("a broken file replaced the database: %v", err)
	}
	os.Remove(zipPath)
	if err := src.Refresh(ctx); err == nil || src.DB() != first {
		t.Errorf("a removed file replaced the database: %v", err)
	}
	// A smaller file is the operator's choice: served, however small.
	small := zipOf(t, map[string][]byte{"a.json": rec("GHSA-a", "a")})
	if err := os.WriteFile(zipPath, small, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := src.Refresh(ctx); err != nil || src.Status().Records != 1 {
		t.Errorf("a smaller local file: %v %+v", err, src.Status())
	}
}

// Readers running during refreshes always see a whole database.
func TestSourceSwapIsAtomic(t *testing.T) {
	srv := newExportServer(t, testZip(t))
	src, _ := New(Options{Location: srv.URL + "/all.zip"})
	ctx := context.Background()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if len(src.Affecting("semver", "7.5.1")) != 1 || len(src.Affecting("debug", "4.4.2")) != 1 {
				t.Error("a reader saw a partial database")
				return
			}
		}
	}()
	for i := range 5 {
		srv.set(testZip(t), `"v`+string(rune('a'+i))+`"`, 0)
		if err := src.Refresh(ctx); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

const testdataDir = "../../testdata/osv/npm"
const testdataZip = "../../testdata/osv/npm.zip"

func rec(id, name string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"affected":[{"package":{"ecosystem":"npm","name":%q},"versions":["1.0.0"]}]}`, id, name)
}

func ids(advs []*osv.Advisory) []string {
	out := []string{}
	for _, a := range advs {
		out = append(out, a.ID)
	}
	return out
}

// zipOf builds a deflated zip of files, in name order.
func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f, err := w.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(files[n])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dirFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no records in %s: %v", dir, err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = data
	}
	return files
}

// Run refreshes on its interval until its context ends.
func TestSourceRun(t *testing.T) {
	srv := newExportServer(t, testZip(t))
	src, _ := New(Options{Location: srv.URL + "/all.zip"})
	ctx, cancel := context.WithCancel(context.Background())
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { src.Run(ctx, time.Millisecond, nil); close(done) }()
	deadline := time.After(30 * time.Second) // a bound on the test, not an assertion on timing
	for srv.requests.Load() < 3 {
		select {
		case <-deadline:
			t.Fatalf("Run made %d requests", srv.requests.Load())
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	<-done
	// (A refresh cut by the cancel may have ended in an error; the
	// database stays.)
	if st := src.Status(); !st.Loaded || st.Records != 7 {
		t.Errorf("status %+v", st)
	}
}

func TestSourceMetricsAndReady(t *testing.T) {
	srv := newExportServer(t, testZip(t))
	src, _ := New(Options{Location: srv.URL + "/all.zip?token=secret"})
	if ok, msg := src.Status().Ready(); ok || !strings.Contains(msg, "no database") {
		t.Errorf("before start: %v %q", ok, msg)
	}
	ctx := context.Background()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_ = src.Refresh(ctx) // 304
	srv.set(nil, "", http.StatusBadGateway)
	_ = src.Refresh(ctx)
	ok, msg := src.Status().Ready()
	if !ok || !strings.Contains(msg, "7 advisories (2 malicious)") || !strings.Contains(msg, "last refresh failed") || strings.Contains(msg, "secret") {
		t.Errorf("ready %v %q", ok, msg)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(src.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"npmgate_osv_records malicious": 2, "npmgate_osv_records vulnerability": 5, "npmgate_osv_loaded": 1,
		"npmgate_osv_refreshes_total ok": 1, "npmgate_osv_refreshes_total not_modified": 1, "npmgate_osv_refreshes_total error": 1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], want, got)
		}
	}
	if got["npmgate_osv_last_success_timestamp_seconds"] <= 0 {
		t.Errorf("no success time: %v", got)
	}
}

// TestSourceDirectoryUnchangedIsNotReloaded: a directory whose files did
// not change is not loaded again (a new database would make every
// document be rendered again at each refresh); an edited, added or
// removed record is loaded.
func TestSourceDirectoryUnchangedIsNotReloaded(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{"a.json": rec("GHSA-a", "a"), "b.json": rec("GHSA-b", "b")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := New(Options{Location: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	first := src.DB()
	for range 3 {
		if err := src.Refresh(ctx); err != nil || src.DB() != first {
			t.Fatalf("an unchanged directory was loaded again: %v", err)
		}
	}
	later := time.Now().Add(time.Minute)
	for _, change := range []func() error{
		func() error { return os.Chtimes(filepath.Join(dir, "a.json"), later, later) }, // edited in place
		func() error { return os.WriteFile(filepath.Join(dir, "c.json"), rec("GHSA-c", "c"), 0o644) },
		func() error { return os.Remove(filepath.Join(dir, "b.json")) },
	} {
		before := src.DB()
		if err := change(); err != nil {
			t.Fatal(err)
		}
		if err := src.Refresh(ctx); err != nil || src.DB() == before {
			t.Errorf("a changed directory was not loaded again: %v", err)
		}
	}
	if st := src.Status(); st.Records != 2 {
		t.Errorf("records after the changes: %d, want 2 (a and c)", st.Records)
	}
}
