package cache

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeBucket is a Store on a disk of its own that counts its reads and
// writes, and can hold or fail its writes.
type fakeBucket struct {
	*Disk
	mu      sync.Mutex
	gets    int
	puts    int
	entered chan string   // if not nil, told the key of every Put
	gate    chan struct{} // if not nil, a Put waits for it to close
	putErr  error         // if not nil, every Put fails with it
}

func newFakeBucket(t *testing.T) *fakeBucket {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &fakeBucket{Disk: d}
}

func (b *fakeBucket) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	b.mu.Lock()
	b.gets++
	b.mu.Unlock()
	return b.Disk.Get(ctx, key)
}

func (b *fakeBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b.mu.Lock()
	b.puts++
	entered, gate, putErr := b.entered, b.gate, b.putErr
	b.mu.Unlock()
	if entered != nil {
		entered <- key
	}
	if gate != nil {
		<-gate
	}
	if putErr != nil {
		return putErr
	}
	return b.Disk.Put(ctx, key, r, size)
}

func (b *fakeBucket) counts() (gets, puts int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gets, b.puts
}

// blobKey is the content key of data, as the feeds build it.
func blobKey(data []byte) string {
	sum := sha512.Sum512(data)
	return TarballKey("sha512", hex.EncodeToString(sum[:]))
}

func stored(t *testing.T, st Store, key string) []byte {
	t.Helper()
	r, _, err := st.Get(context.Background(), key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
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

func newLocal(t *testing.T) (*Local, *Disk) {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return NewLocal(d, NewFills(d, 10e9)), d
}

// TestBlobsOpen: where a tarball's bytes come from, what is asked of the
// Source and the bucket, and what ends up stored, for each tier.
func TestBlobsOpen(t *testing.T) {
	data := bytes.Repeat([]byte("tarball bytes "), 20000)
	bad := bytes.Repeat([]byte("tampered byte "), 20000)
	tests := []struct {
		name     string
		tiered   bool
		onDisk   []byte // stored on this replica's disk before
		inBucket []byte // stored in the bucket before
		upstream []byte // what the Source sends; nil: no Source (a local package)
		prefetch bool   // Miss.Upstream
		// what the caller sees
		origin  Origin
		errIs   error // of Open, or of reading the body
		errText string
		// what was asked and what is stored after
		sourceCalls, bucketGets int
		storedOnDisk, uploaded  bool
	}{
		{name: "local, stored", onDisk: data, upstream: data, origin: FromDisk, storedOnDisk: true},
		{name: "local, miss", upstream: data, origin: FromUpstream, sourceCalls: 1, storedOnDisk: true},
		{name: "local, integrity failure", upstream: bad, errIs: ErrIntegrity, sourceCalls: 1},
		{name: "local package, stored", onDisk: data, origin: FromDisk, storedOnDisk: true},
		{name: "local package, missing", errIs: ErrNotFound, errText: "stored tarball of a local package is missing"},
		{name: "tiered, stored", tiered: true, onDisk: data, inBucket: data, upstream: data, origin: FromDisk, storedOnDisk: true},
		{name: "tiered, in the bucket", tiered: true, inBucket: data, upstream: data, origin: FromBucket, bucketGets: 1, storedOnDisk: true},
		{name: "tiered, from upstream", tiered: true, upstream: data, origin: FromUpstream, sourceCalls: 1, bucketGets: 1, storedOnDisk: true, uploaded: true},
		{name: "tiered, prefetched", tiered: true, inBucket: data, upstream: data, prefetch: true, origin: FromUpstream, sourceCalls: 1, storedOnDisk: true, uploaded: true},
		{name: "tiered, integrity failure upstream", tiered: true, upstream: bad, errIs: ErrIntegrity, sourceCalls: 1, bucketGets: 1},
		{name: "tiered, integrity failure in the bucket", tiered: true, inBucket: bad, errIs: ErrIntegrity, bucketGets: 1},
		{name: "tiered local package, in the bucket", tiered: true, inBucket: data, origin: FromBucket, bucketGets: 1, storedOnDisk: true},
		{name: "tiered local package, missing", tiered: true, errIs: ErrNotFound, errText: "stored tarball of a local package is missing", bucketGets: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := blobKey(data)
			local, disk := newLocal(t)
			bucket := newFakeBucket(t)
			var blobs Blobs = local
			var tiered *Tiered
			if tt.tiered {
				tiered = NewTiered(local, bucket, TieredOptions{})
				defer tiered.Close()
				blobs = tiered
			}
			if tt.onDisk != nil {
				if err := disk.Put(t.Context(), key, bytes.NewReader(tt.onDisk), -1); err != nil {
					t.Fatal(err)
				}
			}
			if tt.inBucket != nil {
				if err := bucket.Disk.Put(t.Context(), key, bytes.NewReader(tt.inBucket), -1); err != nil {
					t.Fatal(err)
				}
			}
			var calls int
			miss := Miss{Expect: expect(data), Upstream: tt.prefetch}
			if tt.upstream != nil {
				miss.Source = func(context.Context) (io.ReadCloser, int64, error) {
					calls++
					return io.NopCloser(bytes.NewReader(tt.upstream)), int64(len(tt.upstream)), nil
				}
			}
			done := make(chan error, 1)
			miss.OnDone = func(err error) { done <- err }
			b, err := blobs.Open(t.Context(), key, miss)
			var got []byte
			if err == nil {
				got, err = io.ReadAll(b.Body)
				b.Body.Close()
				if b.Origin != FromDisk {
					<-done // the download's verdict, before looking at what it stored
				}
			}
			switch {
			case tt.errIs != nil:
				if !errors.Is(err, tt.errIs) || !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error %v, want %v (%q)", err, tt.errIs, tt.errText)
				}
			case err != nil:
				t.Fatalf("Open: %v", err)
			case !bytes.Equal(got, data):
				t.Errorf("read %d bytes, not the tarball", len(got))
			case b.Origin != tt.origin:
				t.Errorf("origin %v, want %v", b.Origin, tt.origin)
			}
			if tiered != nil {
				tiered.Flush()
			}
			gets, puts := bucket.counts()
			if calls != tt.sourceCalls || gets != tt.bucketGets {
				t.Errorf("Source asked %d times, bucket read %d times; want %d, %d", calls, gets, tt.sourceCalls, tt.bucketGets)
			}
			if onDisk := stored(t, disk, key); tt.storedOnDisk != (onDisk != nil) || onDisk != nil && !bytes.Equal(onDisk, data) {
				t.Errorf("disk holds %d bytes, want the tarball: %v", len(onDisk), tt.storedOnDisk)
			}
			if tt.uploaded != (puts == 1) || puts > 1 {
				t.Errorf("%d uploads, want uploaded: %v", puts, tt.uploaded)
			}
			if tt.uploaded && !bytes.Equal(stored(t, bucket.Disk, key), data) {
				t.Error("the bucket does not hold the tarball")
			}
			if tt.inBucket == nil && !tt.uploaded && stored(t, bucket.Disk, key) != nil {
				t.Error("something was stored in the bucket")
			}
			if entries, _ := os.ReadDir(filepath.Join(disk.Dir(), "tmp")); len(entries) != 0 {
				t.Errorf("temporary files left: %v", entries)
			}
		})
	}
}

// TestTieredUploadsOnce: concurrent misses of one tarball cost one
// download and one upload, and the followers read the right bytes.
func TestTieredUploadsOnce(t *testing.T) {
	local, _ := newLocal(t)
	bucket := newFakeBucket(t)
	tiered := NewTiered(local, bucket, TieredOptions{})
	defer tiered.Close()
	data := bytes.Repeat([]byte("shared tarball "), 40000)
	src := &countingSource{data: data, gate: make(chan struct{})}
	key := blobKey(data)
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for range 8 {
		wg.Go(func() {
			b, err := tiered.Open(t.Context(), key, Miss{Expect: expect(data), Source: src.open})
			started <- struct{}{}
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			defer b.Body.Close()
			if got, err := io.ReadAll(b.Body); err != nil || !bytes.Equal(got, data) || b.Origin != FromUpstream {
				t.Errorf("read %d bytes, %v, from %v", len(got), err, b.Origin)
			}
		})
	}
	for range 8 {
		<-started
	}
	close(src.gate)
	wg.Wait()
	tiered.Flush()
	if _, puts := bucket.counts(); puts != 1 || src.calls != 1 {
		t.Errorf("%d downloads, %d uploads; want 1 and 1", src.calls, puts)
	}
	if st := tiered.Uploads(); st != (UploadStats{Uploaded: 1}) {
		t.Errorf("upload counts %+v", st)
	}
	if !bytes.Equal(stored(t, bucket.Disk, key), data) {
		t.Error("the bucket does not hold the tarball")
	}
}

// TestTieredUploadsAreBounded: one uploader and a queue of one: a third
// verified tarball while the first uploads is dropped and counted, and
// no client waits for an upload or fails because of one.
func TestTieredUploadsAreBounded(t *testing.T) {
	local, _ := newLocal(t)
	bucket := newFakeBucket(t)
	bucket.entered, bucket.gate = make(chan string, 3), make(chan struct{})
	tiered := NewTiered(local, bucket, TieredOptions{Uploaders: 1, Queue: 1})
	defer tiered.Close()
	for i := range 3 {
		data := bytes.Repeat([]byte{byte('a' + i)}, 1000)
		done := make(chan error, 1)
		b, err := tiered.Open(t.Context(), blobKey(data), Miss{Expect: expect(data), OnDone: func(err error) { done <- err }, Source: func(context.Context) (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(b.Body); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		b.Body.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-bucket.entered // the uploader holds the first; the queue is empty
		}
	}
	if st := tiered.Uploads(); st.Dropped != 1 {
		t.Errorf("upload counts %+v, want one dropped", st)
	}
	close(bucket.gate)
	tiered.Flush()
	if st := tiered.Uploads(); st != (UploadStats{Uploaded: 2, Dropped: 1}) {
		t.Errorf("upload counts %+v, want 2 uploaded, 1 dropped", st)
	}
}

// TestTieredUploadFailureIsCounted: a bucket that refuses the upload
// costs the client nothing; the failure is counted.
func TestTieredUploadFailureIsCounted(t *testing.T) {
	local, disk := newLocal(t)
	bucket := newFakeBucket(t)
	bucket.putErr = errors.New("bucket unreachable")
	tiered := NewTiered(local, bucket, TieredOptions{})
	defer tiered.Close()
	data := []byte("some tarball")
	b, err := tiered.Open(t.Context(), blobKey(data), Miss{Expect: expect(data), Source: func(context.Context) (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(b.Body)
	b.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %q, %v", got, err)
	}
	tiered.Close() // lands the queued upload
	if st := tiered.Uploads(); st != (UploadStats{Failed: 1}) {
		t.Errorf("upload counts %+v, want one failed", st)
	}
	if !bytes.Equal(stored(t, disk, blobKey(data)), data) {
		t.Error("the tarball is not on disk")
	}
}

// TestBlobsPut: a published tarball goes to the bucket first, then to
// disk; a bucket that refuses it fails the publish and leaves the disk
// alone; bytes already on disk are not written again.
func TestBlobsPut(t *testing.T) {
	data := []byte("published tarball")
	tests := []struct {
		name       string
		tiered     bool
		bucketErr  error
		onDisk     bool
		errText    string
		wantDisk   bool
		wantBucket bool
	}{
		{name: "local", wantDisk: true},
		{name: "local, already stored", onDisk: true, wantDisk: true},
		{name: "tiered", tiered: true, wantDisk: true, wantBucket: true},
		{name: "tiered, already on disk", tiered: true, onDisk: true, wantDisk: true, wantBucket: true},
		{name: "tiered, bucket fails", tiered: true, bucketErr: errors.New("access denied"), errText: "storing the tarball in the shared store: access denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := blobKey(data)
			local, disk := newLocal(t)
			bucket := newFakeBucket(t)
			bucket.putErr = tt.bucketErr
			var blobs Blobs = local
			if tt.tiered {
				blobs = NewTiered(local, bucket, TieredOptions{})
				defer blobs.Close()
			}
			var before Info
			if tt.onDisk {
				disk.Put(t.Context(), key, bytes.NewReader(data), -1)
				before, _ = disk.Stat(t.Context(), key)
			}
			err := blobs.Put(t.Context(), key, data)
			if tt.errText != "" {
				if err == nil || err.Error() != tt.errText {
					t.Errorf("Put: %v, want %q", err, tt.errText)
				}
			} else if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if got := stored(t, disk, key); tt.wantDisk != bytes.Equal(got, data) || !tt.wantDisk && got != nil {
				t.Errorf("disk holds %q", got)
			}
			if got := stored(t, bucket.Disk, key); tt.wantBucket != bytes.Equal(got, data) || !tt.wantBucket && got != nil {
				t.Errorf("bucket holds %q", got)
			}
			if tt.onDisk {
				if after, _ := disk.Stat(t.Context(), key); !after.ModTime.Equal(before.ModTime) {
					t.Error("stored bytes were written again")
				}
			}
			if info, err := blobs.Stat(t.Context(), key); tt.wantDisk && (err != nil || info.Size != int64(len(data))) {
				t.Errorf("Stat: %+v, %v", info, err)
			}
		})
	}
}

// TestTieredStatFallsBackToBucket: a tarball on another replica's disk
// only (in the bucket) is stored as far as Stat is concerned.
func TestTieredStatFallsBackToBucket(t *testing.T) {
	local, _ := newLocal(t)
	bucket := newFakeBucket(t)
	tiered := NewTiered(local, bucket, TieredOptions{})
	defer tiered.Close()
	data := []byte("elsewhere")
	key := blobKey(data)
	if _, err := tiered.Stat(t.Context(), key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat of an absent tarball: %v", err)
	}
	bucket.Disk.Put(t.Context(), key, bytes.NewReader(data), -1)
	if info, err := tiered.Stat(t.Context(), key); err != nil || info.Size != int64(len(data)) {
		t.Errorf("Stat of a tarball in the bucket: %+v, %v", info, err)
	}
}

// TestFillFollowersNeedNoTempPath: a client joining a download reads it
// through the descriptor the download hands it, not by opening the
// temporary file's path: with the path gone for the moment a follower
// joins, every follower still reads the whole tarball.
func TestFillFollowersNeedNoTempPath(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	defer d.Close()
	g := NewFills(d, 10e9)
	data := bytes.Repeat([]byte("followed bytes "), 50000)
	src := &countingSource{data: data, gate: make(chan struct{})}
	key := blobKey(data)
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
	if src.calls != 1 || g.Joined() != 8 {
		t.Errorf("%d downloads, %d joined; want 1 and 8", src.calls, g.Joined())
	}
	if !bytes.Equal(stored(t, d, key), data) {
		t.Error("the tarball was not stored")
	}
}

// TestPendingReader: a reader of a file being written reads what is
// written so far, from the start, and goes on after Commit.
func TestPendingReader(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	defer d.Close()
	p, err := d.Create("snapshots/x.json")
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("hello "))
	r, err := p.Reader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p.Write([]byte("world"))
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || string(got) != "hello world" {
		t.Errorf("read %q, %v", got, err)
	}
	if _, err := p.Reader(); err == nil {
		t.Error("Reader after Commit succeeded")
	}
	// A Reader racing Abort (a prefetch released while its fill opens
	// it) either reads the bytes written or fails; it never reads others.
	for range 50 {
		p, err := d.Create("snapshots/y.json")
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte("raced"))
		var wg sync.WaitGroup
		wg.Go(p.Abort)
		wg.Go(func() {
			r, err := p.Reader()
			if err != nil {
				return
			}
			defer r.Close()
			if got, err := io.ReadAll(r); err != nil || string(got) != "raced" {
				t.Errorf("a reader racing Abort read %q, %v", got, err)
			}
		})
		wg.Wait()
	}
}

// warmBlob stores a tarball and returns a Local over its disk and its key.
func warmBlob(b *testing.B) (*Local, *Disk, string, Miss) {
	d, err := OpenDisk(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	data := bytes.Repeat([]byte("warm"), 4096)
	key := blobKey(data)
	if err := d.Put(context.Background(), key, bytes.NewReader(data), -1); err != nil {
		b.Fatal(err)
	}
	src := func(context.Context) (io.ReadCloser, int64, error) {
		return nil, 0, errors.New("a warm open asked upstream")
	}
	return NewLocal(d, NewFills(d, 10e9)), d, key, Miss{Expect: expect(data), Source: src}
}

// BenchmarkDiskOpenBlob is the warm path before Blobs: the stored file.
func BenchmarkDiskOpenBlob(b *testing.B) {
	_, d, key, _ := warmBlob(b)
	b.ReportAllocs()
	for b.Loop() {
		f, _, err := d.OpenBlob(key)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkLocalOpenWarm is the same open through Blobs: it must cost no
// more allocations than BenchmarkDiskOpenBlob.
func BenchmarkLocalOpenWarm(b *testing.B) {
	l, _, key, miss := warmBlob(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		blob, err := l.Open(ctx, key, miss)
		if err != nil || blob.Origin != FromDisk {
			b.Fatal(err)
		}
		blob.Body.Close()
	}
}

// TestLocalOpenWarmAllocations: a warm Open allocates no more than the
// disk open it wraps.
func TestLocalOpenWarmAllocations(t *testing.T) {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	data := []byte("warm tarball")
	key := blobKey(data)
	d.Put(t.Context(), key, bytes.NewReader(data), -1)
	l := NewLocal(d, NewFills(d, 10e9))
	miss := Miss{Expect: expect(data), Source: func(context.Context) (io.ReadCloser, int64, error) { return nil, 0, errors.New("asked upstream") }}
	ctx := context.Background()
	disk := testing.AllocsPerRun(100, func() {
		f, _, _ := d.OpenBlob(key)
		f.Close()
	})
	blobs := testing.AllocsPerRun(100, func() {
		b, _ := l.Open(ctx, key, miss)
		b.Body.Close()
	})
	if blobs > disk {
		t.Errorf("Local.Open allocates %v times, Disk.OpenBlob %v", blobs, disk)
	}
}

// TestBlobsKeepTheBodyLimit: a Source cut by LimitSource fails the
// download through either tier, and nothing is stored anywhere.
func TestBlobsKeepTheBodyLimit(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 5000)
	for _, tiered := range []bool{false, true} {
		local, disk := newLocal(t)
		bucket := newFakeBucket(t)
		var blobs Blobs = local
		if tiered {
			blobs = NewTiered(local, bucket, TieredOptions{})
		}
		for _, announced := range []int64{int64(len(data)), -1} {
			src := LimitSource(func(context.Context) (io.ReadCloser, int64, error) {
				return io.NopCloser(bytes.NewReader(data)), announced, nil
			}, 4000)
			done := make(chan error, 1)
			b, err := blobs.Open(t.Context(), blobKey(data), Miss{Expect: expect(data), Source: src, OnDone: func(err error) { done <- err }})
			if err == nil {
				_, err = io.ReadAll(b.Body)
				b.Body.Close()
			}
			if !errors.Is(err, ErrTooLarge) || !errors.Is(<-done, ErrTooLarge) {
				t.Errorf("tiered %v, size announced %d: %v, want ErrTooLarge", tiered, announced, err)
			}
		}
		blobs.Close()
		if stored(t, disk, blobKey(data)) != nil || stored(t, bucket.Disk, blobKey(data)) != nil {
			t.Errorf("tiered %v: a cut download was stored", tiered)
		}
		if _, puts := bucket.counts(); puts != 0 {
			t.Errorf("tiered %v: %d uploads", tiered, puts)
		}
	}
}
