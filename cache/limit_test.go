package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// endless is a hostile upstream body: zeros without end, counting what
// was read of it.
type endless struct{ read int64 }

func (e *endless) Read(p []byte) (int, error) {
	clear(p)
	e.read += int64(len(p))
	return len(p), nil
}

func (e *endless) Close() error { return nil }

// TestFillLimitsUpstreamBodies: a body over the limit, or over the size
// it announced, fails the readers and leaves nothing stored or in tmp/,
// having read at most a buffer past the limit; one announced over the
// limit is refused before a byte is read.
func TestFillLimitsUpstreamBodies(t *testing.T) {
	good := []byte("a 140-byte package, give or take")
	const max = 1 << 20
	for _, tc := range []struct {
		name     string
		announce int64 // -1: no Content-Length
		wantRead int64 // at most this much read from the body
		body     bool  // whether any reader is returned at all
	}{
		{"over Content-Length", int64(len(good)), int64(len(good)) + 64<<10, true},
		{"over the limit, no Content-Length", -1, max + 64<<10, true},
		{"Content-Length over the limit", 100 << 20, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := OpenDisk(t.TempDir())
			defer d.Close()
			g := NewFills(d, 10e9)
			up := &endless{}
			src := LimitSource(func(context.Context) (io.ReadCloser, int64, error) { return up, tc.announce, nil }, max)
			key := TarballKey("sha512", "00")
			done := make(chan error, 1)
			r, _, err := g.Fetch(t.Context(), key, expect(good), src, func(err error) { done <- err })
			var n int64
			if err == nil {
				if !tc.body {
					t.Error("Fetch returned a reader for a body announced over the limit")
				}
				n, err = io.Copy(io.Discard, r)
				r.Close()
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("read %d bytes, then %v; want ErrTooLarge", n, err)
			}
			if derr := <-done; !errors.Is(derr, ErrTooLarge) {
				t.Errorf("onDone got %v", derr)
			}
			if up.read > tc.wantRead {
				t.Errorf("read %d bytes from upstream, want at most %d", up.read, tc.wantRead)
			}
			if n > max {
				t.Errorf("a reader got %d bytes", n)
			}
			if _, _, err := d.Open(key); !errors.Is(err, ErrNotFound) {
				t.Error("something was stored")
			}
			if entries, _ := os.ReadDir(filepath.Join(d.Dir(), "tmp")); len(entries) != 0 {
				t.Errorf("temporary files left: %v", entries)
			}
		})
	}
}

// TestLimitSourcePassesWhatFits: a body within both bounds reads whole.
func TestLimitSourcePassesWhatFits(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1000)
	for _, announce := range []int64{1000, -1} {
		src := LimitSource(func(context.Context) (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(data)), announce, nil
		}, 1000)
		body, _, err := src(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(body)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("announce %d: read %d bytes, %v", announce, len(got), err)
		}
	}
}
