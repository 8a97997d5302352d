package cache

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEscape(t *testing.T) {
	tests := map[string]string{
		"lodash":       "lodash",
		"JSONStream":   "!j!s!o!n!stream",
		"jsonstream":   "jsonstream",
		"@types/node":  "@types/node",
		"a/b":          "a%2Fb",
		"@a/b/c":       "@a/b%2Fc",
		"../x":         "%2E.%2Fx",
		"..":           "%2E.",
		"@scope/..":    "@scope/%2E.",
		"con":          "con",
		"x%2f":         "x%252f",
		"we!rd~(name)": "we%21rd%7E%28name%29",
	}
	for in, want := range tests {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
	if SnapshotKey("npmjs", "JSONStream") == SnapshotKey("npmjs", "jsonstream") {
		t.Error("names differing only in case share a file")
	}
}

func TestDiskAtomicWrites(t *testing.T) {
	dir := t.TempDir()
	// A temporary file left by a crash is swept at start.
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o755)
	os.WriteFile(filepath.Join(dir, "tmp", "w-crashed"), []byte("partial"), 0o644)
	d, err := OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("stale temp files not swept: %v", entries)
	}
	key := SnapshotKey("npmjs", "@types/node")
	if err := WriteSnapshot(t.Context(), d, key, SnapshotMeta{ETag: `"e1"`}, []byte(`{"name":"@types/node"}`)); err != nil {
		t.Fatal(err)
	}
	body, meta, _, err := ReadSnapshot(t.Context(), d, key)
	if err != nil || string(body) != `{"name":"@types/node"}` || meta.ETag != `"e1"` {
		t.Fatalf("ReadSnapshot = %q %+v %v", body, meta, err)
	}
	if m, _, err := SnapshotInfo(t.Context(), d, key); err != nil || m.ETag != `"e1"` {
		t.Errorf("SnapshotInfo = %+v %v", m, err)
	}
	// A failed write leaves the old file.
	err = d.WriteFile(key, func(w io.Writer) error {
		w.Write([]byte("half"))
		return errors.New("disk full")
	})
	if err == nil {
		t.Fatal("failed write reported success")
	}
	if body, _, _, _ := ReadSnapshot(t.Context(), d, key); string(body) != `{"name":"@types/node"}` {
		t.Errorf("failed write changed the file: %q", body)
	}
	if _, _, err := d.Open("snapshots/npmjs/missing.json"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
	if err := d.Writable(); err != nil {
		t.Error(err)
	}
	// Keys cannot leave the data directory.
	if _, _, err := d.Open("../outside"); err == nil {
		t.Error("a key escaped the root")
	}
}

func expect(b []byte) Expect {
	sum := sha512.Sum512(b)
	return Expect{NewHash: sha512.New, Sum: sum[:]}
}

type countingSource struct {
	mu    sync.Mutex
	calls int
	data  []byte
	gate  chan struct{} // closed to let the body finish
}

func (s *countingSource) open(ctx context.Context) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	half := len(s.data) / 2
	r := io.MultiReader(bytes.NewReader(s.data[:half]), gated{s.gate}, bytes.NewReader(s.data[half:]))
	return io.NopCloser(r), int64(len(s.data)), nil
}

type gated struct{ ch chan struct{} }

func (g gated) Read([]byte) (int, error) { <-g.ch; return 0, io.EOF }

func TestFillSharesOneDownload(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	defer d.Close()
	g := NewFills(d, 0)
	g.timeout = 10e9
	data := bytes.Repeat([]byte("tarball bytes "), 50000)
	src := &countingSource{data: data, gate: make(chan struct{})}
	key := TarballKey("sha512", "abcdef")
	var wg sync.WaitGroup
	results := make([][]byte, 8)
	for i := range results {
		wg.Go(func() {
			r, size, err := g.Fetch(context.Background(), key, expect(data), src.open, nil)
			if err != nil || size != int64(len(data)) {
				t.Errorf("Fetch: %v size %d", err, size)
				return
			}
			defer r.Close()
			results[i], _ = io.ReadAll(r)
		})
	}
	close(src.gate)
	wg.Wait()
	if src.calls != 1 {
		t.Errorf("%d downloads, want 1", src.calls)
	}
	for _, r := range results {
		if !bytes.Equal(r, data) {
			t.Fatal("a reader got different bytes")
		}
	}
	r, _, err := g.Fetch(context.Background(), key, expect(data), src.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, ok := r.(*os.File); !ok || src.calls != 1 {
		t.Error("after commit the stored file is served without a download")
	}
}

func TestFillRefusesBadBytes(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	defer d.Close()
	g := NewFills(d, 10e9)
	data := []byte(strings.Repeat("x", 100000))
	src := &countingSource{data: data, gate: make(chan struct{})}
	var doneErr error
	done := make(chan struct{})
	r, _, err := g.Fetch(context.Background(), TarballKey("sha512", "00"), expect([]byte("other")), src.open, func(err error) {
		doneErr = err
		close(done)
	})
	if err != nil {
		t.Fatal(err)
	}
	close(src.gate) // the rest of the body arrives only once a reader follows
	got, err := io.ReadAll(r)
	r.Close()
	if !errors.Is(err, ErrIntegrity) || len(got) >= len(data) {
		t.Errorf("reader returned %d bytes and %v; want fewer than all and ErrIntegrity", len(got), err)
	}
	<-done
	if !errors.Is(doneErr, ErrIntegrity) {
		t.Errorf("onDone got %v", doneErr)
	}
	if _, _, err := d.Open(TarballKey("sha512", "00")); !errors.Is(err, ErrNotFound) {
		t.Error("bad bytes were stored")
	}
	if entries, _ := os.ReadDir(filepath.Join(d.Dir(), "tmp")); len(entries) != 0 {
		t.Errorf("temporary file left: %v", entries)
	}
}

// TestFillAfterFailure: a fill that has failed but is still cleaning up is
// not joined; the next request downloads again (the fault may be gone).
func TestFillAfterFailure(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	defer d.Close()
	g := NewFills(d, 10e9)
	key := TarballKey("sha512", "00")
	data := []byte("good bytes")
	sum := sha512.Sum512(data)
	// The moment between a failed fill's verdict and its removal from the
	// active set, held open.
	failed := &fill{started: true, done: true, err: ErrIntegrity, size: -1}
	failed.cond = sync.NewCond(&failed.mu)
	g.active[key] = failed
	var ran bool
	r, _, err := g.Fetch(t.Context(), key, Expect{NewHash: sha512.New, Sum: sum[:]}, func(context.Context) (io.ReadCloser, int64, error) {
		ran = true
		return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
	}, nil)
	if err != nil {
		t.Fatalf("Fetch after a failed fill: %v", err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) || !ran {
		t.Errorf("read %q, %v; source asked: %v", got, err, ran)
	}
	if g.Joined() != 0 {
		t.Error("the request joined the failed fill")
	}
}

func TestEvictRemovesLeastRecentlyUsedAndSparesProtected(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	defer d.Close()
	write := func(key string, n int, age time.Duration) {
		if err := d.WriteFile(key, func(w io.Writer) error { _, err := w.Write(bytes.Repeat([]byte("x"), n)); return err }); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		os.Chtimes(filepath.Join(d.Dir(), key), at, at)
	}
	write(TarballKey("sha512", "aaaa"), 1000, 3*time.Hour) // oldest, but published locally
	write(TarballKey("sha512", "bbbb"), 1000, 2*time.Hour)
	write(SnapshotKey("npmjs", "old"), 1000, time.Hour)
	write(TarballKey("sha512", "cccc"), 1000, time.Minute)
	write(LocalKey("npm", "mine"), 1000, 5*time.Hour)
	protected := func(key string) bool { return key == TarballKey("sha512", "aaaa") }
	st, err := d.Evict(2500, 2000, protected)
	if err != nil {
		t.Fatal(err)
	}
	if st.Removed != 2 {
		t.Errorf("removed %d files, want 2: %+v", st.Removed, st)
	}
	for key, want := range map[string]bool{
		TarballKey("sha512", "aaaa"): true, TarballKey("sha512", "bbbb"): false,
		SnapshotKey("npmjs", "old"): false, TarballKey("sha512", "cccc"): true, LocalKey("npm", "mine"): true,
	} {
		if _, err := d.Stat(t.Context(), key); (err == nil) != want {
			t.Errorf("%s present=%v, want %v", key, err == nil, want)
		}
	}
	if st, _ := d.Evict(1<<30, 1<<29, protected); st.Removed != 0 {
		t.Error("evicted under the cap")
	}
}

func TestSecondOpenDoesNotSweepTheFirstOnesFiles(t *testing.T) {
	dir := t.TempDir()
	first, err := OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	p, err := first.Create(TarballKey("sha512", "abcd"))
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("partial"))
	second, err := OpenDisk(dir) // npmgate explain beside a running server
	if err != nil {
		t.Fatal(err)
	}
	if !second.LockedByOther() || first.LockedByOther() {
		t.Errorf("LockedByOther: first %v second %v", first.LockedByOther(), second.LockedByOther())
	}
	second.Close()
	if err := p.Commit(); err != nil {
		t.Fatalf("the second open swept the first one's download: %v", err)
	}
}

func TestOpenBlobOnlyOpensTarballKeys(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	defer d.Close()
	hex := strings.Repeat("ab", 64)
	key := TarballKey("sha512", hex)
	d.WriteFile(key, func(w io.Writer) error { _, err := w.Write([]byte("tgz")); return err })
	if f, size, err := d.OpenBlob(key); err != nil || size != 3 {
		t.Fatalf("OpenBlob(%s) = %v, %d", key, err, size)
	} else {
		f.Close()
	}
	for _, bad := range []string{"tarballs/sha512/ab/../../../etc/passwd", "tarballs/md5/ab/" + hex + ".tgz",
		"tarballs/sha512/cd/" + hex + ".tgz", "tarballs/sha512/ab/AB" + hex + ".tgz", "snapshots/x.json", "../x"} {
		if blobKeyShape(bad) {
			t.Errorf("%q passed as a tarball key", bad)
		}
		if f, _, err := d.OpenBlob(bad); err == nil {
			f.Close()
			t.Errorf("OpenBlob(%q) opened something", bad)
		}
	}
}

// TestParseSnapshotKey: every snapshot key reads back to the connector and
// name it was made from; other keys are not snapshots.
func TestParseSnapshotKey(t *testing.T) {
	for _, tt := range []struct{ conn, name string }{
		{"npmjs", "lodash"}, {"npmjs", "JSONStream"}, {"up", "@types/node"},
		{"a.b-c", "@Scope/Name.js"}, {"npmjs", "we!rd~(name)"}, {"npmjs", "x%2f"},
	} {
		conn, name, ok := ParseSnapshotKey(SnapshotKey(tt.conn, tt.name))
		if !ok || conn != tt.conn || name != tt.name {
			t.Errorf("ParseSnapshotKey(SnapshotKey(%q, %q)) = %q, %q, %v", tt.conn, tt.name, conn, name, ok)
		}
	}
	for _, key := range []string{"tarballs/sha512/ab/ab.tgz", "snapshots/npmjs", "snapshots/npmjs/x.txt", "snapshots/npmjs/!X.json", "snapshots/npmjs/%zz.json"} {
		if _, _, ok := ParseSnapshotKey(key); ok {
			t.Errorf("ParseSnapshotKey(%q) accepted a key that is not a snapshot's", key)
		}
	}
}

// TestQuarantine: a quarantined tarball leaves the served store for the
// quarantine area, counts against the cap without being evicted, and is
// gone after ClearQuarantine; other keys are refused.
func TestQuarantine(t *testing.T) {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sum := sha512.Sum512([]byte("evil"))
	key := TarballKey("sha512", hexOf(sum[:]))
	if err := d.Put(context.Background(), key, strings.NewReader("evil"), 4); err != nil {
		t.Fatal(err)
	}
	if moved, err := d.Quarantine(key); !moved || err != nil {
		t.Fatalf("Quarantine: %v %v", moved, err)
	}
	if _, err := d.Stat(context.Background(), key); !errors.Is(err, ErrNotFound) {
		t.Errorf("the tarball is still served from the store: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(d.Dir(), QuarantineKey(key))); err != nil || string(b) != "evil" {
		t.Errorf("quarantined file: %q %v", b, err)
	}
	if moved, err := d.Quarantine(key); moved || err != nil {
		t.Errorf("a second Quarantine: %v %v, want nothing to move and no error", moved, err)
	}
	if _, err := d.Quarantine("local/f/x.json"); err == nil {
		t.Error("Quarantine moved a key that is not a tarball's")
	}
	st, err := d.Evict(1, 0, nil)
	if err != nil || st.Quarantined != 1 || st.QuarantinedBytes != 4 || st.Removed != 0 {
		t.Errorf("Evict: %+v %v, want the quarantined file counted and kept", st, err)
	}
	if q, err := d.ClearQuarantine(); err != nil || q.Files != 1 || q.Bytes != 4 {
		t.Errorf("ClearQuarantine: %+v %v", q, err)
	}
	if _, err := os.Stat(filepath.Join(d.Dir(), QuarantineKey(key))); !os.IsNotExist(err) {
		t.Errorf("after ClearQuarantine: %v", err)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
