package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Tiered is this replica's disk in front of the bucket replicas share
// (distribution's proxyBlobStore{local, remote}): a miss is read from the
// bucket first, then from the Source, and either way its bytes are
// verified on their way to the disk like any others. A tarball verified
// from upstream is uploaded to the bucket once, in the background, so
// that other replicas need not download it again; an upload that fails
// or finds no room is logged and counted, and never fails the client.
type Tiered struct {
	local   *Local
	bucket  Store
	log     *slog.Logger
	timeout time.Duration
	queue   chan string // keys waiting for an uploader

	mu      sync.Mutex
	idle    *sync.Cond // signalled when waiting reaches 0
	waiting int        // uploads queued or running
	closed  bool
	workers sync.WaitGroup

	uploaded, failed, dropped atomic.Uint64
}

// TieredOptions tunes a Tiered store's uploads.
type TieredOptions struct {
	// Uploaders is how many uploads run at once; 0 means 2.
	Uploaders int
	// Queue is how many verified tarballs may wait for an uploader; 0
	// means 256. One more is dropped (logged and counted): its bytes
	// stay on this disk, and another replica downloads them itself, as
	// when an upload fails.
	Queue int
	// UploadTimeout bounds one upload; 0 means 10 minutes.
	UploadTimeout time.Duration
	// Log receives failed reads of the bucket and failed or dropped
	// uploads; nil discards them.
	Log *slog.Logger
}

// UploadStats counts a Tiered store's uploads to the bucket.
type UploadStats struct {
	Uploaded uint64 // stored in the bucket
	Failed   uint64 // the upload failed (or the file had vanished)
	Dropped  uint64 // the queue was full, or the store closed
}

// NewTiered puts local in front of bucket and starts its uploaders; Close
// stops them.
func NewTiered(local *Local, bucket Store, opt TieredOptions) *Tiered {
	if opt.Uploaders <= 0 {
		opt.Uploaders = 2
	}
	if opt.Queue <= 0 {
		opt.Queue = 256
	}
	if opt.UploadTimeout <= 0 {
		opt.UploadTimeout = 10 * time.Minute
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	t := &Tiered{local: local, bucket: bucket, log: opt.Log, timeout: opt.UploadTimeout, queue: make(chan string, opt.Queue)}
	t.idle = sync.NewCond(&t.mu)
	for range opt.Uploaders {
		t.workers.Go(t.uploader)
	}
	return t
}

// Open implements Blobs: the disk, else the bucket, else miss.Source.
func (t *Tiered) Open(ctx context.Context, key string, miss Miss) (Blob, error) {
	if b, ok := t.local.fills.stored(key); ok {
		return b, nil
	}
	share := func(o Origin, err error) {
		if err == nil && o == FromUpstream {
			t.enqueue(key)
		}
	}
	return t.local.fills.join(ctx, key, miss.Expect, t.source(key, miss), doneFunc(miss.OnDone, share))
}

// source reads key from the bucket, and only when it is not there from
// miss.Source.
func (t *Tiered) source(key string, miss Miss) originSource {
	if miss.Upstream && miss.Source != nil {
		return upstream(miss.Source)
	}
	return func(ctx context.Context) (io.ReadCloser, int64, Origin, error) {
		body, info, err := t.bucket.Get(ctx, key)
		if err == nil {
			return body, info.Size, FromBucket, nil
		}
		if !errors.Is(err, ErrNotFound) {
			t.log.Warn("shared store: reading a tarball failed", "key", key, "err", err)
		}
		if miss.Source == nil {
			return nil, 0, FromBucket, errLocalMissing(err)
		}
		body, size, err := miss.Source(ctx)
		return body, size, FromUpstream, err
	}
}

// Put implements Blobs: the bucket first, then the disk.
func (t *Tiered) Put(ctx context.Context, key string, data []byte) error {
	if err := t.bucket.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("storing the tarball in the shared store: %w", err)
	}
	return t.local.Put(ctx, key, data)
}

// Stat implements Blobs: the disk, else the bucket.
func (t *Tiered) Stat(ctx context.Context, key string) (Info, error) {
	info, err := t.local.Stat(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return t.bucket.Stat(ctx, key)
	}
	return info, err
}

// Uploads counts the uploads so far, for metrics.
func (t *Tiered) Uploads() UploadStats {
	return UploadStats{Uploaded: t.uploaded.Load(), Failed: t.failed.Load(), Dropped: t.dropped.Load()}
}

// Flush waits until no upload is queued or running.
func (t *Tiered) Flush() {
	t.mu.Lock()
	for t.waiting > 0 {
		t.idle.Wait()
	}
	t.mu.Unlock()
}

// Close implements Blobs: the queued uploads run, then the uploaders
// stop. A download verified after Close is not uploaded (it is counted
// as dropped).
func (t *Tiered) Close() error {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.queue)
	}
	t.mu.Unlock()
	t.workers.Wait()
	return nil
}

// enqueue queues key's upload, or drops it when the queue is full. The
// send is under mu so that Close cannot close the queue meanwhile; it
// never blocks.
func (t *Tiered) enqueue(key string) {
	t.mu.Lock()
	queued := false
	if !t.closed {
		select {
		case t.queue <- key:
			t.waiting++
			queued = true
		default:
		}
	}
	t.mu.Unlock()
	if !queued {
		t.dropped.Add(1)
		t.log.Warn("shared store: too many uploads waiting; other replicas will fetch this tarball themselves", "key", key)
	}
}

func (t *Tiered) uploader() {
	for key := range t.queue {
		t.upload(key)
		t.mu.Lock()
		if t.waiting--; t.waiting == 0 {
			t.idle.Broadcast()
		}
		t.mu.Unlock()
	}
}

// upload copies a verified tarball from this replica's disk to the
// bucket. The upload is whole or absent (S3 semantics); a replica killed
// during it leaves nothing.
func (t *Tiered) upload(key string) {
	f, size, err := t.local.disk.OpenBlob(key)
	if err != nil {
		t.failed.Add(1)
		t.log.Warn("shared store: stored tarball vanished before upload", "key", key, "err", err)
		return
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	if err := t.bucket.Put(ctx, key, f, size); err != nil {
		t.failed.Add(1)
		t.log.Error("shared store: uploading a tarball failed; other replicas will fetch it themselves", "key", key, "err", err)
		return
	}
	t.uploaded.Add(1)
}
