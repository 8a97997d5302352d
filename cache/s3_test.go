package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/cache/storetest"
	"github.com/npmgate/npmgate/internal/testservices"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testservices.StopS3()
	os.Exit(code)
}

func s3Config(srv testservices.S3Server) cache.S3Options {
	return cache.S3Options{
		Endpoint:  srv.Endpoint,
		Region:    srv.Region,
		Bucket:    srv.Bucket,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		PathStyle: true,
	}
}

func openS3(t *testing.T, cfg cache.S3Options) *cache.S3 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := cache.OpenS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// rawClient reaches the bucket without the store, to see what it left.
func rawClient(t *testing.T, srv testservices.S3Server) *minio.Client {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Region:       srv.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestS3Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) cache.Store {
		st := openS3(t, s3Config(testservices.S3(t)))
		// Parts of the smallest size S3 takes, so that the suite's large
		// objects go up in several.
		cache.SetS3PartSize(st, 5<<20)
		return st
	})
}

// TestAsyncS3Conformance: the bucket behind an AsyncStore, as replicas
// write snapshots.
func TestAsyncS3Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) cache.Store {
		st := openS3(t, s3Config(testservices.S3(t)))
		cache.SetS3PartSize(st, 5<<20)
		a := cache.NewAsyncStore(st, 64<<20, slog.New(slog.DiscardHandler))
		t.Cleanup(a.Flush)
		return a
	})
}

func TestS3Prefix(t *testing.T) {
	ctx := t.Context()
	srv := testservices.S3(t)
	cfg := s3Config(srv)
	cfg.Prefix = "team/npm"
	st := openS3(t, cfg)
	if err := st.Put(ctx, "tarballs/a", strings.NewReader("abc"), 3); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for o := range rawClient(t, srv).ListObjects(ctx, srv.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		keys = append(keys, o.Key)
	}
	if len(keys) != 1 || keys[0] != "team/npm/tarballs/a" {
		t.Errorf("objects in the bucket: %q, want team/npm/tarballs/a", keys)
	}
	var walked []string
	st.Walk(ctx, "", func(info cache.Info) error {
		walked = append(walked, info.Key)
		return nil
	})
	if len(walked) != 1 || walked[0] != "tarballs/a" {
		t.Errorf("Walk: %q, want tarballs/a", walked)
	}
	// The bucket's root, seen through a store without the prefix.
	cfg.Prefix = ""
	if info, err := openS3(t, cfg).Stat(ctx, "team/npm/tarballs/a"); err != nil || info.Size != 3 {
		t.Errorf("Stat without the prefix: %+v, %v", info, err)
	}
}

func TestOpenS3Errors(t *testing.T) {
	srv := testservices.S3(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	missing := s3Config(srv)
	missing.Bucket = "no-such-bucket"
	_, err := cache.OpenS3(ctx, missing)
	if err == nil || !strings.Contains(err.Error(), `"no-such-bucket"`) || !strings.Contains(err.Error(), srv.Endpoint) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing bucket: %v", err)
	}

	badKey := s3Config(srv)
	badKey.SecretKey = "wrong"
	_, err = cache.OpenS3(ctx, badKey)
	if err == nil || !strings.Contains(err.Error(), srv.Bucket) {
		t.Errorf("wrong secret key: %v", err)
	}

	badEndpoint := s3Config(srv)
	badEndpoint.Endpoint = "ftp://127.0.0.1"
	if _, err := cache.OpenS3(ctx, badEndpoint); err == nil {
		t.Error("an ftp endpoint was accepted")
	}
}

// TestS3FailedPutsLeaveNoUploads checks that a Put that fails in a
// multipart upload, after parts went up, aborts the upload.
func TestS3FailedPutsLeaveNoUploads(t *testing.T) {
	ctx := t.Context()
	srv := testservices.S3(t)
	st := openS3(t, s3Config(srv))
	cache.SetS3PartSize(st, 5<<20)
	errBroken := errors.New("broken")
	const size = 12 << 20
	for _, c := range []struct {
		name string
		size int64
		r    func(cancel context.CancelFunc) io.Reader
	}{
		{"reader error, size known", size, func(context.CancelFunc) io.Reader {
			return io.MultiReader(storetest.Stream(1, 11<<20), iotestErr{errBroken})
		}},
		{"reader error, size unknown", -1, func(context.CancelFunc) io.Reader {
			return io.MultiReader(storetest.Stream(1, 11<<20), iotestErr{errBroken})
		}},
		{"cancelled, size unknown", -1, func(cancel context.CancelFunc) io.Reader {
			return io.MultiReader(storetest.Stream(1, 11<<20), cancelling{cancel}, storetest.Stream(2, 1<<20))
		}},
		{"short, size known", size, func(context.CancelFunc) io.Reader {
			return storetest.Stream(1, size-1)
		}},
	} {
		ctx, cancel := context.WithCancel(ctx)
		key := "tarballs/" + strings.ReplaceAll(c.name, " ", "-")
		if err := st.Put(ctx, key, c.r(cancel), c.size); err == nil {
			t.Errorf("%s: Put succeeded", c.name)
		}
		cancel()
		if _, err := st.Stat(t.Context(), key); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("%s: Stat after the failed Put: %v", c.name, err)
		}
	}
	for u := range rawClient(t, srv).ListIncompleteUploads(ctx, srv.Bucket, "", true) {
		t.Errorf("unfinished upload left: %+v", u)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

// cancelling cancels a context when read, and yields nothing.
type cancelling struct{ cancel context.CancelFunc }

func (c cancelling) Read([]byte) (int, error) { c.cancel(); return 0, io.EOF }

// hidden hides a reader's other methods (WriterTo, Seeker) from the store.
type hidden struct{ r io.Reader }

func (h hidden) Read(p []byte) (int, error) { return h.r.Read(p) }

// TestS3MemoryStaysBounded puts and gets a 64 MiB object and checks that
// the heap grows by far less: the bytes stream through, a part at a time.
func TestS3MemoryStaysBounded(t *testing.T) {
	ctx := t.Context()
	st := openS3(t, s3Config(testservices.S3(t)))
	const size = 64 << 20
	h := sha256.New()
	io.Copy(h, storetest.Stream(7, size))
	want := h.Sum(nil)

	// Collect often, so that the heap in use follows what is live rather
	// than garbage awaiting collection.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	peak := func(fn func()) uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, top := ms.HeapInuse, ms.HeapInuse
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				top = max(top, ms.HeapInuse)
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		})
		fn()
		close(done)
		wg.Wait()
		return top - base
	}
	for _, known := range []bool{true, false} {
		n := int64(size)
		if !known {
			n = -1
		}
		grew := peak(func() {
			if err := st.Put(ctx, "tarballs/big", hidden{storetest.Stream(7, size)}, n); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("Put of 64 MiB, size known %v: heap grew by %d MiB", known, grew>>20)
		if grew > size/2 {
			t.Errorf("Put of 64 MiB, size known %v: heap grew by %d MiB", known, grew>>20)
		}
	}
	var got []byte
	grew := peak(func() {
		r, info, err := st.Get(ctx, "tarballs/big")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		h := sha256.New()
		if n, err := io.Copy(h, r); err != nil || n != size || info.Size != size {
			t.Fatalf("Get: %d bytes (Info size %d), %v", n, info.Size, err)
		}
		got = h.Sum(nil)
	})
	t.Logf("Get of 64 MiB: heap grew by %d MiB", grew>>20)
	if grew > size/8 {
		t.Errorf("Get of 64 MiB: heap grew by %d MiB", grew>>20)
	}
	if !bytes.Equal(got, want) {
		t.Error("Get returned other bytes")
	}
}
