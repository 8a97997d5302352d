package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingStore counts a Store's Gets and Puts.
type countingStore struct {
	Store
	gets, puts atomic.Int32
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, r, size)
}

func readBlob(t *testing.T, r io.ReadCloser, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type tiers struct {
	disk   *Disk
	bucket *countingStore
	local  *Local
	tiered *Tiered
	upload chan error
}

func newTiers(t *testing.T) *tiers {
	t.Helper()
	disk, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bdisk, err := OpenDisk(t.TempDir()) // a disk is a Store: the bucket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close(); bdisk.Close() })
	tr := &tiers{disk: disk, bucket: &countingStore{Store: bdisk}, upload: make(chan error, 8)}
	tr.local = NewLocal(disk, NewFills(disk, time.Minute))
	tr.tiered = NewTiered(tr.local, tr.bucket, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tr.tiered.Uploaded = func(err error) { tr.upload <- err }
	return tr
}

func source(data []byte, calls *atomic.Int32) Source {
	return func(context.Context) (io.ReadCloser, int64, error) {
		calls.Add(1)
		return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
	}
}

func TestLocalBlobs(t *testing.T) {
	tr := newTiers(t)
	ctx := context.Background()
	data := []byte("a tarball")
	key := TarballKey("sha512", "aa")
	if _, _, err := tr.local.Open(ctx, key, Fill{Want: expect(data)}); !errors.Is(err, ErrMissing) {
		t.Fatalf("a published tarball nobody stored: %v, want ErrMissing", err)
	}
	var calls atomic.Int32
	fill := Fill{Want: expect(data), Upstream: source(data, &calls)}
	r, _, err := tr.local.Open(ctx, key, fill)
	if got := readBlob(t, r, err); !bytes.Equal(got, data) {
		t.Fatalf("filled %q", got)
	}
	r, _, err = tr.local.Open(ctx, key, fill)
	if _, isFile := r.(interface{ Fd() uintptr }); !isFile || calls.Load() != 1 {
		t.Errorf("second open: a file %v, %d upstream calls; want the stored file and 1", isFile, calls.Load())
	}
	readBlob(t, r, err)
	pub := []byte("published")
	pkey := TarballKey("sha512", "bb")
	if err := tr.local.Put(ctx, pkey, pub); err != nil {
		t.Fatal(err)
	}
	r, _, err = tr.local.Open(ctx, pkey, Fill{Want: expect(pub)})
	if got := readBlob(t, r, err); !bytes.Equal(got, pub) {
		t.Errorf("published %q", got)
	}
}

func TestTieredBlobs(t *testing.T) {
	ctx := context.Background()
	data := []byte("tarball bytes")
	key := TarballKey("sha512", "cc")

	t.Run("a miss goes upstream once and is uploaded once, verified", func(t *testing.T) {
		tr := newTiers(t)
		var calls atomic.Int32
		r, _, err := tr.tiered.Open(ctx, key, Fill{Want: expect(data), Upstream: source(data, &calls)})
		if got := readBlob(t, r, err); !bytes.Equal(got, data) {
			t.Fatalf("got %q", got)
		}
		if err := <-tr.upload; err != nil {
			t.Fatal(err)
		}
		if tr.bucket.gets.Load() != 1 || calls.Load() != 1 || tr.bucket.puts.Load() != 1 {
			t.Errorf("bucket gets %d, upstream %d, uploads %d; want 1, 1, 1", tr.bucket.gets.Load(), calls.Load(), tr.bucket.puts.Load())
		}
		got, _, err := tr.bucket.Store.Get(ctx, key)
		if b := readBlob(t, got, err); !bytes.Equal(b, data) {
			t.Errorf("bucket holds %q", b)
		}
	})

	t.Run("what the bucket has is not asked of upstream", func(t *testing.T) {
		tr := newTiers(t)
		tr.bucket.Store.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
		var calls atomic.Int32
		r, _, err := tr.tiered.Open(ctx, key, Fill{Want: expect(data), Upstream: source(data, &calls)})
		if got := readBlob(t, r, err); !bytes.Equal(got, data) || calls.Load() != 0 {
			t.Errorf("got %q with %d upstream calls, want the bucket's bytes and none", got, calls.Load())
		}
		if _, _, err := tr.disk.OpenBlob(key); err != nil {
			t.Errorf("not on disk after a fill from the bucket: %v", err)
		}
		if tr.bucket.puts.Load() != 0 {
			t.Errorf("%d uploads of bytes that came from the bucket", tr.bucket.puts.Load())
		}
	})

	t.Run("bytes that do not verify are stored nowhere", func(t *testing.T) {
		tr := newTiers(t)
		var calls atomic.Int32
		r, _, err := tr.tiered.Open(ctx, key, Fill{Want: expect([]byte("other")), Upstream: source(data, &calls)})
		if err == nil {
			_, err = io.ReadAll(r)
			r.Close()
		}
		if !errors.Is(err, ErrIntegrity) {
			t.Fatalf("err %v, want ErrIntegrity", err)
		}
		if _, _, err := tr.disk.OpenBlob(key); err == nil {
			t.Error("stored on disk")
		}
		if tr.bucket.puts.Load() != 0 {
			t.Error("uploaded")
		}
	})

	t.Run("a prefetch's bytes skip the bucket and are shared", func(t *testing.T) {
		tr := newTiers(t)
		var calls atomic.Int32
		r, _, err := tr.tiered.Open(ctx, key, Fill{Want: expect(data), Upstream: source(data, &calls), Fresh: true})
		readBlob(t, r, err)
		if err := <-tr.upload; err != nil {
			t.Fatal(err)
		}
		if tr.bucket.gets.Load() != 0 || tr.bucket.puts.Load() != 1 {
			t.Errorf("bucket gets %d, uploads %d; want 0 and 1", tr.bucket.gets.Load(), tr.bucket.puts.Load())
		}
	})

	t.Run("a published tarball goes to the bucket, then the disk", func(t *testing.T) {
		tr := newTiers(t)
		if err := tr.tiered.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
		for name, st := range map[string]Store{"bucket": tr.bucket.Store, "disk": tr.disk} {
			if _, err := st.Stat(ctx, key); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		// Another replica: its own disk, the same bucket.
		other := newTiers(t)
		other.tiered.bucket = tr.bucket
		r, _, err := other.tiered.Open(ctx, key, Fill{Want: expect(data)})
		if got := readBlob(t, r, err); !bytes.Equal(got, data) {
			t.Errorf("another replica read %q", got)
		}
	})
}

// blockingStore holds every Put until release is closed.
type blockingStore struct {
	Store
	release chan struct{}
	landed  sync.WaitGroup
}

func (b *blockingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	<-b.release
	defer b.landed.Done()
	return b.Store.Put(ctx, key, r, size)
}

func TestAsyncStore(t *testing.T) {
	ctx := context.Background()
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	below := &blockingStore{Store: d, release: make(chan struct{})}
	a := NewAsyncStore(below, 1<<20, slog.New(slog.NewTextHandler(io.Discard, nil)))
	key := SnapshotKey("up", "pkg")
	body := []byte("a snapshot")
	below.landed.Add(1)
	if err := WriteSnapshot(ctx, a, key, SnapshotMeta{ETag: `"1"`}, body); err != nil {
		t.Fatal(err) // returned although the store below has not written
	}
	if _, err := d.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("written below before release: %v", err)
	}
	got, meta, _, err := ReadSnapshot(ctx, a, key)
	if err != nil || !bytes.Equal(got, body) || meta.ETag != `"1"` {
		t.Fatalf("a read of a write in flight: %q %+v %v", got, meta, err)
	}
	if _, err := a.Stat(ctx, key); err != nil {
		t.Errorf("stat of a write in flight: %v", err)
	}
	close(below.release)
	a.Flush()
	below.landed.Wait()
	if got, _, _, err := ReadSnapshot(ctx, d, key); err != nil || !bytes.Equal(got, body) {
		t.Errorf("below after Flush: %q %v", got, err)
	}

	// Past its bound, a write is synchronous.
	small := NewAsyncStore(d, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := small.Put(ctx, "snapshots/x", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, "snapshots/x"); err != nil {
		t.Errorf("a write past the bound did not land at once: %v", err)
	}
}

// TestTieredConcurrentMisses: concurrent Opens of one missing tarball
// cost one bucket look, one download and one upload, and every reader,
// joining the download as it runs, gets the whole tarball.
func TestTieredConcurrentMisses(t *testing.T) {
	ctx := context.Background()
	tr := newTiers(t)
	data := bytes.Repeat([]byte("shared tarball "), 40000)
	src := &countingSource{data: data, gate: make(chan struct{})}
	key := TarballKey("sha512", "ee")
	readers := make([]io.ReadCloser, 8)
	for i := range readers {
		r, size, err := tr.tiered.Open(ctx, key, Fill{Want: expect(data), Upstream: src.open})
		if err != nil || size != int64(len(data)) {
			t.Fatalf("Open %d: %v, size %d", i, err, size)
		}
		readers[i] = r
	}
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Go(func() {
			defer r.Close()
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, data) {
				t.Errorf("a reader got %d bytes, %v", len(got), err)
			}
		})
	}
	close(src.gate) // the second half of the body comes once all have joined
	wg.Wait()
	if err := <-tr.upload; err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	calls := src.calls
	src.mu.Unlock()
	if tr.bucket.gets.Load() != 1 || calls != 1 || tr.bucket.puts.Load() != 1 {
		t.Errorf("bucket gets %d, downloads %d, uploads %d; want 1, 1, 1", tr.bucket.gets.Load(), calls, tr.bucket.puts.Load())
	}
	select {
	case err := <-tr.upload:
		t.Errorf("a second upload (%v)", err)
	default:
	}
}

// warmLocal stores a tarball on a Local's disk.
func warmLocal(tb testing.TB) (*Local, *Disk, string, Fill) {
	d, err := OpenDisk(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	data := bytes.Repeat([]byte("warm"), 4096)
	key := TarballKey("sha512", strings.Repeat("ab", 64))
	if err := d.Put(context.Background(), key, bytes.NewReader(data), -1); err != nil {
		tb.Fatal(err)
	}
	upstream := func(context.Context) (io.ReadCloser, int64, error) {
		return nil, 0, errors.New("a warm open asked upstream")
	}
	return NewLocal(d, NewFills(d, time.Minute)), d, key, Fill{Want: expect(data), Upstream: upstream}
}

// BenchmarkDiskOpenBlob is the warm tarball path before Blobs: the stored
// file opened by its key.
func BenchmarkDiskOpenBlob(b *testing.B) {
	_, d, key, _ := warmLocal(b)
	b.ReportAllocs()
	for b.Loop() {
		f, _, err := d.OpenBlob(key)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkLocalOpenWarm is the same through Blobs.
func BenchmarkLocalOpenWarm(b *testing.B) {
	l, _, key, fill := warmLocal(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r, _, err := l.Open(ctx, key, fill)
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// TestLocalOpenWarmAllocations: a warm Open through Blobs allocates no
// more than the disk open it wraps.
func TestLocalOpenWarmAllocations(t *testing.T) {
	l, d, key, fill := warmLocal(t)
	ctx := context.Background()
	disk := testing.AllocsPerRun(200, func() {
		f, _, _ := d.OpenBlob(key)
		f.Close()
	})
	blobs := testing.AllocsPerRun(200, func() {
		r, _, _ := l.Open(ctx, key, fill)
		r.Close()
	})
	if blobs > disk {
		t.Errorf("Local.Open allocates %v times, Disk.OpenBlob %v", blobs, disk)
	}
}

// BenchmarkTieredOpenWarm is a warm open on a replica: the disk has it.
func BenchmarkTieredOpenWarm(b *testing.B) {
	l, d, key, fill := warmLocal(b)
	tiered := NewTiered(l, d, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r, _, err := tiered.Open(ctx, key, fill)
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// TestTieredOpenWarmAllocations: on a replica too, a tarball on disk is
// opened with no more allocations than the disk open (the bucket's
// source and the upload hook are built only for a miss).
func TestTieredOpenWarmAllocations(t *testing.T) {
	l, d, key, fill := warmLocal(t)
	tiered := NewTiered(l, d, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	disk := testing.AllocsPerRun(200, func() {
		f, _, _ := d.OpenBlob(key)
		f.Close()
	})
	blobs := testing.AllocsPerRun(200, func() {
		r, _, _ := tiered.Open(ctx, key, fill)
		r.Close()
	})
	if blobs > disk {
		t.Errorf("Tiered.Open allocates %v times, Disk.OpenBlob %v", blobs, disk)
	}
}

// gatedStore holds every Put until gate is closed, saying on entered
// that one began.
type gatedStore struct {
	Store
	entered, gate chan struct{}
}

func (g *gatedStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	g.entered <- struct{}{}
	<-g.gate
	return g.Store.Put(ctx, key, r, size)
}

// TestTieredFlushWaitsForUploads: Flush returns once the background
// uploads landed, or when its context ends first.
func TestTieredFlushWaitsForUploads(t *testing.T) {
	ctx := context.Background()
	tr := newTiers(t)
	gated := &gatedStore{Store: tr.bucket, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	tiered := NewTiered(tr.local, gated, slog.New(slog.DiscardHandler))
	data := []byte("shared on shutdown")
	key := TarballKey("sha512", "ff")
	var calls atomic.Int32
	r, _, err := tiered.Open(ctx, key, Fill{Want: expect(data), Upstream: source(data, &calls)})
	readBlob(t, r, err)
	<-gated.entered // the upload is under way
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := tiered.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with the upload held: %v, want the context's end", err)
	}
	close(gated.gate)
	if err := tiered.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, _, err := tr.bucket.Store.Get(ctx, key)
	if b := readBlob(t, got, err); !bytes.Equal(b, data) {
		t.Errorf("after Flush the bucket holds %q", b)
	}
}
