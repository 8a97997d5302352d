package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/sync/semaphore"
)

// Blobs keeps tarballs by content key (TarballKey): the one interface the
// feeds use for them. Local is this machine's disk with its fills; Tiered
// puts the disk in front of a bucket replicas share. Nothing above this
// interface knows which it has.
type Blobs interface {
	// Open returns a reader of key's bytes and their size (-1 when not
	// known yet): the stored file when there is one, else the bytes of a
	// fill (see Fill), verified before they are stored. Concurrent Opens
	// of one key share one fill.
	Open(ctx context.Context, key string, fill Fill) (io.ReadCloser, int64, error)
	// Put stores data, already verified, under key (a published tarball):
	// when Put returns, every replica can Open it.
	Put(ctx context.Context, key string, data []byte) error
}

// Fill says how to get a tarball that is not stored yet.
type Fill struct {
	// Want is what the bytes must hash to, wherever they come from.
	Want Expect
	// Upstream opens the connector's copy; nil for a published tarball,
	// which only the stores hold.
	Upstream Source
	// Fresh says Upstream is already downloading (a prefetch started it
	// because nobody had the package's document): a look in the bucket
	// would only delay it.
	Fresh bool
	// Done, if not nil, is called once with the result of a download this
	// Open started (nil: verified and stored).
	Done func(error)
}

// ErrMissing is the error of a published tarball that no store holds.
var ErrMissing = errors.New("stored tarball of a local package is missing")

// Local is Blobs on this machine's disk: one fill per key.
type Local struct {
	disk  *Disk
	fills *Fills
}

// NewLocal keeps tarballs on disk, filling them through fills.
func NewLocal(disk *Disk, fills *Fills) *Local { return &Local{disk: disk, fills: fills} }

func (l *Local) Open(ctx context.Context, key string, fill Fill) (io.ReadCloser, int64, error) {
	if fill.Upstream == nil {
		f, size, err := l.disk.OpenBlob(key)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrMissing, err)
		}
		return f, size, nil
	}
	return l.fills.Fetch(ctx, key, fill.Want, fill.Upstream, fill.Done)
}

func (l *Local) Put(ctx context.Context, key string, data []byte) error {
	if _, err := l.disk.Stat(ctx, key); err == nil {
		return nil // the same bytes are already stored
	}
	w, err := l.disk.Create(key)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// Tiered is Blobs for replicas: this machine's disk in front of the bucket
// they share. A tarball missing on disk is looked for in the bucket before
// upstream (its bytes are verified on their way to disk like any others);
// one that came from upstream is uploaded to the bucket once verified, in
// the background, so the other replicas need not download it again.
type Tiered struct {
	local  *Local
	bucket Store
	log    *slog.Logger
	// uploads bounds the uploads in flight; past it, an upload runs in
	// the fill's goroutine, after its readers have their bytes.
	uploads *semaphore.Weighted
	// Uploaded, if not nil, is called after each upload with its result.
	Uploaded func(error)
}

// maxUploads bounds the background uploads in flight.
const maxUploads = 4

// uploadTimeout bounds one upload of a tarball to the bucket.
const uploadTimeout = 10 * time.Minute

// NewTiered puts local in front of bucket.
func NewTiered(local *Local, bucket Store, log *slog.Logger) *Tiered {
	return &Tiered{local: local, bucket: bucket, log: log, uploads: semaphore.NewWeighted(maxUploads)}
}

func (t *Tiered) Open(ctx context.Context, key string, fill Fill) (io.ReadCloser, int64, error) {
	// A stored tarball first, before building the closures a miss needs:
	// a warm open costs what the disk open does. The fill looks again.
	if f, size, err := t.local.disk.OpenBlob(key); err == nil {
		return f, size, nil
	}
	if fill.Fresh && fill.Upstream != nil {
		fill.Done = t.shareWhenDone(key, fill.Done)
		return t.local.Open(ctx, key, fill)
	}
	upstream, done := fill.Upstream, fill.Done
	// Both closures run in the fill's own goroutine, one after the other:
	// the source, then Done. fromUpstream is theirs alone.
	fromUpstream := false
	fill.Upstream = func(ctx context.Context) (io.ReadCloser, int64, error) {
		body, info, err := t.bucket.Get(ctx, key)
		if err == nil {
			return body, info.Size, nil
		}
		if !errors.Is(err, ErrNotFound) {
			t.log.Warn("shared store: reading a tarball failed", "key", key, "err", err)
		}
		if upstream == nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrMissing, err)
		}
		fromUpstream = true
		return upstream(ctx)
	}
	share := t.shareWhenDone(key, done)
	fill.Done = func(err error) {
		if fromUpstream {
			share(err)
		} else if done != nil {
			done(err)
		}
	}
	return t.local.fills.Fetch(ctx, key, fill.Want, fill.Upstream, fill.Done)
}

// shareWhenDone wraps done so that a verified download is uploaded.
func (t *Tiered) shareWhenDone(key string, done func(error)) func(error) {
	return func(err error) {
		if done != nil {
			done(err)
		}
		if err != nil {
			return
		}
		if t.uploads.TryAcquire(1) {
			go func() {
				defer t.uploads.Release(1)
				t.upload(key)
			}()
			return
		}
		t.upload(key)
	}
}

// upload copies a verified tarball from the disk to the bucket. The upload
// is whole or absent (S3 semantics): a replica killed during it leaves
// nothing.
func (t *Tiered) upload(key string) {
	f, size, err := t.local.disk.OpenBlob(key)
	if err != nil {
		t.log.Warn("shared store: stored tarball vanished before upload", "key", key, "err", err)
		return
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), uploadTimeout)
	defer cancel()
	err = t.bucket.Put(ctx, key, f, size)
	if err != nil {
		t.log.Error("shared store: uploading a tarball failed; other replicas will fetch it themselves", "key", key, "err", err)
	}
	if t.Uploaded != nil {
		t.Uploaded(err)
	}
}

// Flush waits, until ctx ends, for the uploads running in the background
// (at shutdown: a replica stopping should not leave the others to
// download again what it has just verified).
func (t *Tiered) Flush(ctx context.Context) error {
	if err := t.uploads.Acquire(ctx, maxUploads); err != nil {
		return err
	}
	t.uploads.Release(maxUploads)
	return nil
}

// Put stores a published tarball in the bucket first (once the document
// names the version, every replica must find its bytes), then on disk.
func (t *Tiered) Put(ctx context.Context, key string, data []byte) error {
	if err := t.bucket.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("storing the tarball in the shared store: %w", err)
	}
	return t.local.Put(ctx, key, data)
}
