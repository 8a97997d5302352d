package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// holdingStore holds the first Put until release is closed (telling
// entered when it starts); later Puts go straight through.
type holdingStore struct {
	Store
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newHoldingStore(t *testing.T) (*holdingStore, *Disk) {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &holdingStore{Store: d, entered: make(chan struct{}), release: make(chan struct{})}, d
}

func (h *holdingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.entered)
		<-h.release
	}
	return h.Store.Put(ctx, key, r, size)
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func contents(t *testing.T, st Store, key string) string {
	t.Helper()
	r, _, err := st.Get(context.Background(), key)
	if errors.Is(err, ErrNotFound) {
		return "<none>"
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// releaseSoon lets the held write land once op has returned, or after a
// moment if op waits for it (as it should when it must come after the
// write). The moment only gives code that does not wait the time to do
// its harm first; nothing is measured.
func releaseSoon(h *holdingStore, op func()) {
	done := make(chan struct{})
	go func() {
		op()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(100 * time.Millisecond):
	}
	close(h.release)
	<-done
}

// TestAsyncStoreSynchronousPutSupersedesOneInFlight: a Put past the bound
// writes synchronously; once it has returned, readers see its bytes, not
// those of an older write still in flight, and the older write never
// lands over it.
func TestAsyncStoreSynchronousPutSupersedesOneInFlight(t *testing.T) {
	ctx := context.Background()
	below, d := newHoldingStore(t)
	a := NewAsyncStore(below, 10, quietLog())
	const key = "snapshots/up/pkg.json"
	if err := a.Put(ctx, key, bytes.NewReader([]byte("old")), 3); err != nil {
		t.Fatal(err)
	}
	<-below.entered // the old write is on its way, held
	newer := []byte("a newer document, past the bound")
	releaseSoon(below, func() {
		if err := a.Put(ctx, key, bytes.NewReader(newer), int64(len(newer))); err != nil {
			t.Error(err)
		}
		if got := contents(t, a, key); got != string(newer) {
			t.Errorf("right after the Put, a read gets %q", got)
		}
	})
	a.Flush()
	if got := contents(t, d, key); got != string(newer) {
		t.Errorf("after Flush the store below holds %q, want the newer document", got)
	}
	if got := contents(t, a, key); got != string(newer) {
		t.Errorf("after Flush a read gets %q", got)
	}
}

// TestAsyncStoreRemoveOutlastsAWriteInFlight: once Remove has returned,
// a write of the key that was in flight does not bring the object back.
func TestAsyncStoreRemoveOutlastsAWriteInFlight(t *testing.T) {
	ctx := context.Background()
	below, d := newHoldingStore(t)
	a := NewAsyncStore(below, 1<<20, quietLog())
	const key = "snapshots/up/gone.json"
	if err := a.Put(ctx, key, bytes.NewReader([]byte("doc")), 3); err != nil {
		t.Fatal(err)
	}
	<-below.entered
	releaseSoon(below, func() {
		if err := a.Remove(ctx, key); err != nil {
			t.Error(err)
		}
	})
	a.Flush()
	if got := contents(t, d, key); got != "<none>" {
		t.Errorf("after Remove the store below holds %q", got)
	}
	if _, err := a.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat after Remove: %v", err)
	}
}

// TestAsyncStoreTouchWhileReading: Touch of a write in flight races no
// reader (run with -race).
func TestAsyncStoreTouchWhileReading(t *testing.T) {
	ctx := context.Background()
	below, _ := newHoldingStore(t)
	a := NewAsyncStore(below, 1<<20, quietLog())
	const key = "snapshots/up/touched.json"
	if err := a.Put(ctx, key, bytes.NewReader([]byte("doc")), 3); err != nil {
		t.Fatal(err)
	}
	<-below.entered
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if err := a.Touch(ctx, key); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range 100 {
				if _, err := a.Stat(ctx, key); err != nil {
					t.Error(err)
					return
				}
				if got := contents(t, a, key); got != "doc" {
					t.Errorf("read %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(below.release)
	a.Flush()
}

// TestAsyncStoreFlushWhilePutting: Flush may run while Puts come in (at
// shutdown, requests still finishing); it returns once what it waited
// for has landed (run with -race).
func TestAsyncStoreFlushWhilePutting(t *testing.T) {
	ctx := context.Background()
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a := NewAsyncStore(d, 1<<20, quietLog())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			key := SnapshotKey("up", string(rune('a'+i%26)))
			if err := a.Put(ctx, key, bytes.NewReader([]byte("doc")), 3); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for range 200 {
			a.Flush()
		}
	})
	wg.Wait()
	a.Flush()
	if got := contents(t, d, SnapshotKey("up", "a")); got != "doc" {
		t.Errorf("after Flush: %q", got)
	}
}

// TestAsyncStoreModTimeStaysPut: an object's time does not move when its
// write lands: a snapshot read before and after says it was fetched at
// the same moment (the Store suite's Snapshot test, made certain).
func TestAsyncStoreModTimeStaysPut(t *testing.T) {
	ctx := context.Background()
	below, _ := newHoldingStore(t)
	a := NewAsyncStore(below, 1<<20, quietLog())
	const key = "snapshots/up/timed.json"
	if err := a.Put(ctx, key, bytes.NewReader([]byte("doc")), 3); err != nil {
		t.Fatal(err)
	}
	<-below.entered
	before, err := a.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the write lands later than it was made
	close(below.release)
	a.Flush()
	after, err := a.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := a.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var walked time.Time
	a.Walk(ctx, "snapshots/", func(info Info) error { walked = info.ModTime; return nil })
	if !after.ModTime.Equal(before.ModTime) || !got.ModTime.Equal(before.ModTime) || !walked.Equal(before.ModTime) {
		t.Errorf("time before the write landed %v; after: Stat %v, Get %v, Walk %v", before.ModTime, after.ModTime, got.ModTime, walked)
	}
	// Touched, it is fresh again: the time moves on.
	time.Sleep(10 * time.Millisecond)
	if err := a.Touch(ctx, key); err != nil {
		t.Fatal(err)
	}
	if touched, _ := a.Stat(ctx, key); !touched.ModTime.After(before.ModTime) {
		t.Errorf("after Touch: %v, before %v", touched.ModTime, before.ModTime)
	}
}
