package cache

import (
	"bytes"
	"io"
	"os"
	"sync"
	"testing"
)

// readAll reads a spilled body through OpenFile and hands the file back.
func readAll(t *testing.T, it *Item, gzip bool) []byte {
	t.Helper()
	f := it.OpenFile(gzip)
	if f == nil {
		t.Fatal("no file")
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSpill(t *testing.T) {
	dir := t.TempDir()
	m, err := NewMemory(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	m.SpillTo(dir, 1024)
	body := bytes.Repeat([]byte("body "), 1000)
	gz := bytes.Repeat([]byte("gzip "), 300)

	tests := []struct {
		name      string
		it        *Item
		wantFiles int
	}{
		{"large, asked", &Item{Body: body, Gzip: gz, Spill: true}, 2},
		{"large body, small gzip", &Item{Body: body, Gzip: []byte("gz"), Spill: true}, 1},
		{"small", &Item{Body: []byte("tiny"), Spill: true}, 0},
		{"large, not asked", &Item{Body: body}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(dirNames(t, dir))
			m.Set(tt.name, tt.it, 0)
			if got := len(dirNames(t, dir)) - before; got != tt.wantFiles {
				t.Fatalf("Set wrote %d files, want %d", got, tt.wantFiles)
			}
			if tt.wantFiles == 0 {
				if f := tt.it.OpenFile(false); f != nil {
					t.Error("OpenFile found a file for an item that has none")
				}
				return
			}
			// Twice: the second read reuses the handle the first closed,
			// and must start from the beginning again.
			for range 2 {
				if got := readAll(t, tt.it, false); !bytes.Equal(got, tt.it.Body) {
					t.Fatalf("file holds %d bytes, body is %d", len(got), len(tt.it.Body))
				}
			}
			if tt.wantFiles == 2 && !bytes.Equal(readAll(t, tt.it, true), tt.it.Gzip) {
				t.Error("gzip file differs from the gzip bytes")
			}
			if tt.wantFiles == 1 && tt.it.OpenFile(true) != nil {
				t.Error("a gzip body below the minimum has a file")
			}
		})
	}

	// Replacing an entry with a copy (as revalidation does): the copy gets
	// files of its own, the old ones go, and a handle opened before still
	// reads the old bytes to the end.
	old, ok := m.Get("large, asked")
	if !ok {
		t.Fatal("entry missing")
	}
	held := old.OpenFile(false)
	cp := *old
	cp.Body = bytes.Repeat([]byte("new! "), 1000)
	m.Set("large, asked", &cp, 0)
	if f := old.OpenFile(false); f != nil {
		t.Error("the replaced entry's file can still be opened")
	}
	if got := readAll(t, &cp, false); !bytes.Equal(got, cp.Body) {
		t.Error("the replacement's file does not hold its body")
	}
	b, err := io.ReadAll(held)
	held.Close()
	if err != nil || !bytes.Equal(b, body) {
		t.Errorf("a handle opened before the replacement read %d bytes, %v", len(b), err)
	}
	if n := len(dirNames(t, dir)); n != 3 {
		t.Errorf("%d files after the replacement, want 3 (2 new + 1 from the second entry)", n)
	}

	// Concurrent readers of one file each see the whole body.
	var wg sync.WaitGroup
	errs := make(chan string, 32)
	for range 32 {
		wg.Go(func() {
			f := cp.OpenFile(false)
			if f == nil {
				errs <- "no file"
				return
			}
			defer f.Close()
			if b, _ := io.ReadAll(f); !bytes.Equal(b, cp.Body) {
				errs <- "short or wrong read"
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	m.Del("large body, small gzip")
	if n := len(dirNames(t, dir)); n != 2 {
		t.Errorf("%d files after Del, want 2", n)
	}
	m.Close()
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("files left after Close: %v", names)
	}
}

// TestSpillDirSwept: files a crashed process left are removed by the next
// process to own the data directory; a second process does not use it.
func TestSpillDirSwept(t *testing.T) {
	data := t.TempDir()
	d, err := OpenDisk(data)
	if err != nil {
		t.Fatal(err)
	}
	dir, owned := d.SpillDir()
	if !owned {
		t.Fatal("the first process does not own the spill directory")
	}
	os.WriteFile(dir+"/r-left-by-a-crash", []byte("x"), 0o600)
	d2, err := OpenDisk(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, owned := d2.SpillDir(); owned {
		t.Error("a second process beside the first owns the spill directory")
	}
	if len(dirNames(t, dir)) != 1 {
		t.Error("a second process swept the first one's files")
	}
	d2.Close()
	d.Close()
	d3, err := OpenDisk(data)
	if err != nil {
		t.Fatal(err)
	}
	defer d3.Close()
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("not swept at start: %v", names)
	}
	os.WriteFile(dir+"/r-x", []byte("x"), 0o600)
	var keys []string
	d3.Walk(t.Context(), "", func(i Info) error { keys = append(keys, i.Key); return nil })
	for _, k := range keys {
		if k == "rendered/r-x" {
			t.Error("Walk visits the spill directory")
		}
	}
}
