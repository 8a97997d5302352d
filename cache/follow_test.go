package cache

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestFillFollowersNeedNoTempPath: a client joining a download reads it
// through the download's own descriptor, not by opening the temporary
// file's path: with the path gone at the moment followers join, every
// follower still reads the whole tarball.
func TestFillFollowersNeedNoTempPath(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	defer d.Close()
	g := NewFills(d, 10e9)
	data := bytes.Repeat([]byte("followed bytes "), 50000)
	src := &countingSource{data: data, gate: make(chan struct{})}
	key := TarballKey("sha512", "ff")
	first, _, err := g.Fetch(t.Context(), key, expect(data), src.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The download has its temporary file: move it away while others join.
	tmp := filepath.Join(d.Dir(), "tmp")
	entries, _ := os.ReadDir(tmp)
	if len(entries) != 1 {
		t.Fatalf("temporary files: %v", entries)
	}
	name := filepath.Join(tmp, entries[0].Name())
	if err := os.Rename(name, name+".aside"); err != nil {
		t.Fatal(err)
	}
	readers := []io.ReadCloser{first}
	for range 8 {
		r, _, err := g.Fetch(t.Context(), key, expect(data), src.open, nil)
		if err != nil {
			t.Errorf("a follower could not join: %v", err)
			continue
		}
		readers = append(readers, r)
	}
	if err := os.Rename(name+".aside", name); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Go(func() {
			defer r.Close()
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, data) {
				t.Errorf("a follower read %d bytes, %v", len(got), err)
			}
		})
	}
	close(src.gate)
	wg.Wait()
	src.mu.Lock()
	calls := src.calls
	src.mu.Unlock()
	if calls != 1 || g.Joined() != 8 {
		t.Errorf("%d downloads, %d joined; want 1 and 8", calls, g.Joined())
	}
	r, _, err := d.Open(key)
	if err != nil {
		t.Fatalf("the tarball was not stored: %v", err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, data) {
		t.Error("the stored tarball differs")
	}
}

// TestPendingFollow: a follower reads what is written so far by offset,
// goes on after Commit, and after Commit Follow opens the stored file.
func TestPendingFollow(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	defer d.Close()
	p, err := d.Create("snapshots/x.json")
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("hello "))
	r, err := p.Follow()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p.Write([]byte("world"))
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, _ := r.ReadAt(buf, 0); string(buf[:n]) != "hello world" {
		t.Errorf("a follower read %q", buf[:n])
	}
	stored, err := p.Follow()
	if err != nil {
		t.Fatal(err)
	}
	defer stored.Close()
	if n, _ := stored.ReadAt(buf, 6); string(buf[:n]) != "world" {
		t.Errorf("after Commit Follow read %q", buf[:n])
	}
	q, _ := d.Create("snapshots/y.json")
	q.Abort()
	if _, err := q.Follow(); err == nil {
		t.Error("Follow of an aborted file succeeded")
	}
}
